"""One execution path for every hook call: a small call whose data all came in prefetch runs, like any
other, in a worker thread under the concurrency cap and within the deadline; past the deadline its work
stops at the next stage and nothing of it is stored."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cds_service.hooks import flow as hook_flow
from cds_service.storage.tables import EvaluationRow
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"


def test_a_small_prefetched_call_runs_off_the_event_loop_under_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, max_concurrent_hook_calls=3)
    seen: list[tuple[str, int]] = []
    original = hook_flow.evaluate

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append((threading.current_thread().name, app.state.hook_limiter.borrowed_tokens))
        return original(*args, **kwargs)

    monkeypatch.setattr(hook_flow, "evaluate", watched)
    body = sample("order-select.json")
    with client_for(app) as client:
        response = client.post(SELECT, json=body)
    assert response.status_code == 200
    assert len(seen) == 1
    thread, borrowed = seen[0]
    assert thread != "MainThread"
    assert borrowed == 1  # it holds a place under the cap


def test_a_small_prefetched_call_past_its_deadline_is_a_503_and_its_work_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, hook_deadline_seconds=0.5)
    evaluated = threading.Event()
    slow_done = threading.Event()
    original_facts = hook_flow.facts_from

    def slow_facts(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)  # one stage that overruns the deadline
        try:
            return original_facts(*args, **kwargs)
        finally:
            slow_done.set()

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        evaluated.set()
        raise AssertionError("evaluated after the deadline")

    monkeypatch.setattr(hook_flow, "facts_from", slow_facts)
    monkeypatch.setattr(hook_flow, "evaluate", evaluate)
    with client_for(app) as client:
        started = time.monotonic()
        response = client.post(SELECT, json=sample("order-select.json"))
        elapsed = time.monotonic() - started
        assert slow_done.wait(5)
        time.sleep(0.2)
    assert response.status_code == 503
    assert response.json()["issue"][0]["code"] == "timeout"
    assert elapsed < 1.4  # answered at the deadline, not when the stage ended
    assert not evaluated.is_set()  # the next stage never ran
    app.state.flow.flush_records()
    with app.state.database.session() as session:
        assert session.scalar(select(func.count()).select_from(EvaluationRow)) == 0


def test_a_call_beyond_the_cap_waits_for_a_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(tmp_path, max_concurrent_hook_calls=1, hook_deadline_seconds=5.0)
    release = threading.Event()
    original = hook_flow.evaluate
    entered: list[float] = []

    def blocking(*args: Any, **kwargs: Any) -> Any:
        entered.append(time.monotonic())
        release.wait(5)
        return original(*args, **kwargs)

    monkeypatch.setattr(hook_flow, "evaluate", blocking)
    statuses: list[int] = []
    with client_for(app) as client:

        def call() -> None:
            statuses.append(client.post(SELECT, json=sample("order-select.json")).status_code)

        calls = [threading.Thread(target=call) for _ in range(2)]
        for thread in calls:
            thread.start()
        time.sleep(1.0)
        entered_while_one_held_the_place = len(entered)
        release.set()
        for thread in calls:
            thread.join(10)
    assert entered_while_one_held_the_place == 1  # the other call waited, its work not started
    assert statuses == [200, 200]


def test_a_call_waiting_for_a_place_still_meets_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, max_concurrent_hook_calls=1, hook_deadline_seconds=1.0)
    release = threading.Event()
    original = hook_flow.evaluate

    def blocking(*args: Any, **kwargs: Any) -> Any:
        release.wait(3)
        return original(*args, **kwargs)

    monkeypatch.setattr(hook_flow, "evaluate", blocking)
    with client_for(app) as client:
        first = threading.Thread(target=lambda: client.post(SELECT, json=sample("order-select.json")))
        first.start()
        time.sleep(0.2)
        started = time.monotonic()
        second = client.post(SELECT, json=sample("order-select.json"))
        elapsed = time.monotonic() - started
        release.set()
        first.join(10)
    assert second.status_code == 503
    assert elapsed < 2.0
