"""Answer a call that repeats an earlier one, as the earlier one was answered, with fresh card ids.

EHRs send the same order-select call again: the order is selected again with nothing changed, the UI
fires twice, a call is retried after a timeout. When everything the decision rests on is the same (the
request apart from its hookInstance and access token, the thresholds version, the date), the decision
is the same, because the whole pipeline is a pure function of those (the code sets and settings are
fixed for the life of the process). Such a call gets the earlier answer with every card and suggestion
id replaced by a new one, and its own evaluation row and log line, as any call.

Only calls whose data all came in the request are answered from here: a call that fetches from the
EHR's FHIR server may find new data there. Admin previews (which decide with draft thresholds) never
use it. The answers live in the worker's memory only, at most `max_entries`, each for `ttl_seconds`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from cds_service.hooks.mapping_cache import TtlStore
from cds_service.hooks.patient_data import DataStats
from cds_service.storage.records import EvaluationRecord

_NOT_PART_OF_THE_DECISION = frozenset({"hookInstance", "fhirAuthorization"})
_DIGESTED_APART = "prefetch"


@dataclass(frozen=True)
class CachedAnswer:
    body: bytes
    """The response as sent the first time."""
    ids: tuple[str, ...]
    """Every id the first answer made (cards, suggestions, resources): all are replaced on reuse."""
    record: EvaluationRecord
    """The first call's evaluation row: the template of the rows of the calls that repeat it."""
    stats: DataStats
    card_labels: tuple[tuple[str, str], ...]
    """(rule, indicator) of each card, for the metrics."""


def answer_key(
    body: dict[str, Any], service_id: str, thresholds_version: int, today: date, prefetch_key: bytes
) -> bytes | None:
    """A digest of everything the answer rests on; None when the body cannot be encoded. The prefetch,
    the bulk of the body, comes in as its digest (`mapping_cache.prefetch_digest`), made once per call."""
    decision_input = {
        k: v for k, v in body.items() if k not in _NOT_PART_OF_THE_DECISION and k != _DIGESTED_APART
    }
    try:
        encoded = orjson.dumps(
            [service_id, thresholds_version, today.isoformat(), prefetch_key.hex(), decision_input]
        )
    except (TypeError, orjson.JSONEncodeError):
        return None
    return hashlib.sha256(encoded).digest()


class AnswerCache(TtlStore[CachedAnswer]):
    pass
