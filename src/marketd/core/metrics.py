"""Prometheus metrics of the process (module-level: one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_LATENCY = Histogram(
    "marketd_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
VOTES_ACCEPTED = Counter("marketd_votes_accepted_total", "Off-chain votes accepted.", ["kind"])
SIGN_INS = Counter("marketd_sign_ins_total", "Sign-in attempts by result.", ["result"])
TRADES_RELAYED = Counter(
    "marketd_trade_submissions_total", "Signed trade transactions accepted for relay.", ["kind"]
)
SNAPSHOTS_PINNED = Counter(
    "marketd_snapshots_pinned_total", "Discussion snapshots stored, pinned and recorded."
)
SNAPSHOTS_FAILED = Counter(
    "marketd_snapshots_failed_total",
    "Discussion snapshot uploads that failed (the row stays pending for the next run).",
    ["reason"],  # upload | cid_mismatch
)
INDEXER_LAG_SLOTS = Gauge(
    "marketd_indexer_lag_slots",
    "Slots between the newest program transaction known (chain or stream) and the indexer's "
    "checkpoint (set by the instance that indexes; 0 on the others: max() across instances).",
)
CHAIN_HISTORY_GAP = Gauge(
    "marketd_chain_history_gap",
    "1 while the program event stream (the indexer) is halted because its checkpoint is older "
    "than the RPC node's transaction history: the events in between cannot be read from this "
    "node, so nothing is indexed until a node with that history (an archive RPC) is configured.",
)
