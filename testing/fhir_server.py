"""A real FHIR R4 server for integration tests: SEKMET (PyPI ``sekmet-fhir``) on 127.0.0.1.

SEKMET lives in its own virtual environment, outside the repository and never in the project venv
(``ensure_sekmet_venv``). ``FhirServer`` starts one server per ``with`` block on a free port, with a
fresh SQLite database in a temporary directory, and stops it (process group, SIGTERM then SIGKILL) on
exit. The server runs under a small watchdog that stops it when the test process disappears or after
``max_lifetime`` seconds, so a killed test run leaves nothing listening.

Synthea patients are loaded with stable ids: every transaction entry becomes ``PUT {type}/{id}`` and
every ``urn:uuid:`` reference becomes ``{type}/{id}`` (``put_transaction``).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

SEKMET_PACKAGE = "sekmet-fhir"
SEKMET_VERSION = "0.1.1"
VENV_ENV_VAR = "VCDS_SEKMET_VENV"
_READY_MARKER = ".vertebral-cds-ready"
_PIP_TIMEOUT_S = 900.0
_LOCK_TIMEOUT_S = 1200.0
_SEKMET_ENV_OVERRIDES = ("SEKMET_CONFIG", "SEKMET_BASE_URL", "SEKMET_DB", "SEKMET_PORT", "SEKMET_PUBLIC_URL")

# Runs in the sekmet venv's interpreter: starts the server as its child and stops it when the test
# process (its parent) is gone, when it is told to stop, or when the lifetime is over.
_WATCHDOG = r"""
import os, shutil, signal, subprocess, sys, time
parent, lifetime, workdir, cmd = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]
child = subprocess.Popen(cmd)

def stop(*_, orphaned=False):
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if orphaned:  # nobody is left to clean up
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0)

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, stop)
deadline = time.monotonic() + lifetime
while child.poll() is None:
    if os.getppid() != parent or time.monotonic() > deadline:
        print("watchdog: parent gone or lifetime over, stopping the server", file=sys.stderr, flush=True)
        stop(orphaned=True)
    time.sleep(0.25)
sys.exit(child.returncode)
"""


class FhirServerError(RuntimeError):
    """The SEKMET server could not be installed or started, or answered a harness call with an error."""


# --------------------------------------------------------------------------- the sekmet venv


def sekmet_venv_dir() -> Path:
    """``$VCDS_SEKMET_VENV`` or ``~/.cache/vertebral-cds/sekmet-venv``."""
    configured = os.environ.get(VENV_ENV_VAR)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "vertebral-cds" / "sekmet-venv"


def _installed_version(venv: Path) -> str | None:
    """Version of sekmet-fhir in the venv, read from its dist-info (no subprocess)."""
    for metadata in venv.glob("lib/python*/site-packages/sekmet_fhir-*.dist-info/METADATA"):
        with metadata.open(encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break
    return None


def _venv_ready(venv: Path) -> bool:
    marker = venv / _READY_MARKER
    return (
        marker.is_file()
        and marker.read_text(encoding="utf-8").strip() == SEKMET_VERSION
        and (venv / "bin" / "python").exists()  # follows the symlink: the base interpreter still exists
        and (venv / "bin" / "sekmet").is_file()
        and _installed_version(venv) == SEKMET_VERSION
    )


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    with path.open("a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise FhirServerError(f"timed out waiting for the lock {path}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FhirServerError(f"{what} timed out after {_PIP_TIMEOUT_S:.0f} s: {' '.join(cmd)}") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise FhirServerError(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{tail}")


def ensure_sekmet_venv(venv_dir: Path | None = None) -> Path:
    """Create (once) the venv holding ``sekmet-fhir==0.1.1`` and return its ``sekmet`` executable.

    Fast when the venv is present and complete (no subprocess). Concurrent callers serialise on a
    file lock beside the venv; a half-built venv (no ready marker) is deleted and rebuilt.
    """
    venv = venv_dir if venv_dir is not None else sekmet_venv_dir()
    exe = venv / "bin" / "sekmet"
    if _venv_ready(venv):
        return exe
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(venv.with_name(venv.name + ".lock"), _LOCK_TIMEOUT_S):
        if _venv_ready(venv):  # another process built it while we waited
            return exe
        shutil.rmtree(venv, ignore_errors=True)
        try:
            _run([sys.executable, "-m", "venv", str(venv)], "creating the sekmet venv")
            _run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--quiet",
                    f"{SEKMET_PACKAGE}=={SEKMET_VERSION}",
                ],
                f"pip install {SEKMET_PACKAGE}=={SEKMET_VERSION}",
            )
            version = _installed_version(venv)
            if version != SEKMET_VERSION or not exe.is_file():
                raise FhirServerError(f"sekmet venv at {venv} has version {version!r}, no usable {exe}")
            (venv / _READY_MARKER).write_text(SEKMET_VERSION + "\n", encoding="utf-8")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
    return exe


# --------------------------------------------------------------------------- fixtures on disk


def synthea_fixture_dir() -> Path | None:
    """``../shared/fixtures/synthea-r4`` beside the repository, or None when absent."""
    folder = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "synthea-r4"
    return folder if folder.is_dir() else None


def load_synthea(name_prefix: str) -> dict[str, Any]:
    """The Synthea transaction Bundle whose file name starts with ``name_prefix`` (e.g. "Hallie_Hoeger")."""
    folder = synthea_fixture_dir()
    if folder is None:
        raise FileNotFoundError("shared fixtures absent: ../shared/fixtures/synthea-r4")
    matches = sorted(folder.glob(f"{name_prefix}*.json"))
    if len(matches) != 1:
        raise FileNotFoundError(f"expected one file {name_prefix}*.json in {folder}, found {len(matches)}")
    with matches[0].open(encoding="utf-8") as fh:
        bundle: dict[str, Any] = json.load(fh)
    return bundle


# --------------------------------------------------------------------------- bundle rewriting


def _rewrite_references(node: Any, mapping: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in mapping:
            node["reference"] = mapping[ref]
        for value in node.values():
            _rewrite_references(value, mapping)
    elif isinstance(node, list):
        for item in node:
            _rewrite_references(item, mapping)


def put_transaction(bundle: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Rewrite a transaction/batch Bundle so the server keeps the resources' own ids.

    Every entry becomes ``PUT {resourceType}/{id}`` and every reference to an entry's ``fullUrl``
    becomes ``{resourceType}/{id}``. Returns the new Bundle (the input is not modified) and the ids
    per resource type, in entry order. Entries without a resource or an id are an error.
    """
    out = copy.deepcopy(bundle)
    entries: list[dict[str, Any]] = out.get("entry") or []
    mapping: dict[str, str] = {}
    ids: dict[str, list[str]] = {}
    for i, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not resource.get("id") or not resource.get("resourceType"):
            raise ValueError(f"entry {i} has no resource with resourceType and id")
        local = f"{resource['resourceType']}/{resource['id']}"
        if entry.get("fullUrl"):
            mapping[entry["fullUrl"]] = local
        ids.setdefault(resource["resourceType"], []).append(resource["id"])
    for entry in entries:
        resource = entry["resource"]
        _rewrite_references(resource, mapping)
        entry["request"] = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    out["type"] = "transaction"
    return out, ids


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def next_link(bundle: dict[str, Any]) -> str | None:
    """The ``next`` link of a searchset Bundle, or None on the last page."""
    return next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)


