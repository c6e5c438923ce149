"""One hook call: validate → read the order → gather data → facts → rules → cards → record."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from cards.models import Action, Card, CdsResponse
from cards.render import render_cards
from cards.suggestions import OrderContext
from cds_service.hooks.answer_cache import AnswerCache, CachedAnswer, answer_key
from cds_service.hooks.call_deadline import CallDeadline
from cds_service.hooks.discovery import PrefetchKey, ServiceDefinition
from cds_service.hooks.fhir_client import FhirFetcher
from cds_service.hooks.mapping_cache import MappingCache, prefetch_digest
from cds_service.hooks.models import HookRequest
from cds_service.hooks.patient_data import DataStats, gather, needs_fetch
from cds_service.storage.database import Database
from cds_service.storage.records import EvaluationRecord, IssuedCard, patient_hash, store_evaluation
from cds_service.storage.writer import EvaluationWriter
from cds_service.web import metrics
from cds_service.web.errors import BadRequest, PreconditionFailed
from fhir_mappings.codesets import CodeSets
from fhir_mappings.draft_orders import DraftOrderReading, read_draft_order
from fhir_mappings.record import MappedRecord, PatientRecord, facts_from, map_record
from fhir_mappings.staging import annotate_decision, stage_order
from rules.catalog import evaluate
from rules.facts import ClinicalFacts
from rules.findings import Evaluation
from rules.thresholds import Thresholds

log = logging.getLogger("vertebral_cds.hooks")
_NO_CARDS = orjson.dumps({"cards": []})

Clock = Callable[[], datetime]
IdFactory = Callable[[], str]
ThresholdsSource = Callable[[], tuple[Thresholds, int]]


def _no_deadline() -> None:
    """The check of a call without a deadline (admin previews, the command line)."""


def validation_message(error: ValidationError) -> tuple[str, list[str]]:
    """A readable message and FHIRPath-like locations; input values are never echoed."""
    paths = []
    messages = []
    for item in error.errors()[:10]:
        path = ".".join(str(p) for p in item["loc"])
        paths.append(path or "(body)")
        messages.append(f"{path or 'body'}: {item['msg']}")
    return "Invalid CDS Hooks request: " + "; ".join(messages), paths


@dataclass
class HookFlow:
    codesets: CodeSets
    prefetch: tuple[PrefetchKey, ...]
    fetcher: FhirFetcher
    database: Database
    thresholds: ThresholdsSource
    hash_key: bytes
    clock: Clock
    new_id: IdFactory
    demo_imaging_stand_in: bool = False
    sign_system_actions: bool = True
    record_evaluations: bool = True
    """False for the admin what-if preview: it decides, but nothing is stored or logged."""
    mapping_cache: MappingCache | None = None
    """Mapped records by content, shared by the calls of one worker; None maps every call afresh."""
    writer: EvaluationWriter | None = None
    """Writes evaluation rows off the call's path; None writes each inside its call."""
    answer_cache: AnswerCache | None = None
    """Answers by everything they rest on, for calls that repeat one; None decides every call afresh."""

    def flush_records(self, timeout: float = 5.0) -> None:
        """Wait until the rows of the calls answered so far are in the database (before reading them)."""
        if self.writer is not None:
            self.writer.flush(timeout)

    def parse(self, service: ServiceDefinition, body: Any) -> HookRequest:
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")
        try:
            request = HookRequest.model_validate(body)
        except ValidationError as error:
            message, paths = validation_message(error)
            raise BadRequest(message, expression=paths) from error
        if request.hook != service.hook:
            raise BadRequest(
                f"Service {service.id} answers the {service.hook} hook, not {request.hook!r}",
                expression=["hook"],
            )
        if service.hook == "order-select" and request.context.selections is None:
            raise BadRequest("order-select requires context.selections", expression=["context.selections"])
        return request

    def fetches(self, request: HookRequest) -> bool:
        """Whether answering may call `fhirServer` (blocking I/O) rather than only compute."""
        return needs_fetch(request, self.prefetch)

    def run(self, service: ServiceDefinition, body: Any) -> dict[str, Any]:
        """The response as a JSON object (admin previews, the command line)."""
        answer: dict[str, Any] = orjson.loads(self.answer(service, body))
        return answer

    def answer(
        self,
        service: ServiceDefinition,
        body: Any,
        request: HookRequest | None = None,
        deadline: CallDeadline | None = None,
    ) -> bytes:
        """The response as sent: validate, read the order, gather and map the data, decide, render, and
        (unless a preview) store the evaluation and log it. `request`: `parse(service, body)`, when the
        caller has it already. `deadline`: checked between the stages (and given to the fetches); past
        it the call stops with `DeadlineExceeded` and stores nothing."""
        check = deadline.check if deadline is not None else _no_deadline
        started = time.perf_counter()
        request = request or self.parse(service, body)
        check()
        thresholds, version = self.thresholds()
        as_of = self.clock()
        selections = request.context.selections if service.hook == "order-select" else None
        reading = read_draft_order(
            request.context.draft_orders,
            selections,
            self.codesets,
            frozenset(thresholds.procedure_snomed_codes),
            self.demo_imaging_stand_in,
        )
        check()
        if reading.order is None:
            # Not our order (most order-select calls: every lab, drug and imaging order fires it):
            # answer at once, fetch nothing, digest nothing.
            return _NO_CARDS
        fetches = needs_fetch(request, self.prefetch)
        # Calls whose data all came in the request: their prefetch is digested once, for both caches.
        prefetch_key = None if fetches else self._prefetch_key(request)
        key = self._answer_key(service, body, version, as_of, prefetch_key)
        if key is not None:
            cached = self.answer_cache.get(key) if self.answer_cache is not None else None
            if cached is not None:
                return self._answer_again(cached, service, request, started)
        parsed = time.perf_counter()
        try:
            mapped, stats = self._mapped_data(request, fetches, prefetch_key, deadline)
        except PreconditionFailed:
            check()  # fetches cut short by the call's deadline are a 503, not missing data
            raise
        check()
        gathered = time.perf_counter()
        facts = facts_from(mapped, reading, as_of, self.codesets)
        check()
        evaluation = evaluate(facts, thresholds, version, at_signing=service.hook == "order-sign")
        check()
        order_context = OrderContext(
            patient_id=request.context.patient_id,
            user_reference=request.context.user_id,
            region=reading.order.region,
            staging=lambda limit: self._staging(reading, limit),
        )
        ids: list[str] = []

        def new_id() -> str:  # every id in the answer, so that a repeat of this call can replace them
            value = self.new_id()
            ids.append(value)
            return value

        cards = render_cards(evaluation, order_context, new_id, reading.order.is_demo_stand_in)
        system_actions = self._system_actions(service, reading, evaluation)
        response = CdsResponse(
            cards=cards,
            system_actions=system_actions or None,
            # The public sandbox applies systemActions only from this pre-2.0 place.
            extension={
                "systemActions": [a.model_dump(by_alias=True, exclude_none=True) for a in system_actions]
            }
            if system_actions
            else None,
        )
        encoded = response.to_json()
        check()  # past the deadline nobody waits for this answer: it is neither stored nor cached
        if not self.record_evaluations:
            return encoded  # an admin preview: nothing stored, nothing logged, nothing counted
        card_labels = tuple((f.rule, f.indicator) for f in evaluation.findings)  # one card per finding
        finished = time.perf_counter()
        timings = {
            "parse": (parsed - started) * 1000,
            "data": (gathered - parsed) * 1000,
            "evaluate": (finished - gathered) * 1000,
            "total": (finished - started) * 1000,
        }
        record = self._evaluation_record(service, request, evaluation, reading, cards, stats, timings, facts)
        self._done(record, card_labels, stats)
        if key is not None and self.answer_cache is not None:
            self.answer_cache.put(key, CachedAnswer(encoded, tuple(ids), record, stats, card_labels))
        return encoded

    def _prefetch_key(self, request: HookRequest) -> bytes | None:
        answers, mapping = self.answer_cache, self.mapping_cache
        wanted = (answers is not None and answers.enabled and self.record_evaluations) or (
            mapping is not None and mapping.enabled
        )
        return prefetch_digest(request) if wanted else None

    def _answer_key(
        self,
        service: ServiceDefinition,
        body: Any,
        version: int,
        as_of: datetime,
        prefetch_key: bytes | None,
    ) -> bytes | None:
        """The answer cache's key, when this call may use it: not a preview, nothing to fetch (then
        `prefetch_key` is None: the EHR's server may answer differently this time)."""
        cache = self.answer_cache
        if cache is None or not cache.enabled or not self.record_evaluations or prefetch_key is None:
            return None
        return answer_key(body, service.id, version, as_of.date(), prefetch_key)

    def _answer_again(
        self, cached: CachedAnswer, service: ServiceDefinition, request: HookRequest, started: float
    ) -> bytes:
        """A repeat of an answered call: the same answer with new ids, and its own row and log line."""
        fresh = {old: self.new_id() for old in cached.ids}
        encoded = cached.body
        for old, new in fresh.items():
            encoded = encoded.replace(old.encode("ascii"), new.encode("ascii"))
        template = cached.record
        record = dataclasses.replace(
            template,
            hook_instance=request.hook_instance,
            outcomes=[{**outcome, "card": fresh[outcome["card"]]} for outcome in template.outcomes],
            cards=tuple(
                dataclasses.replace(
                    card,
                    uuid=fresh[card.uuid],
                    suggestion_uuids=tuple(fresh[s] for s in card.suggestion_uuids),
                )
                for card in template.cards
            ),
            timings_ms={"total": round((time.perf_counter() - started) * 1000, 2), "repeat": 1.0},
        )
        cached.stats.count()
        metrics.ANSWER_CACHE.labels(result="hit").inc()
        self._done(record, cached.card_labels, cached.stats)
        return encoded

    def _done(
        self, record: EvaluationRecord, card_labels: tuple[tuple[str, str], ...], stats: DataStats
    ) -> None:
        """Count the cards, store the evaluation row, log the call."""
        for rule, indicator in card_labels:
            metrics.CARDS.labels(rule=rule, indicator=indicator).inc()
        metrics.THRESHOLDS_VERSION.set(record.thresholds_version)
        if self.writer is not None:
            self.writer.submit(record)
        else:
            store_evaluation(self.database, record)
        log.info(
            "hook evaluated",
            extra={
                "hook_instance": record.hook_instance,
                "service": record.service_id,
                "rules": list(record.rules_run),
                "thresholds_version": record.thresholds_version,
                "data_failed": stats.failed,
                "unreadable": record.data.get("unreadable") or None,
                "other_patient": record.data.get("other_patient") or None,
                "total_ms": record.timings_ms.get("total"),
            },
        )

    def _mapped_data(
        self,
        request: HookRequest,
        fetches: bool,
        prefetch_key: bytes | None,
        deadline: CallDeadline | None = None,
    ) -> tuple[MappedRecord, DataStats]:
        """The patient's data, gathered (prefetch, then fetches) and mapped: from the cache when the same
        data came before (order-select fires again on every change of the order form). `prefetch_key`:
        the digest of a call that fetches nothing (None when it cannot be encoded)."""

        def gathered() -> tuple[PatientRecord, DataStats]:
            return gather(request, self.prefetch, self.fetcher, deadline.at if deadline else None)

        cache = self.mapping_cache
        if cache is None or not cache.enabled:
            record, stats = gathered()
            return map_record(record, self.codesets), stats
        if fetches:
            record, stats = gathered()
            return cache.map(record), stats  # keyed by what the server answered this time
        return cache.map_prefetched(prefetch_key, gathered)

    def _staging(self, reading: DraftOrderReading, limit: int) -> tuple[Action, ...]:
        steps = stage_order(reading.session_resources, limit, self.codesets)
        return tuple(
            Action(type=s.type, description=s.description, resource=s.resource, resource_id=s.resource_id)
            for s in steps
        )

    def _system_actions(
        self, service: ServiceDefinition, reading: DraftOrderReading, evaluation: Evaluation
    ) -> list[Action]:
        if service.hook != "order-sign" or not self.sign_system_actions:
            return []
        eligibility = evaluation.finding("eligibility")
        summary = (
            f"eligibility {eligibility.values.get('met')}/{eligibility.values.get('total')} criteria met"
            if eligibility
            else "eligibility not evaluated"
        )
        flagged = ", ".join(
            f"{f.rule} ({f.indicator})" for f in evaluation.findings if f.rule != "eligibility"
        )
        note = (
            f"vertebral-cds decision support at signing ({evaluation.as_of.date().isoformat()}): {summary}; "
            f"findings: {flagged or 'none'}; thresholds version {evaluation.thresholds_version}."
        )
        return [
            Action(
                type="update",
                description="Record the decision support result on the order",
                resource=annotate_decision(resource, note),
            )
            for resource in reading.selected_resources
            if resource.get("id")
        ]

    def _evaluation_record(
        self,
        service: ServiceDefinition,
        request: HookRequest,
        evaluation: Evaluation,
        reading: DraftOrderReading,
        cards: tuple[Card, ...],
        stats: DataStats,
        timings: dict[str, float],
        facts: ClinicalFacts,
    ) -> EvaluationRecord:
        paired = list(zip(evaluation.findings, cards, strict=True))
        assert all(card.uuid for card in cards), "render_cards gives every card a uuid"
        issued = tuple(
            IssuedCard(
                uuid=str(card.uuid),
                rule=finding.rule,
                indicator=card.indicator,
                suggestion_uuids=tuple(s.uuid for s in card.suggestions or () if s.uuid),
            )
            for finding, card in paired
        )
        outcomes = [
            {
                "rule": f.rule,
                "indicator": f.indicator,
                "card": card.uuid,
                **({"criteria": {c.criterion: c.outcome for c in f.criteria}} if f.criteria else {}),
            }
            for f, card in paired
        ]
        return EvaluationRecord(
            service_id=service.id,
            hook=service.hook,
            hook_instance=request.hook_instance,
            patient_hash=patient_hash(self.hash_key, request.context.patient_id),
            thresholds_version=evaluation.thresholds_version,
            procedure=reading.order.procedure if reading.order else None,
            level_count=reading.order.level_count if reading.order else None,
            rules_run=evaluation.rules_run,
            outcomes=outcomes,
            cards=issued,
            data={
                "prefetched": stats.prefetched,
                "prefetch_null": stats.prefetch_null,
                "prefetch_errors": stats.prefetch_errors,
                "fetched": stats.fetched,
                "failed": stats.failed,
                "fetch_ms": round(stats.fetch_ms, 1),
                "parse_issues": len(facts.parse_issues),
                # counts by kind only: what could not be read, and data of another patient set aside
                "unreadable": dict(Counter(u.kind for u in facts.unreadable)),
                "other_patient": len(facts.other_patient_resources),
            },
            timings_ms={k: round(v, 2) for k, v in timings.items()},
        )
