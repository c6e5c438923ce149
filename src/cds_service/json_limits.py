"""Limits on the shape of a parsed request body: nesting depth, number of values, Bundle entries.

The body size is capped before parsing (413, `read_json_body`); these checks bound what a body within
that size can cost the steps after parsing (validation, mapping). Too deep: 400. Too many values or
entries: 413.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds_service.errors import BadRequest, PayloadTooLarge


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int
    max_values: int
    max_bundle_entries: int


_CONTAINERS = frozenset({dict, list})


def check_json_limits(body: Any, limits: JsonLimits) -> None:
    """Walk the containers once, level by level (no recursion for a hostile depth), and enforce the limits.

    One list comprehension per level keeps the walk about as fast as parsing the body (`python -m bench`).
    """
    level: list[Any] = [body] if type(body) in _CONTAINERS else []
    depth = values = entries = 0
    while level:
        depth += 1
        if depth > limits.max_depth:
            raise BadRequest(f"The request body is nested deeper than {limits.max_depth} levels")
        objects = [node for node in level if type(node) is dict]
        arrays = [node for node in level if type(node) is list]
        for node in objects:
            entry = node.get("entry")
            if type(entry) is list and node.get("resourceType") == "Bundle":
                entries += len(entry)
                if entries > limits.max_bundle_entries:
                    raise PayloadTooLarge(
                        f"The request holds more than {limits.max_bundle_entries} Bundle entries"
                    )
        values += sum(map(len, level))
        if values > limits.max_values:
            raise PayloadTooLarge(f"The request body holds more than {limits.max_values} JSON values")
        level = [child for node in objects for child in node.values() if type(child) in _CONTAINERS]
        level += [child for node in arrays for child in node if type(child) in _CONTAINERS]
