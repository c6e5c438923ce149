"""`python -m bench`: measure vertebral-cds side by side in one run and print the table (README).

1. in-process cost of a hook call for records of ~100, 869 (the largest Synthea patient), 1,000, 5,000
   and 10,000 Observations, against `json.loads` of the same body;
2. HTTP throughput and p50/p99 latency of the hook endpoint and of a bare endpoint in the same server
   (one uvicorn worker) at concurrency 1, 8 and 32;
3. a call without prefetch against the real FHIR server, against the slowest single query it needs;
4. time per Observation at 100, 1,000 and 10,000;
5. peak RSS of the worker after the runs;
6. the multi-worker deployment (`vertebral-cds serve --workers N`).

Everything runs on 127.0.0.1, servers are stopped at the end, and the whole run is bounded in time.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.fallback import HOOK_PATH, FallbackFigure, measure_fallback
from bench.http_load import LoadResult, one_call, run_load
from bench.inprocess import InProcessBench, InProcessFigure, bench_settings
from bench.records import Record, RecordSet, hook_body_bytes, record_set
from bench.server import ServerProcess, cpu_ms, peak_rss_mb
from cds_service.settings import Settings

BARE_PATH = "/bench/bare/vertebral-augmentation-select"
EDITED_ROW = "HTTP concurrency 8, order edited: answer cache off, data mapped before"
COLD_ROW = "HTTP concurrency 8, first call: answer and mapping caches off"
CONCURRENCIES = (1, 8, 32)
MERGED_SIZES = (1_000, 5_000, 10_000)
ROW_LABELS = (
    "typical",
    "largest",
    "merged 5,000",
    "merged 10,000",
    "HTTP concurrency 1",
    "HTTP concurrency 8",
    "HTTP concurrency 32",
    "HTTP concurrency 8, order edited",
    "HTTP concurrency 8, first call",
    "fallback fetch",
    "scaling 100",
    "scaling 1,000",
    "scaling 10,000",
    "memory",
    "multi-worker",
)
"""Every row the table prints, measured or not (the smoke test checks them)."""


@dataclass
class HttpFigure:
    concurrency: int
    hook: LoadResult
    bare: LoadResult
    hook_cpu_ms: float
    bare_cpu_ms: float

    @property
    def throughput_ratio(self) -> float:
        return self.hook.throughput / self.bare.throughput

    @property
    def p99_ratio(self) -> float:
        return self.hook.p99 / self.bare.p99


@dataclass
class Results:
    source: str = ""
    in_process: dict[str, InProcessFigure] = field(default_factory=dict)
    http: dict[int, HttpFigure] = field(default_factory=dict)
    """The served app as deployed: the same typical call again and again hits the mapping cache."""
    http_edited: dict[int, HttpFigure] = field(default_factory=dict)
    """The answer cache off: every call decided, on data mapped before (the order edited between calls)."""
    http_cold: dict[int, HttpFigure] = field(default_factory=dict)
    """Both caches off: every call maps its data and decides, as for a patient seen first."""
    fallback: FallbackFigure | None = None
    fallback_parallel: FallbackFigure | None = None
    fallback_note: str = ""
    worker_peak_rss_mb: float | None = None
    memory_note: str = ""
    big_peak_rss_mb: float | None = None
    big_note: str = ""
    multi_workers: int = 0
    multi: dict[int, LoadResult] = field(default_factory=dict)
    multi_cores: dict[int, list[float]] = field(default_factory=dict)
    """Concurrency → CPU cores each worker used during the run."""
    multi_machine_busy: dict[int, float] = field(default_factory=dict)
    """Concurrency → share of the whole machine's CPU in use during the run (other tenants included)."""
    multi_note: str = ""
    seconds: float = 0.0


# --------------------------------------------------------------------------- measuring


