"""Remember what a patient's record mapped to, so the next hook call with the same data skips the mapping.

order-select fires on every change of the order form (a level added, a date moved): the EHR sends the
same prefetch again and again while only the draft order changes. Mapping (code-set matching and FHIR
R4B validation of the matched resources) is a pure function of the record and the code sets, which are
fixed for the life of the process, so a record with the same content maps to the same facts. The key is
a digest of the record's content; the draft order, the clock and the thresholds are applied afresh on
every call (`fhir_mappings.record.facts_from`), so a cached mapping can never carry an old decision.

The cache lives in the worker's memory only (never logged or stored), holds at most `max_entries`
mappings (the oldest go first), and forgets each one `ttl_seconds` after it was made.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import orjson

from cds_service import metrics
from fhir_mappings.codesets import CodeSets
from fhir_mappings.record import MappedRecord, PatientRecord, map_record

Monotonic = Callable[[], float]


def record_digest(record: PatientRecord) -> bytes | None:
    """A digest of everything `map_record` reads; None when the record cannot be encoded (then it is
    mapped without the cache). Two records with the same resources in the same order share a digest."""
    try:
        content = orjson.dumps(
            [
                record.resources,
                [(g.category, g.reason) for g in record.gaps],
                [repr(i) for i in record.issues],
            ]
        )
    except (TypeError, orjson.JSONEncodeError):
        return None
    return hashlib.sha256(content).digest()


class MappingCache:
    def __init__(
        self, codesets: CodeSets, max_entries: int, ttl_seconds: float, clock: Monotonic = time.monotonic
    ) -> None:
        self.codesets = codesets
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, MappedRecord]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.ttl_seconds > 0

    @property
    def size(self) -> int:
        return len(self._entries)

    def map(self, record: PatientRecord) -> MappedRecord:
        """`map_record(record)`, from the cache when the same content was mapped within the TTL."""
        if not self.enabled:
            return map_record(record, self.codesets)
        key = record_digest(record)
        if key is None:
            metrics.MAPPING_CACHE.labels(result="uncacheable").inc()
            return map_record(record, self.codesets)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                metrics.MAPPING_CACHE.labels(result="hit").inc()
                return entry[1]
        mapped = map_record(record, self.codesets)  # outside the lock: other calls go on meanwhile
        metrics.MAPPING_CACHE.labels(result="miss").inc()
        with self._lock:
            self._entries[key] = (now + self.ttl_seconds, mapped)
            self._entries.move_to_end(key)
            self._evict(now)
        return mapped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _evict(self, now: float) -> None:
        # Entries stay in the order they were made (a hit does not move one), which is also the order
        # they expire in: the oldest go first, whether the cache is full or they are out of time.
        while self._entries and (
            len(self._entries) > self.max_entries or next(iter(self._entries.values()))[0] <= now
        ):
            self._entries.popitem(last=False)
