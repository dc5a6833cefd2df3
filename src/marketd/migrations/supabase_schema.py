"""The platform's own tables, built from their catalog description.

`platform_schema.json` (beside this module) is the platform's Supabase database as its own
migrations leave it, read from PostgreSQL's catalogs: every table, column, type, default,
constraint, index, trigger, row-level-security flag and policy. `original_schema_sql` turns
such a description back into DDL, so marketd builds on an empty PostgreSQL database exactly the
tables the platform has on an existing one (migration 0001), and the tests build the original
database from the same kind of description.

The description names the two trigger functions but not their bodies; both keep a row's
`updated_at` current, which is what their names and triggers (BEFORE UPDATE) say.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

PLATFORM_SCHEMA = Path(__file__).resolve().with_name("platform_schema.json")

TRIGGER_FUNCTION_BODY = "BEGIN NEW.updated_at = now(); RETURN NEW; END;"
TRIGGER_FUNCTIONS = frozenset(
    {"update_updated_at_column", "update_market_finalization_errors_updated_at"}
)


API_ROLES = ("anon", "authenticated", "service_role")
"""The roles Supabase's REST API (PostgREST) runs requests as: the anon key, a signed-in
user's JWT, the service key."""


def load_description(path: Path = PLATFORM_SCHEMA) -> dict[str, Any]:
    description: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return description


def platform_tables(description: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The platform's table names (the packaged description unless one is given)."""
    return tuple(sorted((description or load_description())["tables"]))


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column(name: str, spec: Mapping[str, Any]) -> str:
    parts = [quote(name), spec["type"]]
    if spec.get("generated"):
        parts.append(f"GENERATED ALWAYS AS ({spec['generated']}) STORED")
    elif spec.get("default") is not None:
        parts.append(f"DEFAULT {spec['default']}")
    if not spec["nullable"]:
        parts.append("NOT NULL")
    return " ".join(parts)


def _is_foreign_key(constraint: Mapping[str, Any]) -> bool:
    return str(constraint["definition"]).startswith("FOREIGN KEY")


def _policy(table: str, policy: Mapping[str, Any]) -> str:
    roles = ", ".join("PUBLIC" if role == "public" else quote(role) for role in policy["roles"])
    statement = (
        f"CREATE POLICY {quote(policy['name'])} ON public.{quote(table)} "
        f"AS {policy['permissive']} FOR {policy['command']} TO {roles}"
    )
    if policy.get("using") is not None:
        statement += f" USING ({policy['using']})"
    if policy.get("with_check") is not None:
        statement += f" WITH CHECK ({policy['with_check']})"
    return statement


def original_schema_sql(description: Mapping[str, Any], *, policies: bool = True) -> Iterator[str]:
    """The statements that build the described tables in schema public (PostgreSQL).

    Tables first, then their keys, unique and check constraints, then the foreign keys (which
    need the referenced keys), indexes, triggers, row-level security and, with `policies`, the
    policies (they name the Supabase roles and call `auth.jwt()`, so they need baseline.sql)."""
    tables: Mapping[str, Any] = description["tables"]
    for extension in description.get("extensions", ()):
        yield f"CREATE EXTENSION IF NOT EXISTS {quote(extension)}"
    for function, spec in sorted(description.get("functions", {}).items()):
        if function not in TRIGGER_FUNCTIONS or spec.get("returns") != "trigger":
            raise ValueError(f"no body known for function {function}")
        yield (
            f"CREATE OR REPLACE FUNCTION public.{quote(function)}() RETURNS trigger "
            f"LANGUAGE {spec['language']} AS $$ {TRIGGER_FUNCTION_BODY} $$"
        )
    for table, spec in sorted(tables.items()):
        columns = ", ".join(_column(name, column) for name, column in spec["columns"].items())
        yield f"CREATE TABLE public.{quote(table)} ({columns})"
    for foreign in (False, True):
        for table, spec in sorted(tables.items()):
            for constraint in spec["constraints"]:
                if _is_foreign_key(constraint) is foreign:
                    yield (
                        f"ALTER TABLE public.{quote(table)} ADD CONSTRAINT "
                        f"{quote(constraint['name'])} {constraint['definition']}"
                    )
    for table, spec in sorted(tables.items()):
        constraint_names = {constraint["name"] for constraint in spec["constraints"]}
        for index in spec["indexes"]:
            if index["name"] not in constraint_names:  # a key's index comes with its key
                yield str(index["definition"])
        for trigger in spec["triggers"]:
            yield (
                f"CREATE TRIGGER {quote(trigger['name'])} {trigger['timing']} "
                f"{trigger['events']} ON public.{quote(table)} FOR EACH ROW {trigger['action']}"
            )
        if spec["row_level_security"]:
            yield f"ALTER TABLE public.{quote(table)} ENABLE ROW LEVEL SECURITY"
        if policies:
            for policy in spec["policies"]:
                yield _policy(table, policy)


def supabase_roles_present(bind: sa.Connection) -> bool:
    """Whether the database has what the platform's policies name (Supabase, or baseline.sql):
    the anon and authenticated roles and `auth.jwt()`."""
    found = bind.execute(
        sa.text(
            "SELECT (SELECT count(*) FROM pg_roles WHERE rolname IN ('anon', 'authenticated'))"
            " = 2 AND to_regprocedure('auth.jwt()') IS NOT NULL"
        )
    ).scalar()
    return bool(found)


def private_table_sql(bind: sa.Connection, table: str) -> Iterator[str]:
    """Keep one of marketd's own tables in public away from the REST API.

    Supabase serves every table of schema public to the anon key (and its default privileges
    grant each new table to the API roles): row-level security on with no policy refuses every
    row to those roles, and revoking their privileges refuses the table itself. marketd
    connects as the tables' owner, which row-level security does not restrict."""
    yield f"ALTER TABLE public.{quote(table)} ENABLE ROW LEVEL SECURITY"
    roles = bind.execute(
        sa.text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names) ORDER BY rolname"),
        {"names": list(API_ROLES)},
    ).scalars()
    if names := ", ".join(quote(role) for role in roles):
        yield f"REVOKE ALL ON TABLE public.{quote(table)} FROM {names}"