def _machine_cpu() -> tuple[int, int]:
    """(all, idle) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values), values[3] + values[4]


def _load_with_cpu(
    server: ServerProcess, path: str, body: bytes, concurrency: int, seconds: float
) -> tuple[LoadResult, float]:
    """The load run, and the workers' CPU time during its measured window (the run's CPU time, warm-up
    included, scaled to the window)."""
    result, per_worker = _load_with_worker_cpu(server, path, body, concurrency, seconds)
    return result, sum(per_worker)


def _load_with_worker_cpu(
    server: ServerProcess, path: str, body: bytes, concurrency: int, seconds: float
) -> tuple[LoadResult, list[float]]:
    pids = server.worker_pids()
    before, started = [cpu_ms(p) for p in pids], time.perf_counter()
    result = run_load(server.port, path, body, concurrency=concurrency, seconds=seconds)
    after, wall = [cpu_ms(p) for p in pids], time.perf_counter() - started
    return result, [(b - a) * result.seconds / wall for a, b in zip(before, after, strict=True)]


def measure_http(
    server: ServerProcess,
    body: bytes,
    seconds: float,
    rounds: int,
    concurrencies: tuple[int, ...] = CONCURRENCIES,
) -> dict[int, HttpFigure]:
    """Hook and bare endpoint, alternating in `rounds` slices so that both see the same machine."""
    figures: dict[int, HttpFigure] = {}
    for concurrency in concurrencies:
        hook, bare = LoadResult(), LoadResult()
        hook_cpu = bare_cpu = 0.0
        for _ in range(rounds):
            result, cpu = _load_with_cpu(server, BARE_PATH, body, concurrency, seconds / rounds)
            bare.add(result)
            bare_cpu += cpu
            result, cpu = _load_with_cpu(server, HOOK_PATH, body, concurrency, seconds / rounds)
            hook.add(result)
            hook_cpu += cpu
        figures[concurrency] = HttpFigure(
            concurrency, hook, bare, hook_cpu / max(hook.requests, 1), bare_cpu / max(bare.requests, 1)
        )
    return figures


def _synthea_prefix(record: Record, source: str) -> str | None:
    return record.name if source.startswith("Synthea") else None


def run(args: argparse.Namespace) -> Results:
    started = time.monotonic()
    results = Results()
    synthea = None if args.generated else _synthea_dir()
    sizes = MERGED_SIZES[:1] if args.quick else MERGED_SIZES
    records = record_set(synthea, sizes)
    results.source = records.source
    bodies = _bodies(records)
    largest = records.largest
    del records
    gc.collect()
    gc.freeze()  # the benchmark's own records are not the service's heap: keep them out of GC passes

    work = Path(tempfile.mkdtemp(prefix="vcds-bench-"))
    try:
        _progress("in-process", started)
        bench = InProcessBench(work / "in-process")
        for label, (name, raw, observations) in bodies.items():
            results.in_process[label] = bench.measure(name, raw, observations, args.in_process_seconds)
            _progress(f"  {label}: {results.in_process[label].service_ms:.2f} ms", started)
        bench.close()
        del bench

        env = bench_settings(work / "server")
        (work / "server").mkdir()
        (work / "edited").mkdir()
        (work / "cold").mkdir()
        no_answers = {"VCDS_ANSWER_CACHE_ENTRIES": "0"}
        edited_env = bench_settings(work / "edited") | no_answers
        cold_env = bench_settings(work / "cold") | no_answers | {"VCDS_MAPPING_CACHE_ENTRIES": "0"}
        typical = bodies["typical"][1]
        rounds = 1 if args.quick else 2
        factory = "bench.bare_app:create_bench_app"
        with (
            ServerProcess.uvicorn(factory, env, work / "server.log") as server,
            ServerProcess.uvicorn(factory, edited_env, work / "edited.log") as edited,
            ServerProcess.uvicorn(factory, cold_env, work / "cold.log") as cold,
        ):
            _progress("HTTP", started)
            results.http = measure_http(server, typical, args.seconds, rounds)
            _progress("HTTP, answer cache off", started)
            results.http_edited = measure_http(edited, typical, args.seconds, rounds, concurrencies=(8,))
            _progress("HTTP, both caches off", started)
            results.http_cold = measure_http(cold, typical, args.seconds, rounds, concurrencies=(8,))
            if args.skip_fallback:
                results.fallback_note = "not run (--skip-fallback)"
            else:
                _progress("fallback fetch", started)
                try:
                    results.fallback, results.fallback_parallel = measure_fallback(
                        largest,
                        _synthea_prefix(largest, results.source),
                        (cold.port, edited.port),
                        repeats=3 if args.quick else 7,
                    )
                except Exception as error:
                    results.fallback_note = f"not run: {type(error).__name__}: {str(error)[:200]}"
            _progress("memory", started)
            limit = int(Settings.model_fields["max_request_bytes"].default)
            accepted = [k for k in ("largest", "merged 5,000") if k in bodies and len(bodies[k][1]) <= limit]
            for label in accepted:
                one_call(server.port, HOOK_PATH, bodies[label][1])
            pids = server.worker_pids()
            results.worker_peak_rss_mb = peak_rss_mb(pids[0]) if pids else None
            results.memory_note = (
                "default limits, after all HTTP runs, the fallback calls and one call each with "
                + " and ".join(f"{bodies[label][2]:,}" for label in accepted)
                + " Observations"
            )
        if "merged 10,000" in bodies:
            _progress("memory, 10,000 Observations", started)
            (work / "big").mkdir()
            env = bench_settings(work / "big", raised_limits=True)
            with ServerProcess.uvicorn("bench.bare_app:create_bench_app", env, work / "big.log") as server:
                body = bodies["merged 10,000"][1]
                one_call(server.port, HOOK_PATH, body)
                pids = server.worker_pids()
                results.big_peak_rss_mb = peak_rss_mb(pids[0]) if pids else None
            results.big_note = (
                f"a fresh worker with the request limits raised to accept the {len(body) / 1e6:.1f} MB body "
                "(default 5 MB), after one call"
            )
        else:
            results.big_note = "not measured (--quick)"

        results.multi_workers = args.workers
        if args.workers > 1:
            _progress(f"multi-worker ({args.workers})", started)
            (work / "multi").mkdir()
            env = bench_settings(work / "multi")
            with ServerProcess.serve(env, work / "multi.log", args.workers) as server:
                for concurrency in (8, 32):
                    busy_before = _machine_cpu()
                    load, cpu_ms = _load_with_worker_cpu(
                        server, HOOK_PATH, typical, concurrency, args.seconds
                    )
                    busy_after = _machine_cpu()
                    results.multi[concurrency] = load
                    results.multi_cores[concurrency] = [ms / (load.seconds * 1000) for ms in cpu_ms]
                    total = busy_after[0] - busy_before[0]
                    results.multi_machine_busy[concurrency] = 1 - (busy_after[1] - busy_before[1]) / max(
                        total, 1
                    )
        else:
            results.multi_note = "not run (--workers 1)"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results.seconds = time.monotonic() - started
    return results


def _synthea_dir() -> Path | None:
    from testing.fhir_server import synthea_fixture_dir  # noqa: PLC0415 - the fixtures' one home

    return synthea_fixture_dir()


def _bodies(records: RecordSet) -> dict[str, tuple[str, bytes, int]]:
    """Label → (record name, hook body, Observations)."""
    bodies = {
        "typical": (
            records.typical.name,
            hook_body_bytes(records.typical),
            len(records.typical.observations),
        ),
        "largest": (
            records.largest.name,
            hook_body_bytes(records.largest),
            len(records.largest.observations),
        ),
    }
    for size, record in records.merged.items():
        bodies[f"merged {size:,}"] = (record.name, hook_body_bytes(record), size)
    return bodies


def _progress(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the table


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def _kb(size: int) -> str:
    return f"{size / 1000:,.0f} kB"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _in_process_rows(results: Results) -> list[str]:
    rows = [
        _row(
            [
                "record",
                "Observations",
                "body",
                "json.loads",
                "orjson.loads",
                "service",
                "of which storage",
                "service ÷ json.loads",
                "same data again (mapping cached)",
                "cards",
            ]
        ),
        _row(["---"] * 2 + ["---:"] * 8),
    ]
    for key in ("typical", "largest", "merged 5,000", "merged 10,000"):
        figure = results.in_process.get(key)
        if figure is None:
            rows.append(_row([f"{key}: not measured (--quick)"] + [""] * 9))
            continue
        label = f"{key} ({figure.name})" if key in ("typical", "largest") else key
        rows.append(
            _row(
                [
                    label,
                    f"{figure.observations:,}",
                    _kb(figure.body_bytes),
                    _ms(figure.json_ms),
                    _ms(figure.orjson_ms),
                    _ms(figure.service_ms),
                    _ms(figure.storage_ms),
                    f"**{figure.ratio:.2f}**",
                    _ms(figure.again_ms),
                    str(figure.cards),
                ]
            )
        )
    return rows


def _http_rows(results: Results) -> list[str]:
    rows = [
        _row(
            [
                "concurrency",
                "hook req/s",
                "bare req/s",
                "hook ÷ bare",
                "hook p50",
                "hook p99",
                "bare p50",
                "bare p99",
                "p99 hook ÷ bare",
                "worker CPU per call, hook / bare",
            ]
        ),
        _row(["---:"] * 10),
    ]
    runs = [(f"HTTP concurrency {c}", results.http.get(c)) for c in CONCURRENCIES]
    runs.append((EDITED_ROW, results.http_edited.get(8)))
    runs.append((COLD_ROW, results.http_cold.get(8)))
    for label, figure in runs:
        if figure is None:
            rows.append(_row([f"{label}: not measured"] + [""] * 9))
            continue
        rows.append(
            _row(
                [
                    label,
                    f"{figure.hook.throughput:,.0f}",
                    f"{figure.bare.throughput:,.0f}",
                    f"**{figure.throughput_ratio:.2f}**",
                    _ms(figure.hook.p50),
                    _ms(figure.hook.p99),
                    _ms(figure.bare.p50),
                    _ms(figure.bare.p99),
                    f"**{figure.p99_ratio:.2f}**",
                    f"{figure.hook_cpu_ms:.2f} / {figure.bare_cpu_ms:.2f} ms",
                ]
            )
        )
    return rows


def _fallback_rows(results: Results) -> list[str]:
    rows = [
        _row(
            [
                "FHIR server",
                "hook call, no prefetch (mapping cache off)",
                "slowest single query",
                "all queries one by one",
                "all queries at once (thread pool)",
                "FHIR server CPU for them",
                "thread pool ÷ slowest query (the floor)",
                "hook ÷ slowest query",
                "same call again (mapping cached)",
                "again ÷ slowest query",
                "cards",
            ]
        ),
        _row(["---"] + ["---:"] * 10),
    ]
    if results.fallback is None:
        rows.append(_row([f"fallback fetch: {results.fallback_note}"] + [""] * 10))
        return rows
    for figure in (results.fallback, results.fallback_parallel):
        if figure is None:
            continue
        key, slowest = figure.slowest
        rows.append(
            _row(
                [
                    f"fallback fetch, {figure.server} ({len(figure.queries)} queries, "
                    f"{figure.observations_on_server} Observations returned)",
                    _ms(figure.hook_ms),
                    f"{_ms(slowest)} ({key})",
                    _ms(figure.serial_ms),
                    _ms(figure.at_once_ms),
                    _ms(figure.server_cpu_ms) if figure.server_cpu_ms is not None else "(sleeps)",
                    f"{figure.floor_ratio:.2f}",
                    f"**{figure.ratio:.2f}**",
                    _ms(figure.again_ms),
                    f"**{figure.again_ratio:.2f}**",
                    str(figure.cards),
                ]
            )
        )
    return rows


def _scaling(results: Results) -> dict[int, InProcessFigure | None]:
    return {
        100: results.in_process.get("typical"),
        1_000: results.in_process.get("merged 1,000"),
        10_000: results.in_process.get("merged 10,000"),
    }


def _scaling_rows(results: Results) -> list[str]:
    rows = [
        _row(["Observations", "record", "in-process", "per Observation", "json.loads per Observation"]),
        _row(["---:", "---", "---:", "---:", "---:"]),
    ]
    for size, figure in _scaling(results).items():
        if figure is None:
            rows.append(_row([f"scaling {size:,}: not measured (--quick)", "", "", "", ""]))
            continue
        rows.append(
            _row(
                [
                    f"scaling {size:,}",
                    figure.name,
                    _ms(figure.service_ms),
                    f"{figure.us_per_observation:.1f} µs",
                    f"{figure.json_ms * 1000 / figure.observations:.1f} µs",
                ]
            )
        )
    return rows


def _json_scaling_note(results: Results) -> list[str]:
    scaling = _scaling(results)
    small, large = scaling[1_000], scaling[10_000]
    if small is None or large is None:
        return []
    ratio = (large.json_ms / large.observations) / (small.json_ms / small.observations)
    return ["", f"json.loads alone, 10,000 ÷ 1,000 per Observation: {ratio:.2f}"]


def targets(results: Results) -> list[tuple[str, str, float | None, bool | None]]:
    """(target, limit, measured, met) for the targets of the issue (the fallback one on two servers)."""
    largest = results.in_process.get("largest")
    scaling = _scaling(results)
    per_1k, per_10k = scaling[1_000], scaling[10_000]
    http8 = results.http.get(8)
    edited8 = results.http_edited.get(8)
    cold8 = results.http_cold.get(8)
    checks: list[tuple[str, str, float | None]] = [
        ("in-process cost, 869-Observation record ÷ json.loads", "≤ 3", largest.ratio if largest else None),
        (
            "in-process cost per Observation, 10,000 ÷ 1,000",
            "≤ 1.5",
            per_10k.us_per_observation / per_1k.us_per_observation if per_10k and per_1k else None,
        ),
        (
            "HTTP throughput, hook ÷ bare, concurrency 8 (the call repeated, as deployed: answer cache)",
            "≥ 0.7",
            http8.throughput_ratio if http8 else None,
        ),
        (
            "the same, the order edited between calls (answer cache off, data mapped before)",
            "≥ 0.7",
            edited8.throughput_ratio if edited8 else None,
        ),
        (
            "the same, a first call (both caches off)",
            "≥ 0.7",
            cold8.throughput_ratio if cold8 else None,
        ),
        (
            "p99 latency at concurrency 8, hook ÷ bare (the call repeated)",
            "≤ 3",
            http8.p99_ratio if http8 else None,
        ),
        ("the same, the order edited", "≤ 3", edited8.p99_ratio if edited8 else None),
        ("the same, a first call", "≤ 3", cold8.p99_ratio if cold8 else None),
        (
            "no-prefetch call ÷ slowest single FHIR query (SEKMET, 4 workers; mapping cache off)",
            "≤ 1.5",
            results.fallback.ratio if results.fallback else None,
        ),
        (
            "the same, the call again (mapping cached)",
            "≤ 1.5",
            results.fallback.again_ratio if results.fallback else None,
        ),
        (
            "no-prefetch call ÷ slowest query, SEKMET's answers from a parallel stand-in (cache off)",
            "≤ 1.5",
            results.fallback_parallel.ratio if results.fallback_parallel else None,
        ),
        (
            "the same, the call again (mapping cached)",
            "≤ 1.5",
            results.fallback_parallel.again_ratio if results.fallback_parallel else None,
        ),
        ("peak RSS of a worker, MB", "< 200", results.worker_peak_rss_mb),
    ]
    compare = {"≤": float.__le__, "≥": float.__ge__, "<": float.__lt__}
    out: list[tuple[str, str, float | None, bool | None]] = []
    for name, limit, value in checks:
        operator, bound = limit.split()
        out.append((name, limit, value, None if value is None else compare[operator](value, float(bound))))
    return out


def render(results: Results, args: argparse.Namespace) -> str:
    cpus = os.cpu_count()
    lines = [
        f"vertebral-cds benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
        f"Python {platform.python_version()}, "
        f"{cpus} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end; "
        f"records: {results.source}; {results.seconds:.0f} s" + (" (--quick)" if args.quick else ""),
        "",
        "1. In-process cost of one hook call (orjson parse + JSON limits + HookFlow.run incl. the SQLite row "
        "+ orjson encode), median, against json.loads of the same body",
        "",
        *_in_process_rows(results),
        "",
        f"2. HTTP, typical record, one uvicorn worker on 127.0.0.1, {args.seconds:g} s per endpoint and "
        "concurrency, keep-alive connections; bare = same server, same body reader, fixed answer",
        "",
        *_http_rows(results),
        "",
        "3. Fallback fetch: hook call without prefetch, the largest record on the real FHIR server "
        "(SEKMET, 4 uvicorn workers) on 127.0.0.1, medians; FHIR server CPU: what SEKMET's processes spent "
        f"on one round of the queries sent at once ({os.cpu_count()} cores for SEKMET, the service and the "
        "benchmark together: the round cannot end before that CPU time ÷ the cores); the floor: that round "
        "sent by a plain thread pool, which does nothing with the answers, ÷ the slowest query alone, what "
        "no client gets under from that server on this machine",
        "",
        *_fallback_rows(results),
        "",
        "4. Scaling: in-process cost per Observation",
        "",
        *_scaling_rows(results),
        *_json_scaling_note(results),
        "",
        "5. Memory",
        "",
        _row(["", "peak RSS"]),
        _row(["---", "---:"]),
        _row(
            [
                f"memory: one worker, {results.memory_note}",
                f"**{results.worker_peak_rss_mb:.0f} MB**" if results.worker_peak_rss_mb else "not measured",
            ]
        ),
        _row(
            [
                f"memory with 10,000 Observations: {results.big_note}",
                f"{results.big_peak_rss_mb:.0f} MB" if results.big_peak_rss_mb else "",
            ]
        ),
        "",
        f"6. Multi-worker deployment: `vertebral-cds serve --workers {results.multi_workers}`, "
        "typical record, hook endpoint; cores: CPU time each worker process used per second. gunicorn runs "
        "the uvicorn workers with reuse_port: each listens on a socket of its own (SO_REUSEPORT), so the "
        "kernel spreads the connections over them",
        "",
        _row(["", "concurrency 8", "concurrency 32"]),
        _row(["---", "---:", "---:"]),
    ]
    one = results.http
    lines.append(
        _row(
            ["one worker (from 2.)"]
            + [
                f"{one[c].hook.throughput:,.0f} req/s, p99 {_ms(one[c].hook.p99)}, "
                f"{one[c].hook_cpu_ms * one[c].hook.throughput / 1000:.2f} cores"
                if c in one
                else ""
                for c in (8, 32)
            ]
        )
    )
    if results.multi:
        lines.append(
            _row(
                [f"multi-worker: {results.multi_workers} workers"]
                + [
                    f"{results.multi[c].throughput:,.0f} req/s, p99 {_ms(results.multi[c].p99)}, "
                    f"{' + '.join(f'{x:.2f}' for x in results.multi_cores[c])} cores "
                    f"(machine {results.multi_machine_busy[c]:.0%} busy)"
                    for c in (8, 32)
                ]
            )
        )
    else:
        lines.append(_row([f"multi-worker: {results.multi_note}", "", ""]))
    lines += [
        "",
        "Targets",
        "",
        _row(["target", "limit", "measured", "met"]),
        _row(["---", "---", "---:", "---"]),
    ]
    for name, limit, value, met in targets(results):
        shown = "—" if value is None else f"{value:.2f}"
        lines.append(_row([name, limit, shown, "—" if met is None else ("yes" if met else "**no**")]))
    return "\n".join(lines)


def _http_json(figures: dict[int, HttpFigure]) -> dict[int, dict[str, float]]:
    return {
        c: {
            "hook_rps": f.hook.throughput,
            "bare_rps": f.bare.throughput,
            "hook_p50_ms": f.hook.p50,
            "hook_p99_ms": f.hook.p99,
            "bare_p50_ms": f.bare.p50,
            "bare_p99_ms": f.bare.p99,
            "hook_cpu_ms": f.hook_cpu_ms,
            "bare_cpu_ms": f.bare_cpu_ms,
        }
        for c, f in figures.items()
    }


def _json(results: Results) -> dict[str, Any]:
    return {
        "source": results.source,
        "in_process": {k: {**vars(v), "ratio": v.ratio} for k, v in results.in_process.items()},
        "http": _http_json(results.http),
        "http_order_edited": _http_json(results.http_edited),
        "http_first_call": _http_json(results.http_cold),
        "fallback": [
            {**vars(f), "ratio": f.ratio, "again_ratio": f.again_ratio, "floor_ratio": f.floor_ratio}
            for f in (results.fallback, results.fallback_parallel)
            if f is not None
        ],
        "worker_peak_rss_mb_10000": results.big_peak_rss_mb,
        "worker_peak_rss_mb": results.worker_peak_rss_mb,
        "multi_workers": results.multi_workers,
        "multi": {
            c: {
                "rps": r.throughput,
                "p99_ms": r.p99,
                "cores": results.multi_cores.get(c),
                "machine_busy": results.multi_machine_busy.get(c),
            }
            for c, r in results.multi.items()
        },
        "targets": [
            {"target": t, "limit": lim, "measured": v, "met": m} for t, lim, v, m in targets(results)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny run (smoke test): fewer sizes, short loads"
    )
    parser.add_argument("--seconds", type=float, help="HTTP seconds per endpoint and concurrency (default 3)")
    parser.add_argument("--in-process-seconds", type=float, help="in-process seconds per record (default 2)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="workers of the multi-worker run"
    )
    parser.add_argument(
        "--generated", action="store_true", help="use the built-in generator even if Synthea is present"
    )
    parser.add_argument("--skip-fallback", action="store_true", help="do not start the FHIR server")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (0.4 if args.quick else 3.0)
    args.in_process_seconds = args.in_process_seconds or (0.2 if args.quick else 2.0)
    results = run(args)
    print(render(results, args), flush=True)
    if args.json:
        args.json.write_bytes(
            orjson.dumps(_json(results), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
