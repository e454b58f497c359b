"""JSON read strictly, the one home for it: Python's json accepts NaN and Infinity and keeps the last of two equal
keys silently; every input file of the tool (snapshot pages and manifests, guest-fact imports) refuses both."""

from __future__ import annotations

import json


class JsonRefused(ValueError):
    """JSON that parses but the tool refuses: NaN or Infinity, a key twice in one object."""


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def no_constant(name: str) -> object:
    """parse_constant hook: NaN, Infinity and -Infinity are not JSON."""
    raise JsonRefused(f"{name} is not a JSON number (give a value or null)")


def unique_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """object_pairs_hook: a JSON object whose keys are unique."""
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise JsonRefused(f"field {_clip(key)}: the key appears twice in one object")
        result[key] = value
    return result


DECODER = json.JSONDecoder(parse_constant=no_constant, object_pairs_hook=unique_object)


def depth(value: object) -> int:
    """How deeply a parsed JSON value nests (a scalar is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack += [(v, level + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, level + 1) for v in item]
    return deepest
