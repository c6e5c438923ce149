"""Limits on the shape of a parsed request body: nesting depth, number of values, Bundle entries.

The body size is capped before parsing (413, `read_json_body`); these checks bound what a body within
that size can cost the steps after parsing (validation, mapping). Too deep: 400. Too many values or
entries: 413.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds_service.web.errors import BadRequest, PayloadTooLarge


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int
    max_values: int
    max_bundle_entries: int


_CONTAINERS = frozenset({dict, list})
_SLICE = 1024
"""Containers of one level walked together. A whole level of a 10 MB body is hundreds of thousands of
containers: walked at once, each level's lists outgrow the CPU caches and the walk took twice as long
per container as for a 1 MB body; in slices it stays linear (`python -m bench`, scaling)."""


def check_json_limits(body: Any, limits: JsonLimits) -> None:
    """Walk the containers once, a level at a time in slices of at most `_SLICE` containers (no
    recursion for a hostile depth), and enforce the limits.

    List comprehensions over a slice keep the walk about as fast as parsing the body; the slices of the
    next level are walked before the rest of this one (depth first), in the order the parser made them.
    """
    work: list[tuple[int, list[Any]]] = [(1, [body])] if type(body) in _CONTAINERS else []
    values = entries = 0
    while work:
        depth, level = work.pop()
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
        children = [child for node in objects for child in node.values() if type(child) in _CONTAINERS]
        children += [child for node in arrays for child in node if type(child) in _CONTAINERS]
        if len(children) <= _SLICE:
            if children:
                work.append((depth + 1, children))
            continue
        for start in reversed(range(0, len(children), _SLICE)):  # the first slice on top: walked next
            work.append((depth + 1, children[start : start + _SLICE]))