def _outcome_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:2000]
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return "; ".join(str(i.get("diagnostics", i.get("code"))) for i in body.get("issue", []))[:2000]
    return response.text[:2000]


class FhirServer:
    """A SEKMET FHIR R4 server on 127.0.0.1 for the duration of a ``with`` block.

    ``bearer_token``: when set, the server requires ``Authorization: Bearer <token>`` on every
    ``/fhir`` request except ``/fhir/metadata``; the harness's own calls send it.
    """

    def __init__(
        self,
        bearer_token: str | None = None,
        *,
        startup_timeout: float = 30.0,
        max_lifetime: float = 1800.0,
        request_timeout: float = 120.0,
        workers: int = 1,
    ) -> None:
        """`workers` > 1 runs the same server app under uvicorn with that many worker processes (as a
        FHIR server is deployed), so it answers concurrent queries concurrently."""
        self.token = bearer_token
        self.workers = workers
        self.startup_timeout = startup_timeout
        self.max_lifetime = max_lifetime
        self.request_timeout = request_timeout
        self.port = 0
        self.base_url = ""
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Pid of the watchdog, which is also the process group id of the server."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        if self._proc is not None:
            raise FhirServerError("server already started")
        exe = ensure_sekmet_venv()
        self.workdir = Path(tempfile.mkdtemp(prefix="vcds-sekmet-"))
        self.log_path = self.workdir / "server.log"
        try:
            for attempt in range(3):
                self.port = free_port()
                self.base_url = f"http://127.0.0.1:{self.port}/fhir"
                self._spawn(exe)
                if self._wait_ready():
                    break
                exited = not self.running
                in_use = "address already in use" in self.log_tail().lower()
                self._terminate()
                if not in_use or attempt == 2:
                    why = "exited" if exited else f"did not answer within {self.startup_timeout:.0f} s"
                    raise FhirServerError(
                        f"SEKMET {why} ({self.base_url}/metadata)."
                        f"\n--- {self.log_path} (tail) ---\n{self.log_tail()}"
                    )
            self._client = httpx.Client(timeout=self.request_timeout, headers=self.auth_headers())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server and remove its directory. Safe to call more than once."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._terminate()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _settings(self) -> dict[str, Any]:
        assert self.workdir is not None
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.workdir / "data"),
            "own_private_key_path": str(self.workdir / "keys" / "sekmet_private.pem"),
            "simulator": {"enabled": False},
            "validation": {"inbound": "off"},
            "log_inbound": False,
        }
        if self.token is not None:
            settings["server_auth"] = {"types": ["bearer"], "tokens": [self.token]}
        return settings

    def _spawn(self, exe: Path) -> None:
        assert self.workdir is not None
        assert self.log_path is not None
        (self.workdir / "data").mkdir(exist_ok=True)
        config = self.workdir / "settings.yaml"
        config.write_text(json.dumps(self._settings(), indent=2), encoding="utf-8")  # JSON is YAML
        env = {k: v for k, v in os.environ.items() if k not in _SEKMET_ENV_OVERRIDES}
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [
            str(exe.parent / "python"),
            "-c",
            _WATCHDOG,
            str(os.getpid()),
            str(self.max_lifetime),
            str(self.workdir),
            *(
                [str(exe), "serve", "-c", str(config)]
                if self.workers == 1
                else [
                    str(exe.parent / "uvicorn"),
                    "sekmet.main:app_factory",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    "--log-level",
                    "warning",
                ]
            ),
        ]
        if self.workers > 1:
            env["SEKMET_CONFIG"] = str(config)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2.0) as probe:
            while time.monotonic() < deadline:
                if not self.running:
                    return False
                try:
                    if probe.get(f"{self.base_url}/metadata").status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        return False

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the watchdog leads its own process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
        # the group outlives the reaped leader only if the watchdog was killed before the server
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    # ----------------------------------------------------------------- HTTP

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def client(self) -> httpx.Client:
        """An httpx client for the server (sends the bearer token when one is configured)."""
        if self._client is None:
            raise FhirServerError("server is not running; use it inside `with FhirServer() as server:`")
        return self._client

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> httpx.Response:
        """A request to ``{base_url}/{path}`` (or to an absolute URL), with the harness's auth."""
        url = path_or_url if "://" in path_or_url else f"{self.base_url}/{path_or_url.lstrip('/')}"
        return self.client.request(method, url, **kwargs)

    def _json(self, response: httpx.Response, expected: tuple[int, ...] = (200,)) -> dict[str, Any]:
        if response.status_code not in expected:
            raise FhirServerError(
                f"{response.request.method} {response.request.url} -> {response.status_code}: "
                f"{_outcome_text(response)}"
            )
        body: dict[str, Any] = response.json()
        return body

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        return self._json(self.request("GET", f"{resource_type}/{resource_id}"))

    def search(
        self, resource_type: str, params: dict[str, str] | None = None, *, strict: bool = True
    ) -> dict[str, Any]:
        """One searchset page. ``strict``: unknown search parameters are a 400, not silently ignored."""
        headers = {"Prefer": "handling=strict"} if strict else {}
        return self._json(self.request("GET", resource_type, params=params or {}, headers=headers))

    def search_all(
        self, resource_type: str, params: dict[str, str] | None = None, *, strict: bool = True
    ) -> list[dict[str, Any]]:
        """All matching resources (search mode "match"), following ``next`` links."""
        headers = {"Prefer": "handling=strict"} if strict else {}
        page = self.search(resource_type, params, strict=strict)
        found: list[dict[str, Any]] = []
        for _ in range(10_000):
            found += [
                e["resource"]
                for e in page.get("entry", [])
                if e.get("search", {}).get("mode", "match") == "match"
            ]
            next_url = next_link(page)
            if next_url is None:
                return found
            page = self._json(self.request("GET", next_url, headers=headers))
        raise FhirServerError(f"more than 10000 pages for {resource_type} {params}")

    def count(self, resource_type: str, patient_id: str) -> int:
        """Number of ``resource_type`` resources with ``patient=<patient_id>`` (``_summary=count``)."""
        bundle = self.search(resource_type, {"patient": patient_id, "_summary": "count"})
        return int(bundle["total"])

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """``PUT {resourceType}/{id}`` (create or update); returns the stored resource."""
        if not resource.get("resourceType") or not resource.get("id"):
            raise ValueError("put() needs a resource with resourceType and id")
        response = self.request("PUT", f"{resource['resourceType']}/{resource['id']}", json=resource)
        return self._json(response, expected=(200, 201))

    def post_transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction or batch Bundle to the base; returns the response Bundle."""
        return self._json(self.request("POST", "", json=bundle))

    def load_bundle(self, bundle: dict[str, Any]) -> dict[str, list[str]]:
        """Load a transaction Bundle keeping its resource ids (see ``put_transaction``).

        Returns ``resourceType -> ids`` (in entry order); the patient is ``ids["Patient"][0]``.
        Loading the same Bundle again updates the resources in place.
        """
        rewritten, ids = put_transaction(bundle)
        response = self.post_transaction(rewritten)
        failed = [
            e.get("response", {}).get("status")
            for e in response.get("entry", [])
            if not str(e.get("response", {}).get("status", "")).startswith(("200", "201"))
        ]
        if failed or len(response.get("entry", [])) != len(rewritten.get("entry", [])):
            raise FhirServerError(f"transaction entries not stored: {failed[:10]}")
        return ids

    def load_patient(self, bundle: dict[str, Any]) -> str:
        """Load a one-patient Bundle (see ``load_bundle``) and return the Patient id."""
        patients = self.load_bundle(bundle).get("Patient", [])
        if len(patients) != 1:
            raise FhirServerError(f"expected one Patient in the Bundle, found {len(patients)}")
        return patients[0]
