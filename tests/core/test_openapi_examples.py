"""The OpenAPI document's examples cannot drift: each front-end route (#21) documents a 200
example, and every example of the document's schemas is valid against the schema it sits on
(JSON Schema, as a client's generator reads it) and against the route's response model (what
the server really sends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from marketd.app import create_app
from marketd.config import Settings
from marketd.core.container import Container
from marketd.core.openapi import api_routes

FRONT_END_ROUTES = [
    ("get", "/api/markets/categories"),
    ("get", "/api/markets/trending"),
    ("get", "/api/markets/{market_id}/related"),
    ("get", "/api/activity"),
    ("get", "/api/markets/{market_id}/prices"),
    ("get", "/api/users/{wallet}/positions"),
    ("get", "/api/users/{wallet}/portfolio"),
]


@pytest_asyncio.fixture
async def app(tmp_path: Path) -> Any:
    settings = Settings(environment="test", data_dir=tmp_path / "data", _env_file=None)
    container = Container.build(settings)
    yield create_app(container=container)
    await container.close()


@pytest.fixture
def document(app: FastAPI) -> dict[str, Any]:
    result: dict[str, Any] = app.openapi()
    return result


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator of `schema`, its `$ref`s into the document's components."""
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        **schema,
    }
    return jsonschema_rs.validator_for(root, validate_formats=True)


def _examples(document: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    """The examples of a response's schema: its own, or its component's."""
    ref = str(schema.get("$ref", ""))
    if ref:
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return list(schema.get("examples", []))


def _response_model(app: FastAPI, method: str, path: str) -> Any:
    for context in api_routes(app.routes):
        route = context.original_route
        if context.path_format == path and method.upper() in (context.methods or ()):
            assert isinstance(route, APIRoute)
            return route.response_model
    raise AssertionError(f"no route {method} {path}")


@pytest.mark.parametrize(("method", "path"), FRONT_END_ROUTES)
def test_each_front_end_route_documents_a_200_example_its_schemas_accept(
    app, document, method, path
):
    ok = document["paths"][path][method]["responses"]["200"]
    media = ok["content"]["application/json"]
    examples = _examples(document, media["schema"])
    assert examples, f"{method} {path} documents no 200 example"
    validator = _validator(document, media["schema"])
    model = TypeAdapter(_response_model(app, method, path))
    for example in examples:
        assert not list(validator.iter_errors(example)), list(validator.iter_errors(example))
        model.validate_python(example)  # what the route's response model takes
        if path.endswith("/prices"):  # both forms: OHLC buckets and the series
            assert example["buckets"] and example["series"]
        if "items" in example:  # a page shows an item
            assert example["items"]


def _refs(value: Any) -> Iterator[str]:
    """The names of the component schemas `value` (a piece of the document) refers to."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item.rsplit("/", 1)[-1]
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _response_schemas(document: dict[str, Any]) -> set[str]:
    """Every component schema a success response uses, at any depth."""
    schemas = document["components"]["schemas"]
    pending = [
        name
        for item in document["paths"].values()
        for operation in item.values()
        for status, response in operation.get("responses", {}).items()
        if status.startswith("2")
        for name in _refs(response)
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_refs(schemas[name]))
    return seen


def test_every_example_of_a_response_schema_is_valid_against_its_schema(document):
    checked = 0
    for name in sorted(_response_schemas(document)):
        schema = document["components"]["schemas"][name]
        validator = _validator(document, {"$ref": f"#/components/schemas/{name}"})
        for example in schema.get("examples", []):
            errors = [str(error) for error in validator.iter_errors(example)]
            assert not errors, (name, errors)
            checked += 1
    assert checked >= len(FRONT_END_ROUTES)


def test_a_page_without_an_item_example_gets_none(document):
    """Pages are documented with their item's example only where the item has one."""
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        if set(schema.get("properties", {})) == {"items", "next_cursor"}:
            ref = schema["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1]
            item_examples = schemas[ref].get("examples")
            if item_examples:
                assert schema["examples"] == [{"items": item_examples[:1], "next_cursor": None}]
            else:
                assert "examples" not in schema, name
