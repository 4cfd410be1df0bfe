"""JSON request bodies: media type, syntax, depth and text that can be stored (seed 001 §19).

`parse(content_type, raw)` is what `ApiHandler.json_body` returns: `{}` for an empty body,
else the parsed document, or one of

- 415 UNSUPPORTED_MEDIA_TYPE — a body whose `Content-Type` is not `application/json` (or
  `application/<x>+json`);
- 400 BAD_REQUEST — not valid JSON, or nested deeper than MAX_JSON_DEPTH arrays/objects (the
  parser's recursion limit, and MongoDB's 100 levels, stay out of reach);
- 422 VALIDATION_ERROR — a string (value or key) holding NUL or an unpaired UTF-16 surrogate
  (`"\\ud800"`), which no text field takes and BSON cannot encode; `field_errors` names it
  (`"title"`, `"tags.2"`, `"address.city"`).

The body size is bounded before this runs (`handlers/limits.py`, MAX_JSON_KB).
"""
from __future__ import annotations

import json
from typing import Any

from documents.errors import BadRequest, DomainError, Invalid

MAX_JSON_DEPTH = 32
BAD_TEXT = "Text may not contain NUL characters or unpaired UTF-16 surrogates."


class UnsupportedMediaType(DomainError):
    """415 `UNSUPPORTED_MEDIA_TYPE`: the route takes JSON only."""

    status, error_code = 415, "UNSUPPORTED_MEDIA_TYPE"


def is_json_type(content_type: str) -> bool:
    """Whether a `Content-Type` header value names JSON (parameters such as charset ignored)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def parse(content_type: str, raw: bytes) -> Any:
    """The body `raw` as JSON, checked as the module docstring says."""
    if not raw or not raw.strip():
        return {}
    if not is_json_type(content_type):
        raise UnsupportedMediaType(
            f"This route takes application/json, not {content_type or 'a body without a Content-Type'}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Request body is not valid JSON") from None
    except RecursionError:
        raise BadRequest(f"Request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    check(data)
    return data


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check(data: Any) -> None:
    """Depth and text of a parsed JSON document (a body or a WebSocket frame), one walk.

    Raises Invalid (422, the field named) for NUL or a lone surrogate in a string or key,
    BadRequest past MAX_JSON_DEPTH.
    """
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            if _bad_text(item):
                raise Invalid({path or "_schema": [BAD_TEXT]})
            continue
        if isinstance(item, dict):
            children = []
            for key, value in item.items():
                name = f"{path}.{key}" if path else key
                if _bad_text(key):
                    raise Invalid({path or "_schema": [BAD_TEXT]})
                children.append((value, name))
        elif isinstance(item, list):
            children = [(value, f"{path}.{index}" if path else str(index))
                        for index, value in enumerate(item)]
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"Request body is nested deeper than {MAX_JSON_DEPTH} levels")
        stack.extend((child, depth + 1, name) for child, name in children)
