"""`vertebral-cds evaluate` and `vertebral-cds demo`: try the service from a terminal.

    vertebral-cds evaluate --bundle PATIENT.json --procedure kyphoplasty --levels T12,L1 [--date 2026-12-05]
                           [--hook order-select|order-sign] [--format table|json] [--as-of 2026-11-21]
    vertebral-cds evaluate --demo copd-multilevel          # a demo patient and the order of its story
    vertebral-cds demo [--port 8080]                       # the service with the playground, in dev

`evaluate` runs the whole pipeline in this process (no server, no database, nothing fetched): the
bundle's resources become the prefetch of the hook request an EHR would send, and the cards are
printed as a table or as the exact JSON response.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import uvicorn

from cds_service.cli.offline import decide, offline_flow
from cds_service.hooks.discovery import prefetch_keys
from cds_service.playground import demo
from cds_service.settings import SettingsError, load_settings
from cds_service.web.errors import ServiceError
from fhir_mappings.codesets import CodeSetError, default_codesets

EXIT_INPUT = 2
INDICATOR_ORDER = {"critical": 0, "warning": 1, "info": 2}
SUMMARY_WIDTH = 90


def add_demo_commands(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="print the cards for a FHIR Bundle on disk and an order (in-process, no server)",
        description="Print the cards the service gives for a patient's FHIR Bundle and a vertebral "
        "augmentation order. Runs in this process: nothing is stored and nothing is fetched.",
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", help="FHIR R4 Bundle of one patient (JSON file, or - for stdin)")
    source.add_argument(
        "--demo", choices=list(demo.DEMO_PATIENTS_BY_ID), help="a demo patient (its story's order by default)"
    )
    evaluate.add_argument("--procedure", choices=demo.PROCEDURES, help="vertebroplasty or kyphoplasty")
    evaluate.add_argument("--levels", help="vertebrae, e.g. T12,L1 or T11-L1")
    evaluate.add_argument("--date", help="planned date of the procedure (YYYY-MM-DD)")
    evaluate.add_argument("--hook", choices=demo.HOOKS, default="order-select", help="default order-select")
    evaluate.add_argument("--format", choices=("table", "json"), default="table", help="default table")
    evaluate.add_argument(
        "--as-of",
        help="decide as on this day (YYYY-MM-DD; default today); a demo patient's dates move with it",
    )
    evaluate.add_argument("--thresholds", help="YAML file of thresholds (default: the built-in defaults)")
    evaluate.set_defaults(handler=_evaluate)

    run_demo = commands.add_parser(
        "demo",
        help="start the service with the playground and demo patients (dev profile, 127.0.0.1)",
        description="Start the service on 127.0.0.1 with the playground page, and print where to click.",
    )
    run_demo.add_argument("--port", type=int, help="port (default VCDS_PORT or 8080)")
    run_demo.add_argument("--settings", help="YAML settings file (same names as the VCDS_ variables)")
    run_demo.set_defaults(handler=_demo)


# --------------------------------------------------------------------------- evaluate


def _fail(message: str) -> int:
    print(f"vertebral-cds evaluate: {message}", file=sys.stderr)
    return EXIT_INPUT


def _read_bundle(path: str) -> Any:
    try:
        raw = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise demo.DemoError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise demo.DemoError(f"{path} is not JSON ({error.msg}, line {error.lineno})") from error


def _order(args: argparse.Namespace, story: demo.DemoPatient | None, today: date) -> demo.OrderSpec:
    default = story.order(today) if story else None
    procedure = args.procedure or (default.procedure if default else None)
    levels = args.levels or (", ".join(default.levels) if default else None)
    if procedure is None or levels is None:
        missing = " and ".join(
            name for name, value in (("--procedure", procedure), ("--levels", levels)) if value is None
        )
        raise demo.DemoError(f"{missing} required with --bundle")
    planned = demo.parse_planned_date(args.date) if args.date else (default.planned if default else None)
    return demo.OrderSpec(procedure, demo.parse_levels(levels), planned)


def _evaluate(args: argparse.Namespace) -> int:
    try:
        as_of = demo.parse_planned_date(args.as_of) if args.as_of else None
        today = as_of or datetime.now(UTC).date()
        story = demo.demo_patient(args.demo) if args.demo else None
        document = story.bundle(today) if story else _read_bundle(args.bundle)
        record = demo.read_bundle(document)
        spec = _order(args, story, today)
        codesets = default_codesets()
        request = demo.hook_request(record, spec, args.hook, prefetch_keys(codesets), codesets)
        # a fixed day decides at noon UTC, so the date is the same in every time zone
        clock = (lambda: datetime.combine(today, time(12), UTC)) if as_of else None
        with offline_flow(thresholds_file=args.thresholds, clock=clock, codesets=codesets) as flow:
            response = decide(flow, request)
    except (demo.DemoError, SettingsError, CodeSetError) as error:
        return _fail(str(error))
    except ServiceError as error:  # the request the bundle made is one the service refuses
        return _fail(error.message)
    if args.format == "json":
        print(json.dumps(response, indent=2, ensure_ascii=False))
    else:
        print(render_table(record, spec, args.hook, response))
    return 0


def _patient_line(record: demo.PatientBundle) -> str:
    patient = record.patient
    names = patient.get("name") or [{}]
    first = names[0] if isinstance(names[0], dict) else {}
    name = " ".join([*first.get("given", []), first.get("family", "")]).strip() or "(no name)"
    facts = [
        f for f in (patient.get("gender"), patient.get("birthDate") and f"born {patient['birthDate']}") if f
    ]
    return f"Patient  {name} ({record.patient_id}){', ' if facts else ''}{', '.join(facts)}"


def render_table(
    record: demo.PatientBundle, spec: demo.OrderSpec, hook: str, response: dict[str, Any]
) -> str:
    """Indicator, rule and summary per card (most severe first), suggestions underneath."""
    planned = f", planned {spec.planned.isoformat()}" if spec.planned else ", no planned date"
    lines = [
        _patient_line(record),
        f"Order    {spec.label} (CPT {spec.cpt}){planned}; {hook}",
    ]
    used = len(record.resources) - sum(record.skipped.values())
    skipped = ", ".join(f"{count} {kind}" for kind, count in sorted(record.skipped.items()))
    lines.append(
        f"Data     {used} resources sent as prefetch" + (f"; not asked for: {skipped}" if skipped else "")
    )
    lines.append("")
    cards = sorted(response.get("cards", []), key=lambda c: INDICATOR_ORDER.get(c["indicator"], 9))
    if not cards:
        lines.append("No cards.")
        return "\n".join(lines)
    rules = [c.get("source", {}).get("topic", {}).get("code", "") for c in cards]
    rule_width = max(len("RULE"), *(len(r) for r in rules))
    lines.append(f"{'INDICATOR':<10} {'RULE':<{rule_width}} SUMMARY")
    indent = " " * (11 + rule_width + 1)
    for card, rule in zip(cards, rules, strict=True):
        summary = textwrap.wrap(card["summary"], SUMMARY_WIDTH) or [""]
        lines.append(f"{card['indicator']:<10} {rule:<{rule_width}} {summary[0]}")
        lines.extend(indent + more for more in summary[1:])
        for suggestion in card.get("suggestions", []):
            lines.append(f"{indent}-> suggestion: {suggestion['label']}")
    for action in response.get("systemActions", []):
        lines.append(f"systemAction: {action['type']} {action['description']}")
    lines.append("")
    lines.append(f"{len(cards)} card{'s' if len(cards) != 1 else ''}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    # The worker builds its own app from the environment, so the choices travel as VCDS_ variables.
    if args.settings:
        os.environ["VCDS_SETTINGS_FILE"] = args.settings
    os.environ.setdefault("VCDS_PROFILE", "dev")
    os.environ["VCDS_PLAYGROUND_ENABLED"] = "true"
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"vertebral-cds demo: {error}", file=sys.stderr)
        return EXIT_INPUT
    if settings.profile == "production":
        print("vertebral-cds demo: not with the production profile", file=sys.stderr)
        return EXIT_INPUT
    port = args.port or settings.port
    base = f"http://127.0.0.1:{port}"
    print(
        "\n".join(
            [
                f"vertebral-cds demo ({settings.profile} profile) on {base}",
                "",
                f"  Open the playground:  {base}/playground",
                "    1. choose a demo patient (e.g. 'Dorothy Kaminski, 74: COPD, three levels')",
                "    2. check the order (procedure, levels, date), then press 'Select order'",
                "    3. read the cards; accept a suggestion or dismiss a card: feedback is stored",
                f"  Discovery (for an EHR or the CDS Hooks sandbox):  {base}/cds-services",
                f"  Demo patients: {', '.join(demo.DEMO_PATIENTS_BY_ID)}",
                "  Same from a terminal:  vertebral-cds evaluate --demo copd-multilevel",
                "",
                "Press Ctrl+C to stop.",
            ]
        ),
        flush=True,
    )
    uvicorn.run(
        "cds_service.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    return 0
