"""Cut a draft augmentation order down to a level limit, staging the rest for a later session.

Returns plain steps (type, description, resource or resource id); the edge turns them into CDS
Hooks actions. Works for each way an EHR sends levels: bodySites on one order, one order per level,
or a quantity.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from fhir_mappings.codesets import CodeSets
from fhir_mappings.draft_orders import levels_in_text
from fhir_mappings.json_access import JsonObject, codings, concept_text, obj, objects, reference_of

STAGING_NOTE_PREFIX = "Staged by vertebral-cds"


@dataclass(frozen=True)
class StagingStep:
    type: Literal["update", "delete"]
    description: str
    resource: JsonObject | None = None
    resource_id: str | None = None


def _site_level(site: JsonObject, codesets: CodeSets) -> str:
    for system, code, _ in codings(site):
        level = codesets.vertebra_level(system, code)
        if level:
            return level
    found = levels_in_text(concept_text(site))
    return found[0] if found else concept_text(site) or "unnamed level"


def _with_note(resource: JsonObject, note: str) -> JsonObject:
    updated = copy.deepcopy(resource)
    updated["note"] = [*objects(updated.get("note")), {"text": note}]
    return updated


def stage_order(session_orders: list[JsonObject], limit: int, codesets: CodeSets) -> list[StagingStep]:
    """Steps that bring the session down to `limit` levels.

    `session_orders` lists the augmentation orders of the session, those already there first and
    the newly selected last, so that one-order-per-level sessions drop the newest orders.
    """
    selected = session_orders
    if len(selected) > limit:
        return [
            StagingStep(
                type="delete",
                description=f"Remove {reference_of(r)} from this session and order it for a later one",
                resource_id=reference_of(r),
            )
            for r in selected[limit:]
        ]
    if len(selected) != 1:
        return []
    order = selected[0]
    sites = objects(order.get("bodySite"))
    quantity = obj(order.get("quantityQuantity")).get("value")
    if len(sites) > limit:
        levels = [_site_level(s, codesets) for s in sites]
        kept_names, deferred_names = ", ".join(levels[:limit]), ", ".join(levels[limit:])
        updated = _with_note(order, f"{STAGING_NOTE_PREFIX}: {deferred_names} deferred to a later session.")
        updated["bodySite"] = sites[:limit]
        if isinstance(quantity, int | float):
            updated["quantityQuantity"] = {**obj(order.get("quantityQuantity")), "value": limit}
        return [
            StagingStep(
                type="update",
                description=f"Treat {kept_names} now; stage {deferred_names} in a later session",
                resource=updated,
            )
        ]
    if isinstance(quantity, int | float) and not isinstance(quantity, bool) and quantity > limit:
        updated = _with_note(order, f"{STAGING_NOTE_PREFIX}: {int(quantity) - limit} level(s) deferred.")
        updated["quantityQuantity"] = {**obj(order.get("quantityQuantity")), "value": limit}
        return [
            StagingStep(
                type="update",
                description=f"Treat {limit} level(s) now; stage {int(quantity) - limit} later",
                resource=updated,
            )
        ]
    return []


def annotate_decision(resource: JsonObject, note: str) -> JsonObject:
    """The order with a note recording the decision support outcome (order-sign systemAction)."""
    return _with_note(resource, note)
