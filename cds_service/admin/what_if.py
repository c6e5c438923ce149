"""What-if: run draft thresholds over saved cases and say which cards would appear, vanish or change.

Saved cases are hook request bodies shipped in the package (`samples/cases/*.json`), the hook requests
or scenario files in the folder a site names in `VCDS_WHAT_IF_CASES_DIR` (a source checkout can point it
at `tests/scenarios/cases`; the service never looks there by itself), and hook requests an admin uploads
with the preview. Uploads live only for
that one preview: they are never stored. Each case runs through the real `HookFlow` twice, with the
thresholds in force and with the draft, with nothing recorded and nothing fetched: `fhirServer` and
`fhirAuthorization` are dropped, so a key that was not prefetched is simply missing data.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds_service.hooks.discovery import SERVICES, PrefetchKey
from cds_service.hooks.flow import HookFlow
from cds_service.web.errors import ServiceError
from rules.thresholds import Thresholds

log = logging.getLogger("vertebral_cds.what_if")

PACKAGE_CASES = Path(__file__).parents[1] / "samples" / "cases"
SERVICE_FOR_HOOK = {service.hook: service for service in SERVICES}
SCENARIO_PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "gender": "female",
    "birthDate": "1946-04-12",
}
MAX_UPLOADS = 20
# Saved cases were written for this moment (tests/scenarios/README.md); they keep it, so "INR yesterday"
# stays yesterday. Uploaded requests are decided at the real time, like a hook call.
CASES_AS_OF = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


class CaseError(ValueError):
    """A document that is neither a hook request nor a scenario file."""


@dataclass(frozen=True)
class SavedCase:
    id: str
    title: str
    source: str
    """package, scenario or upload."""
    request: dict[str, Any]
    as_of: datetime | None = None

    @property
    def hook(self) -> str:
        return str(self.request["hook"])


@dataclass(frozen=True)
class CardView:
    rule: str
    indicator: str
    summary: str
    suggestions: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "indicator": self.indicator,
            "summary": self.summary,
            "suggestions": list(self.suggestions),
        }


@dataclass(frozen=True)
class CardChange:
    kind: str
    """appears, vanishes or changes."""
    rule: str
    before: CardView | None
    after: CardView | None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "before": self.before.as_json() if self.before else None,
            "after": self.after.as_json() if self.after else None,
        }


@dataclass(frozen=True)
class CaseResult:
    case: SavedCase
    before: tuple[CardView, ...]
    after: tuple[CardView, ...]
    changes: tuple[CardChange, ...]
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "case": self.case.id,
            "title": self.case.title,
            "source": self.case.source,
            "changes": [c.as_json() for c in self.changes],
            "before": [c.as_json() for c in self.before],
            "after": [c.as_json() for c in self.after],
        }
        if self.error:
            body["error"] = self.error
        return body


@dataclass(frozen=True)
class Preview:
    base_version: int
    results: tuple[CaseResult, ...]

    @property
    def changed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if r.changes or r.error)

    def counts(self) -> dict[str, int]:
        kinds = [c.kind for r in self.results for c in r.changes]
        return {
            "cases": len(self.results),
            "casesChanged": sum(1 for r in self.results if r.changes),
            "appears": kinds.count("appears"),
            "vanishes": kinds.count("vanishes"),
            "changes": kinds.count("changes"),
            "errors": sum(1 for r in self.results if r.error),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "baseVersion": self.base_version,
            "summary": self.counts(),
            "results": [r.as_json() for r in self.results],
        }


# --------------------------------------------------------------------------- saved cases


def _scenario_request(name: str, body: Mapping[str, Any], keys: Sequence[PrefetchKey]) -> dict[str, Any]:
    """A scenario file (tests/scenarios/README.md) as the hook request the scenario test sends."""
    search_keys = [k for k in keys if k.key not in ("patient", "encounter")]
    grouped: dict[str, list[dict[str, Any]]] = {k.key: [] for k in search_keys}
    patient: dict[str, Any] = SCENARIO_PATIENT
    encounter = None
    for resource in body.get("resources", []):
        kind = resource.get("resourceType")
        if kind == "Patient":
            patient = resource
        elif kind == "Encounter":
            encounter = resource
        else:
            key = next((k.key for k in search_keys if kind in k.resource_types), None)
            if key is None:
                raise CaseError(f"{name}: no prefetch key takes {kind} resources")
            grouped[key].append(resource)
    prefetch: dict[str, Any] = {"patient": patient}
    for key, resources in grouped.items():
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
        if resources:
            bundle["entry"] = [{"resource": r, "search": {"mode": "match"}} for r in resources]
        prefetch[key] = bundle
    context: dict[str, Any] = {
        "userId": "Practitioner/prac-1",
        "patientId": patient.get("id", "pat-1"),
        "draftOrders": body["draftOrders"],
    }
    if body.get("hook") == "order-select":
        context["selections"] = body.get("selections", [])
    if body.get("encounterId"):
        context["encounterId"] = body["encounterId"]
        if encounter is not None:
            prefetch["encounter"] = encounter
    prefetch.update(body.get("prefetch", {}))
    return {
        "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, f"vertebral-cds/scenario/{name}")),
        "hook": body["hook"],
        "context": context,
        "prefetch": prefetch,
    }


def _offline(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request without a FHIR server or its token: a preview never fetches, and keeps no secret."""
    return {k: v for k, v in request.items() if k not in ("fhirServer", "fhirAuthorization")}


