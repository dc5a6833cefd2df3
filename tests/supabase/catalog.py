"""Read a database's schema public back from PostgreSQL's catalogs, in the shape of
tests/fixtures/supabase/original_schema.json (so a built database can be compared with it)."""

from __future__ import annotations

from typing import Any

import asyncpg

_COLUMNS = """
SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
       NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default,
       CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END AS generated
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
"""
_CONSTRAINTS = """
SELECT c.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS definition
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
"""
_INDEXES = "SELECT tablename AS table, indexname AS name, indexdef AS definition FROM pg_indexes "
_INDEXES += "WHERE schemaname = 'public'"
_POLICIES = """
SELECT tablename AS table, policyname AS name, permissive, roles::text[] AS roles, cmd AS command,
       qual AS using, with_check FROM pg_policies WHERE schemaname = 'public'
"""
_TABLES = """
SELECT c.relname AS table, c.relrowsecurity AS rls FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'
"""
_TRIGGERS = """
SELECT event_object_table AS table, trigger_name AS name, action_timing AS timing,
       string_agg(event_manipulation, ' OR ' ORDER BY event_manipulation) AS events,
       min(action_statement) AS action
FROM information_schema.triggers WHERE event_object_schema = 'public'
GROUP BY event_object_table, trigger_name, action_timing
"""
_FUNCTIONS = """
SELECT p.proname AS name, l.lanname AS language, format_type(p.prorettype, NULL) AS returns
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = 'public'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""


async def describe(connection: asyncpg.Connection) -> dict[str, Any]:
    """Schema public: extensions, functions and, per table, what original_schema.json holds."""
    tables: dict[str, Any] = {}
    for row in await connection.fetch(_TABLES):
        tables[row["table"]] = {
            "columns": {},
            "constraints": [],
            "indexes": [],
            "policies": [],
            "row_level_security": row["rls"],
            "triggers": [],
        }
    for row in await connection.fetch(_COLUMNS):
        tables[row["table"]]["columns"][row["column"]] = {
            "default": row["default"],
            "generated": row["generated"],
            "nullable": row["nullable"],
            "type": row["type"],
        }
    for query, key, fields in (
        (_CONSTRAINTS, "constraints", ("definition", "name")),
        (_INDEXES, "indexes", ("definition", "name")),
        (_POLICIES, "policies", ("command", "name", "permissive", "roles", "using", "with_check")),
        (_TRIGGERS, "triggers", ("action", "events", "name", "timing")),
    ):
        for row in await connection.fetch(query):
            if row["table"] in tables:
                tables[row["table"]][key].append(
                    {
                        field: list(row[field]) if field == "roles" else row[field]
                        for field in fields
                    }
                )
    for spec in tables.values():
        for key in ("constraints", "indexes", "policies", "triggers"):
            spec[key].sort(key=lambda item: item["name"])
    extensions = sorted(
        row["extname"]
        for row in await connection.fetch("SELECT extname FROM pg_extension")
        if row["extname"] != "plpgsql"
    )
    functions = {
        row["name"]: {"language": row["language"], "returns": row["returns"]}
        for row in await connection.fetch(_FUNCTIONS)
    }
    return {"extensions": extensions, "functions": functions, "tables": tables}
