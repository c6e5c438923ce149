"""An unexpected error: a 500 OperationOutcome with a correlation id, a PHI-safe log line, and the
keep-alive connection still usable (real uvicorn, in this process, on 127.0.0.1)."""

from __future__ import annotations

import http.client
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from cds_service.web.logging_setup import configure_logging
from testing.fhir_server import free_port
from tests.support.app import make_app, sample

PATIENT = "patient-5f2a91"
SELECT = "/cds-services/vertebral-augmentation-select"


class Boom(Exception):
    pass


def _explode(*_: Any, **__: Any) -> bytes:
    # what a database error looks like: its text quotes the SQL parameters
    raise Boom(f"(sqlite3.IntegrityError) [SQL: INSERT …] [parameters: ('{PATIENT}',)]")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, FastAPI]]:
    app = make_app(tmp_path)
    app.state.flow.answer = _explode
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started
    try:
        yield port, app
    finally:
        running.should_exit = True
        thread.join(10)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the service's and uvicorn's loggers write, through the service's own set-up (asked for after
    the app is made: making it sets the logging up afresh)."""
    configure_logging("INFO")
    stream = io.StringIO()
    handlers = [logging.getLogger(name).handlers[0] for name in ("vertebral_cds", "uvicorn.error")]
    assert handlers[0] is handlers[1]  # uvicorn's error logger writes through the service's handler
    saved = handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    handlers[0].setStream(saved)  # type: ignore[attr-defined]


def test_an_unexpected_error_is_a_500_outcome_and_the_connection_is_kept(
    server: tuple[int, FastAPI], log_output: io.StringIO
) -> None:
    port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps(sample("order-select.json")).encode()
    try:
        connection.request("POST", SELECT, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == 500
        assert response.getheader("connection") != "close"
        assert answer["resourceType"] == "OperationOutcome"
        correlation = response.getheader("x-correlation-id")
        assert correlation
        assert correlation in answer["issue"][0]["diagnostics"]
        connection.request("GET", "/healthz")  # the same connection, not a new one
        follow_up = connection.getresponse()
        follow_up.read()
        assert follow_up.status == 200
    finally:
        connection.close()
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    errors = [line for line in lines if line.get("correlation_id") == correlation]
    assert [line["error_code"] for line in errors] == ["Boom"]
    assert PATIENT not in log_output.getvalue()


def test_uvicorns_error_logger_keeps_only_the_type_of_an_exception(log_output: io.StringIO) -> None:
    try:
        _explode()
    except Boom:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    line = json.loads(log_output.getvalue().strip().splitlines()[-1])
    assert line["logger"] == "uvicorn.error"
    assert line["exception"] == "Boom"
    assert PATIENT not in log_output.getvalue()
