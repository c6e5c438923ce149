"""Remember what a patient's data mapped to, so the next hook call with the same data skips the mapping.

order-select fires on every change of the order form (a level added, a date moved): the EHR sends the
same prefetch again and again while only the draft order changes. Gathering the prefetch and mapping it
(code-set matching, FHIR R4B validation of the matched resources) is a pure function of that data and
of the code sets, which are fixed for the life of the process, so the same data maps to the same facts.
Two keys, both digests (SHA-256) of content:

- a call whose data all came in the request: its prefetch (plus whether it names an encounter and a
  FHIR server, which decide what `gather` makes of missing keys), so a hit skips `gather` too;
- a call that fetched: the gathered record, since the server's answers may change between calls.

The draft order, the clock and the thresholds are applied afresh on every call
(`fhir_mappings.record.facts_from`), so a cached mapping never carries an old decision. The cache lives
in the worker's memory only (never logged or stored), holds at most `max_entries` mappings (the least
recently used go first) and forgets each one `ttl_seconds` after it was made.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import orjson
from cachetools import TTLCache

from cds_service.hooks.models import HookRequest
from cds_service.hooks.patient_data import DataStats
from cds_service.web import metrics
from fhir_mappings.codesets import CodeSets
from fhir_mappings.record import MappedRecord, PatientRecord, map_record

Monotonic = Callable[[], float]
Value = TypeVar("Value")


def _digest(content: object) -> bytes | None:
    try:
        encoded = orjson.dumps(content)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer beyond 64 bits from a FHIR server
        return None
    return hashlib.sha256(encoded).digest()


def record_digest(record: PatientRecord) -> bytes | None:
    """A digest of everything `map_record` reads; None when the record cannot be encoded (then it is
    mapped without the cache). Two records with the same resources in the same order share a digest."""
    return _digest(
        [
            "record",
            record.patient_id,
            record.resources,
            [(g.category, g.reason) for g in record.gaps],
            [repr(i) for i in record.issues],
        ]
    )


def prefetch_digest(request: HookRequest) -> bytes | None:
    """A digest of everything `gather` reads when it fetches nothing."""
    return _digest(
        [
            "prefetch",
            request.context.patient_id,
            request.prefetch,
            bool(request.context.encounter_id),
            request.fhir_base is None,
        ]
    )


class TtlStore(Generic[Value]):
    """Digest → value, at most `max_entries` (the least recently used go first), each for `ttl_seconds`;
    a `cachetools.TTLCache` behind a lock, since the calls of a worker share it from several threads."""

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Monotonic = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        # TTLCache refuses a size of 0; a store that is off (`enabled` False) is never written anyway.
        self._entries: TTLCache[bytes, Value] = TTLCache(max(1, max_entries), ttl_seconds, timer=clock)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.ttl_seconds > 0

    @property
    def size(self) -> int:
        with self._lock:
            self._entries.expire()
            return len(self._entries)

    def get(self, key: bytes) -> Value | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: bytes, value: Value) -> None:
        with self._lock:
            self._entries[key] = value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


Gather = Callable[[], tuple[PatientRecord, DataStats]]


class MappingCache:
    def __init__(
        self, codesets: CodeSets, max_entries: int, ttl_seconds: float, clock: Monotonic = time.monotonic
    ) -> None:
        self.codesets = codesets
        self._by_record: TtlStore[MappedRecord] = TtlStore(max_entries, ttl_seconds, clock)
        self._by_prefetch: TtlStore[tuple[MappedRecord, DataStats]] = TtlStore(
            max_entries, ttl_seconds, clock
        )

    @property
    def enabled(self) -> bool:
        return self._by_record.enabled

    @property
    def size(self) -> int:
        return self._by_record.size + self._by_prefetch.size

    def map(self, record: PatientRecord) -> MappedRecord:
        """`map_record(record)`, from the cache when the same content was mapped within the TTL."""
        if not self.enabled:
            return map_record(record, self.codesets)
        mapped, _ = self._through(
            self._by_record, record_digest(record), lambda: map_record(record, self.codesets)
        )
        return mapped

    def map_prefetched(self, key: bytes | None, gather: Gather) -> tuple[MappedRecord, DataStats]:
        """`gather()` and map its record, for a call that fetches nothing, whose prefetch digests to `key`
        (`prefetch_digest`; None: cannot be encoded): from the cache when the same prefetch was mapped
        within the TTL. Hits share the stats: read them, never change them."""

        def gathered_and_mapped() -> tuple[MappedRecord, DataStats]:
            record, stats = gather()  # raises as ever when nothing clinical came: nothing is cached then
            return map_record(record, self.codesets), stats

        if not self.enabled:
            return gathered_and_mapped()
        value, hit = self._through(self._by_prefetch, key, gathered_and_mapped)
        if hit:
            value[1].count()  # `gather` counts the prefetch keys of the calls it runs for
        return value

    def _through(
        self, store: TtlStore[Value], key: bytes | None, compute: Callable[[], Value]
    ) -> tuple[Value, bool]:
        """`compute()`, or what it gave for `key` within the TTL; and whether it came from the store."""
        if key is None:
            metrics.MAPPING_CACHE.labels(result="uncacheable").inc()
            return compute(), False
        cached = store.get(key)
        if cached is not None:
            metrics.MAPPING_CACHE.labels(result="hit").inc()
            return cached, True
        value = compute()  # outside the store's lock: other calls go on meanwhile
        metrics.MAPPING_CACHE.labels(result="miss").inc()
        store.put(key, value)
        return value, False

    def clear(self) -> None:
        self._by_record.clear()
        self._by_prefetch.clear()
