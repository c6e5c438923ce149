"""Mutation fuzzing against the real service: the shipped sample bodies (both hooks, feedback) mutated at
every JSON path, and a FHIR stand-in that answers with mutated Bundles. Zero 5xx, and after every call
the same keep-alive connection answers the next one.

Mutations at each path: a swap to each JSON type, deletion, a list blown up, keys injected. Every path
of every sample gets its deletion and its type swaps first (that is what found the 500s of a Bundle
whose `entry` is a number); the rest of the time budget draws random mutations, up to three at once.
The seed is fixed per day (`FUZZ_SEED` overrides it, to replay a failure: the seed is in every failure
message) and the run is bounded to about `FUZZ_SECONDS` (default 60).
"""

from __future__ import annotations

import copy
import datetime
import http.client
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testing.service_process import ServiceProcess
from tests.support.app import sample

SEED = int(os.environ.get("FUZZ_SEED") or datetime.date.today().strftime("%Y%m%d"))
BUDGET_SECONDS = float(os.environ.get("FUZZ_SECONDS") or 60)
SERVICES = {
    "order-select.json": "/cds-services/vertebral-augmentation-select",
    "order-sign.json": "/cds-services/vertebral-augmentation-sign",
    "feedback.json": "/cds-services/vertebral-augmentation-select/feedback",
}
Path_ = tuple[str | int, ...]
SWAPS: list[Any] = [None, True, False, 0, -1, 1.5, 10**20, "", "x", "\u0000<b>", [], [1], {}, {"a": 1}]
INJECTED_KEYS = [
    "resourceType",
    "entry",
    "link",
    "url",
    "next",
    "__proto__",
    "constructor",
    "$ref",
    "",
    "x" * 300,
]


def paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


def _parent(doc: Any, path: Path_) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


def mutate(doc: Any, path: Path_, kind: str, rng: random.Random) -> Any:
    """`doc` with one mutation at `path` (the root itself is swapped, never deleted)."""
    doc = copy.deepcopy(doc)
    if not path:
        if kind != "inject":
            return rng.choice(SWAPS)
        # An earlier mutation may have swapped the root for a scalar or a list: inject beside it then.
        base = doc if isinstance(doc, dict) else {"value": doc}
        return {**base, rng.choice(INJECTED_KEYS): rng.choice(SWAPS)}
    parent, last = _parent(doc, path), path[-1]
    value = parent[last]
    if kind == "delete":
        del parent[last]
    elif kind.startswith("swap:"):
        parent[last] = SWAPS[int(kind[5:])]
    elif kind == "blow-up":
        parent[last] = [copy.deepcopy(value) for _ in range(rng.choice((50, 400)))]
    elif kind == "inject" and isinstance(value, dict):
        value[rng.choice(INJECTED_KEYS)] = rng.choice(SWAPS)
    elif kind == "inject":
        parent[last] = {rng.choice(INJECTED_KEYS): value}
    elif kind == "long":
        parent[last] = "A" * rng.choice((300, 5000, 100_000))
    return doc


KINDS = ["delete", *(f"swap:{i}" for i in range(len(SWAPS))), "blow-up", "inject", "long"]


def random_mutant(doc: Any, rng: random.Random) -> Any:
    for _ in range(rng.randint(1, 3)):
        all_paths = list(paths(doc))
        doc = mutate(doc, rng.choice(all_paths), rng.choice(KINDS), rng)
    return doc


class MutatingFhir:
    """A FHIR stand-in on 127.0.0.1: each answer is a Bundle of sample resources, mutated."""

    def __init__(self, seed: int, bundles: list[dict[str, Any]]) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.bundles = bundles
        self.served = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer.lock:
                    outer.served += 1
                    body = random_mutant(outer.rng.choice(outer.bundles), outer.rng)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/fhir"

    def __enter__(self) -> MutatingFhir:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fhir_stand_in() -> Iterator[MutatingFhir]:
    prefetch = sample("order-select.json")["prefetch"]
    bundles = [v for v in prefetch.values() if isinstance(v, dict) and v.get("resourceType") == "Bundle"]
    with MutatingFhir(SEED, bundles) as server:
        yield server


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, fhir_stand_in: MutatingFhir
) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("fuzz")
    env = {
        "VCDS_DATABASE_URL": f"sqlite:///{folder / 'fuzz.sqlite3'}",
        "VCDS_PATIENT_HASH_KEY": "fuzz-hash-key",
        "VCDS_ALLOWED_FHIR_SERVERS": json.dumps([fhir_stand_in.base]),
        "VCDS_FETCH_DEADLINE_SECONDS": "3",
        "VCDS_LOG_LEVEL": "WARNING",
    }
    with ServiceProcess(env, log_path=folder / "service.log") as running:
        yield running


class Connection:
    """One keep-alive connection; it is never reopened, so a server that closed it fails the test."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.http.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = self.http.getresponse()
        return response.status, response.read()

    def get(self, path: str) -> int:
        self.http.request("GET", path)
        response = self.http.getresponse()
        response.read()
        return response.status


def cases(rng: random.Random, fhir_base: str) -> Iterator[tuple[str, Any]]:
    """Every path's deletion and type swaps, then random mutants, forever (the caller stops)."""
    bodies = {name: sample(name) for name in SERVICES}
    fetching = copy.deepcopy(bodies["order-select.json"])
    fetching["fhirServer"] = fhir_base
    for key in list(fetching["prefetch"])[1::2]:
        del fetching["prefetch"][key]  # these keys come from the mutating stand-in
    bodies["fetching"] = fetching
    systematic = [
        (name, path, kind)
        for name, body in bodies.items()
        for path in paths(body)
        for kind in ("delete", *(f"swap:{i}" for i in rng.sample(range(len(SWAPS)), 3)))
        if path or kind != "delete"
    ]
    rng.shuffle(systematic)
    for name, path, kind in systematic:
        yield name, mutate(bodies[name], path, kind, rng)
    while True:
        name = rng.choice(list(bodies))
        yield name, random_mutant(bodies[name], rng)


def test_no_mutated_body_or_fhir_answer_gets_a_5xx_and_the_connection_stays_usable(
    service: ServiceProcess, fhir_stand_in: MutatingFhir
) -> None:
    rng = random.Random(SEED)
    connection = Connection(service.port)
    try:
        _run(rng, connection, service, fhir_stand_in)
    finally:
        connection.http.close()


def _run(
    rng: random.Random, connection: Connection, service: ServiceProcess, fhir_stand_in: MutatingFhir
) -> None:
    stop_at = time.monotonic() + BUDGET_SECONDS
    sent = 0
    statuses: dict[int, int] = {}
    for name, body in cases(rng, fhir_stand_in.base):
        if time.monotonic() > stop_at:
            break
        path = SERVICES.get(name, SERVICES["order-select.json"])
        encoded = json.dumps(body).encode()
        status, answer = connection.post(path, encoded)
        sent += 1
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, f"seed {SEED}, case {sent} ({name}): HTTP {status} {answer[:300]!r}"
        assert connection.get("/healthz") == 200, f"seed {SEED}, case {sent}: connection unusable"
    served = fhir_stand_in.served
    print(f"mutation fuzz seed {SEED}: {sent} requests, statuses {statuses}, FHIR answers {served}")
    assert sent > 100  # the budget bought a real run
    assert fhir_stand_in.served > 0  # the mutated FHIR answers were read
