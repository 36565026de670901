"""Strict JSON request bodies (a module of its own: DRF's settings import it while building APIView)."""

from __future__ import annotations

import math
import re
from typing import Any

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

JSON_MAX_DEPTH = 64
# PostgreSQL's text and jsonb cannot hold NUL; a lone surrogate cannot be encoded as UTF-8 at all.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class StrictJSONParser(JSONParser):
    """JSON bodies the database can store: nested at most ``JSON_MAX_DEPTH`` deep, finite numbers, no NUL
    or lone surrogates in strings or keys. Python's json has no depth limit (deep nesting ends in a
    ``RecursionError``), reads ``1e999`` as infinity (which jsonb refuses) and decodes ``\\u0000`` and
    ``\\ud800`` escapes into strings PostgreSQL cannot take: each would be a 500 later, so each is a 400
    here, naming where it is."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {JSON_MAX_DEPTH}.") from None
        problem = json_problem(data)
        if problem is not None:
            raise exceptions.ValidationError({problem[0]: [problem[1]]})
        return data


def json_problem(value: Any) -> tuple[str, str] | None:
    """Where in a decoded JSON document the first value we refuse is, and why (None if there is none)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, where, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            return where or "body", f"Nested deeper than {JSON_MAX_DEPTH} levels."
        if isinstance(item, str) and _UNSTORABLE.search(item):
            return where or "body", "Must not contain NUL characters or lone surrogates."
        if isinstance(item, float) and not math.isfinite(item):
            return where or "body", "Must be a finite number."
        if isinstance(item, dict):
            for key, child in item.items():
                if _UNSTORABLE.search(key):
                    return where or "body", "Keys must not contain NUL characters or lone surrogates."
                stack.append((child, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where or 'body'}[{i}]", depth + 1) for i, child in enumerate(item))
    return None