def case_from_document(
    name: str, document: Any, source: str, keys: Sequence[PrefetchKey], title: str | None = None
) -> SavedCase:
    if not isinstance(document, dict):
        raise CaseError(f"{name}: not a JSON object")
    hook = document.get("hook")
    if hook not in SERVICE_FOR_HOOK:
        raise CaseError(f"{name}: hook must be one of {', '.join(SERVICE_FOR_HOOK)}, not {hook!r}")
    if "context" in document:
        request = _offline(document)
        described = title or name
    elif "draftOrders" in document:
        request = _scenario_request(name, document, keys)
        described = title or str(document.get("description") or name)
    else:
        raise CaseError(f"{name}: neither a hook request (context) nor a scenario file (draftOrders)")
    as_of = None if source == "upload" else CASES_AS_OF
    return SavedCase(id=f"{source}/{name}", title=described, source=source, request=request, as_of=as_of)


def _folder_cases(folder: Path, source: str, keys: Sequence[PrefetchKey]) -> list[SavedCase]:
    cases = []
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            cases.append(case_from_document(path.stem, document, source, keys))
        except (OSError, ValueError) as error:
            log.warning("saved case skipped", extra={"path": str(path), "error_code": type(error).__name__})
    return cases


def saved_cases(keys: Sequence[PrefetchKey], extra_folder: str | None = None) -> list[SavedCase]:
    """The package's cases, then those of the configured folder (hook requests or scenario files)."""
    cases = _folder_cases(PACKAGE_CASES, "package", keys)
    if extra_folder and Path(extra_folder).is_dir():
        cases += _folder_cases(Path(extra_folder), "scenario", keys)
    return cases


def uploaded_cases(
    uploads: Iterable[tuple[str, bytes]], keys: Sequence[PrefetchKey]
) -> tuple[list[SavedCase], list[str]]:
    """Cases from uploaded JSON files (a hook request each, or a list of them), and what was refused."""
    cases: list[SavedCase] = []
    problems: list[str] = []
    for filename, content in uploads:
        stem = Path(filename or "upload").stem or "upload"
        try:
            document = json.loads(content)
        except ValueError:
            problems.append(f"{filename}: not valid JSON")
            continue
        documents = document if isinstance(document, list) else [document]
        for index, item in enumerate(documents):
            name = stem if len(documents) == 1 else f"{stem}-{index + 1}"
            if len(cases) >= MAX_UPLOADS:
                problems.append(f"{name}: more than {MAX_UPLOADS} uploaded cases; the rest were ignored")
                break
            try:
                cases.append(case_from_document(name, item, "upload", keys))
            except CaseError as error:
                problems.append(str(error))
    return cases, problems


# --------------------------------------------------------------------------- running them


def _cards(response: Mapping[str, Any]) -> tuple[CardView, ...]:
    return tuple(
        CardView(
            rule=str(card["source"]["topic"]["code"]),
            indicator=str(card["indicator"]),
            summary=str(card["summary"]),
            suggestions=tuple(str(s["label"]) for s in card.get("suggestions", ())),
        )
        for card in response.get("cards", ())
    )


def compare(before: Sequence[CardView], after: Sequence[CardView]) -> tuple[CardChange, ...]:
    """Cards matched by rule (one card per rule): which appear, vanish or read differently."""
    old = {c.rule: c for c in before}
    new = {c.rule: c for c in after}
    changes = [CardChange("vanishes", rule, card, None) for rule, card in old.items() if rule not in new]
    changes += [CardChange("appears", rule, None, card) for rule, card in new.items() if rule not in old]
    changes += [
        CardChange("changes", rule, old[rule], card)
        for rule, card in new.items()
        if rule in old and old[rule] != card
    ]
    return tuple(changes)


def _decide(flow: HookFlow, case: SavedCase, thresholds: Thresholds, version: int) -> tuple[CardView, ...]:
    as_of = case.as_of
    probe = dataclasses.replace(
        flow,
        thresholds=lambda: (thresholds, version),
        record_evaluations=False,
        clock=(lambda: as_of) if as_of else flow.clock,
    )
    return _cards(probe.run(SERVICE_FOR_HOOK[case.hook], case.request))


def preview(
    flow: HookFlow,
    current: tuple[Thresholds, int],
    draft: Thresholds,
    cases: Sequence[SavedCase],
) -> Preview:
    """Every case with the thresholds in force and with the draft (marked version 0: not saved)."""
    in_force, version = current
    results = []
    for case in cases:
        try:
            before = _decide(flow, case, in_force, version)
            after = _decide(flow, case, draft, 0)
        except ServiceError as error:
            results.append(CaseResult(case, (), (), (), error=error.message))
            continue
        except Exception as error:  # one odd case must not sink the whole preview
            log.exception("what-if case failed", extra={"error_code": type(error).__name__})
            results.append(CaseResult(case, (), (), (), error=f"internal error ({type(error).__name__})"))
            continue
        results.append(CaseResult(case, before, after, compare(before, after)))
    return Preview(base_version=version, results=tuple(results))
