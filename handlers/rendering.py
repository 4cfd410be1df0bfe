"""Success bodies rendered through the verb's `@responds` schema (docs/api-contract.md §2).

The response schema of a verb is both what `/openapi.json` publishes and what the client
gets: `render(declared, payload)` keeps, at every level, the fields the schema declares
(under their output names) and drops every other key, so an answer can never carry a field
the spec does not list, and the spec cannot list a field by a name the answer spells
differently. Values pass through as the documents layer rendered them (ISO 8601 dates,
decimal amounts, absolute URLs); only the key set is the schema's.

A field declared `Nested(S)` or `List(Nested(S))` is rendered through `S` in turn; a
`Dict`/`Raw` field is passed whole (a free-form object such as a model's `analysis`).

`render` takes the `@responds` record (`handlers/verbs.py`): ``schema`` with the body shape
— one object, ``many`` (a bare array), ``items`` (``{"items": [...]}``) or ``paginated``
(``{items, total, page, limit, pages}``), with the ``envelope`` fields it adds — and
returns the body to encode.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, class_registry, fields

ENVELOPE = frozenset({"items", "total", "page", "limit", "pages"})


class Plan:
    """The output keys of one schema and, for nested ones, the plan of their elements."""

    __slots__ = ("keys", "nested")

    def __init__(self) -> None:
        self.keys: frozenset[str] = frozenset()
        self.nested: dict[str, tuple[bool, Plan]] = {}

    def apply(self, doc: Any) -> Any:
        """`doc` with only the declared keys (recursively); a non-object passes unchanged."""
        if not isinstance(doc, dict):
            return doc
        keys, nested = self.keys, self.nested
        if not nested:
            return {key: value for key, value in doc.items() if key in keys}
        out = {}
        for key, value in doc.items():
            if key not in keys:
                continue
            inner = nested.get(key)
            if inner is not None and value is not None:
                many, plan = inner
                value = ([plan.apply(item) for item in value]
                         if many and isinstance(value, list) else plan.apply(value))
            out[key] = value
        return out


_PLANS: dict[type, Plan] = {}


def _schema_class(nested: Any) -> type[Schema]:
    if isinstance(nested, str):
        return class_registry.get_class(nested)
    if isinstance(nested, Schema):
        return type(nested)
    if isinstance(nested, type):
        return nested
    return _schema_class(nested())  # a callable returning the schema (self-reference)


def plan_of(schema: type[Schema] | Schema) -> Plan:
    """The (cached) rendering plan of a schema class or instance; `only` of an instance is
    honoured. Self-referencing schemas (comment replies) share their plan."""
    cls = _schema_class(schema)
    only = getattr(schema, "only", None) if isinstance(schema, Schema) else None
    if only is None and cls in _PLANS:
        return _PLANS[cls]
    plan = Plan()
    if only is None:
        _PLANS[cls] = plan
    keys, nested = set(), {}
    for name, field in cls._declared_fields.items():
        if only is not None and name not in only:
            continue
        key = field.data_key or name
        keys.add(key)
        if isinstance(field, fields.Nested):
            nested[key] = (bool(field.many), plan_of(_schema_class(field.nested)))
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            nested[key] = (True, plan_of(_schema_class(field.inner.nested)))
    plan.keys, plan.nested = frozenset(keys), nested
    return plan


def render(declared: dict, payload: Any) -> Any:
    """The success body `payload` rendered through the `@responds` record `declared`.

    A payload whose shape is not the declared one (not a list where ``many`` is declared,
    not an object where an envelope is) is returned unchanged."""
    schema = declared.get("schema")
    if schema is None:
        return payload
    plan = plan_of(schema)
    if declared.get("paginated") or declared.get("items"):
        if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
            return payload
        envelope = (ENVELOPE if declared.get("paginated") else frozenset({"items"})).union(
            declared.get("envelope") or ())
        out = {key: value for key, value in payload.items() if key in envelope}
        out["items"] = [plan.apply(item) for item in payload["items"]]
        return out
    if declared.get("many"):
        return [plan.apply(item) for item in payload] if isinstance(payload, list) else payload
    return plan.apply(payload)


def closed(node: Any) -> Any:
    """`node` (the OpenAPI document, or a part of it) with every object schema that lists its
    properties, and says nothing of others, closed to them (`additionalProperties: false`),
    in place: request bodies refuse unknown fields, and success bodies are rendered through
    their schema (`render`), so neither ever holds a field its schema does not list. A
    free-form object (`Dict`) lists no properties and stays open."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            closed(value)
    elif isinstance(node, list):
        for value in node:
            closed(value)
    return node
