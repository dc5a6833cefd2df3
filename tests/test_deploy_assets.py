"""The deployment assets stay true to the code: the Grafana dashboard queries only metrics (and
labels) the code defines, the systemd units and the image run real `marketd` commands, and
docs/deploy.md documents every setting and no setting that does not exist.

Metric definitions are found by reading the source (any `Counter(`/`Gauge(`/`Histogram(`/
`Summary(` of prometheus_client, under any alias), so a metric in a module nothing imports yet
still counts; a cross-check against the live registry keeps the scanner honest.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from marketd.cli import build_parser
from marketd.config import Settings, environment_names

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "marketd"
DASHBOARD = REPO / "deploy" / "grafana" / "marketd-dashboard.json"
UNITS = REPO / "deploy" / "systemd"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
README = REPO / "README.md"

KINDS = ("Counter", "Gauge", "Histogram", "Summary")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
TARGET_LABELS = {"job", "instance"}  # attached by Prometheus to every scraped series
METRIC_NAME = re.compile(r"\bmarketd_[a-z0-9_]+\b")


@dataclass(frozen=True)
class MetricDef:
    name: str  # as registered (a counter's name without `_total`)
    kind: str  # counter | gauge | histogram | summary
    labels: tuple[str, ...]
    module: str

    @property
    def series(self) -> set[str]:
        return {self.name + suffix for suffix in SUFFIXES[self.kind]}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC.parent).with_suffix("").parts)


def _prometheus_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> metric kind, from `from prometheus_client import Counter [as X]`."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client":
            for alias in node.names:
                if alias.name in KINDS:
                    aliases[alias.asname or alias.name] = alias.name.lower()
    return aliases


def _kind_of_call(call: ast.Call, aliases: dict[str, str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return aliases.get(func.id)
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "prometheus_client"
        and func.attr in KINDS
    ):
        return func.attr.lower()
    return None


def _labels_of_call(call: ast.Call) -> tuple[str, ...]:
    node: ast.expr | None = call.args[2] if len(call.args) > 2 else None
    for keyword in call.keywords:
        if keyword.arg == "labelnames":
            node = keyword.value
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(str(item.value) for item in node.elts if isinstance(item, ast.Constant))
    return ()


def scan_metrics() -> dict[str, MetricDef]:
    """Every prometheus_client metric defined under src/marketd, by registered name."""
    found: dict[str, MetricDef] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = _prometheus_aliases(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            kind = _kind_of_call(node, aliases)
            first = node.args[0]
            if kind is None or not isinstance(first, ast.Constant):
                continue
            name = str(first.value)
            if kind == "counter":
                name = name.removesuffix("_total")
            found[name] = MetricDef(name, kind, _labels_of_call(node), module_name(path))
    return found


METRICS = scan_metrics()
SERIES = {series: metric for metric in METRICS.values() for series in metric.series}


def test_the_scanner_agrees_with_the_live_registry() -> None:
    for module in {metric.module for metric in METRICS.values()}:
        importlib.import_module(module)
    registered = {
        family.name: family.type
        for family in REGISTRY.collect()
        if family.name.startswith("marketd_")
    }
    assert {name: m.kind for name, m in METRICS.items()} == registered
    # the metrics the issue names must be among them
    for name in (
        "marketd_http_request_duration_seconds",
        "marketd_votes_accepted",
        "marketd_chain_outbox_rows",
        "marketd_job_restarts",
        "marketd_ipfs_gateway_failures",
        "marketd_ws_connections",
    ):
        assert name in METRICS


# ----------------------------------------------------------------------------- dashboard


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_the_dashboard_queries_only_metrics_the_code_defines() -> None:
    unknown = [
        (title, name)
        for title, expr in queries()
        for name in METRIC_NAME.findall(expr)
        if name not in SERIES
    ]
    assert unknown == []


def _allowed_labels(expr: str) -> set[str]:
    metrics = [SERIES[name] for name in METRIC_NAME.findall(expr)]
    labels = set(TARGET_LABELS)
    for metric in metrics:
        labels |= set(metric.labels)
        # a metric label named like a target label is stored as exported_<label>
        labels |= {f"exported_{label}" for label in metric.labels if label in TARGET_LABELS}
        if metric.kind == "histogram":
            labels.add("le")
    return labels


def test_the_dashboard_groups_and_filters_by_labels_the_metrics_have() -> None:
    wrong = []
    for title, expr in queries():
        used = {
            label.strip()
            for clause in re.findall(r"\bby \(([^)]*)\)", expr)
            for label in clause.split(",")
        }
        used |= set(re.findall(r"[{,]\s*([a-z_]+)\s*(?:=~|!~|!=|=)", expr))
        wrong += [(title, label) for label in used - _allowed_labels(expr)]
    assert wrong == []


@pytest.mark.parametrize(
    "metric",
    [
        "marketd_http_request_duration_seconds_bucket",
        "marketd_http_request_duration_seconds_count",
        "marketd_votes_accepted_total",
        "marketd_chain_outbox_rows",
        "marketd_chain_outbox_results_total",
        "marketd_ws_connections",
        "marketd_job_restarts_total",
        "marketd_ipfs_gateway_failures_total",
        "marketd_readiness_check_up",
    ],
)
def test_the_dashboard_shows(metric: str) -> None:
    assert any(metric in expr for _, expr in queries())


def test_latency_is_shown_at_p50_p95_and_p99_by_route() -> None:
    latency = [expr for _, expr in queries() if "http_request_duration_seconds_bucket" in expr]
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(
            f"histogram_quantile({quantile}," in expr and "by (le, route)" in expr
            for expr in latency
        ), quantile


# ----------------------------------------------------------------------------- settings


ENVIRONMENT = set(environment_names(Settings))
"""Every variable the settings tree reads."""


def test_the_environment_names_are_the_flat_ones() -> None:
    assert {"DATABASE_URL", "INDEXER_MAX_BATCH", "WS_HEARTBEAT_SECONDS"} <= ENVIRONMENT
    assert {"SNAPSHOT_CRON", "IPFS_API_URL", "READINESS_TIMEOUT_SECONDS"} <= ENVIRONMENT


def test_the_deploy_guide_documents_every_setting() -> None:
    text = DEPLOY_DOC.read_text()
    missing = sorted(name for name in ENVIRONMENT if f"`{name}`" not in text)
    assert missing == []


def test_the_deploy_guide_documents_no_setting_that_does_not_exist() -> None:
    lines = DEPLOY_DOC.read_text().splitlines()
    documented = {
        m.group(1) for line in lines if (m := re.match(r"\| `([A-Z][A-Z0-9_]+)` \|", line))
    }
    example = {m.group(1) for line in lines if (m := re.match(r"([A-Z][A-Z0-9_]+)=", line))}
    assert documented and example
    assert (documented | example) - ENVIRONMENT == set()


def test_the_readme_names_only_settings_that_exist() -> None:
    table = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    named = {name for line in table for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line)}
    assert {"DATABASE_URL", "IPFS_API_URL"} <= named
    assert named - ENVIRONMENT == set()


def test_the_deploy_guide_covers_the_operations_topics() -> None:
    text = DEPLOY_DOC.read_text().lower()
    for topic in (
        "supabase",
        "session pooler",
        "transaction pooler",
        "database_statement_cache=false",
        "redis",
        "rpc provider",
        "ipfs provider",
        "marketd keygen",
        "marketd migrate",
        "trusted_proxies",
        "systemd",
        "dockerfile",
        "readyz",
        "backups",
        "deploy/grafana/marketd-dashboard.json",
    ):
        assert topic in text, topic


# ----------------------------------------------------------------------------- units, image


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a systemd unit as ordered (key, value) lists (keys repeat in units)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        assert current is not None, line
        current.append((key, value))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [value for found, value in section if found == key]


@pytest.mark.parametrize(
    ("name", "command"),
    [("marketd-serve.service", "serve"), ("marketd-worker.service", "worker")],
)
def test_units_run_a_real_marketd_command(name: str, command: str) -> None:
    sections = unit(name)
    service = sections["Service"]
    (exec_start,) = values(service, "ExecStart")
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "marketd"
    assert build_parser().parse_args(argv[1:]).command == command
    assert values(service, "User") == ["marketd"]
    assert values(service, "Restart") == ["always"]
    assert values(service, "KillSignal") == ["SIGTERM"]
    assert values(service, "EnvironmentFile")
    assert values(sections["Install"], "WantedBy") == ["multi-user.target"]
    for assignment in values(service, "Environment"):
        assert assignment.partition("=")[0] in ENVIRONMENT, assignment


def test_only_the_worker_gets_the_backend_key() -> None:
    def key_settings(name: str) -> list[str]:
        service = unit(name)["Service"]
        return [a for a in values(service, "Environment") if a.startswith("BACKEND_KEYPAIR=")]

    assert key_settings("marketd-serve.service") == []
    worker = unit("marketd-worker.service")["Service"]
    (credential,) = values(worker, "LoadCredential")
    credential_name = credential.partition(":")[0]
    assert key_settings("marketd-worker.service") == [f"BACKEND_KEYPAIR=%d/{credential_name}"]


def test_the_image_runs_marketd_as_a_non_root_user() -> None:
    instructions = [
        line.split(maxsplit=1)
        for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    by_name: dict[str, list[str]] = {}
    for name, argument in instructions:
        by_name.setdefault(name, []).append(argument)
    assert by_name["FROM"] == ["python:3.11-slim"]
    runs = by_name["RUN"]
    assert any("--require-hashes --no-deps -r requirements.txt" in run for run in runs)
    assert any("pip install --no-deps --no-build-isolation ." in run for run in runs)
    assert by_name["USER"][-1] not in ("root", "0")
    assert json.loads(by_name["ENTRYPOINT"][-1]) == ["marketd"]
    assert build_parser().parse_args(json.loads(by_name["CMD"][-1])).command == "serve"
    for env in by_name["ENV"]:
        for name in re.findall(r"([A-Z_]+)=", env):
            assert name in ENVIRONMENT or name.startswith(("PYTHON", "PIP_")), name


def test_env_example_names_only_real_settings() -> None:
    text = (REPO / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    assert {"METRICS_PORT", "METRICS_HOST", "SIWS_DOMAIN"} <= named
    assert named - ENVIRONMENT == set()


def test_units_serve_metrics_apart_from_the_api_and_from_each_other() -> None:
    assignments = {
        name: values(unit(name)["Service"], "Environment")
        for name in ("marketd-serve.service", "marketd-worker.service")
    }
    metrics = {
        name: [a.partition("=")[2] for a in found if a.startswith("METRICS_PORT=")]
        for name, found in assignments.items()
    }
    assert metrics == {"marketd-serve.service": ["9100"], "marketd-worker.service": ["9101"]}
    for found in assignments.values():  # left at loopback
        assert not any(a.startswith("METRICS_HOST=") for a in found)
