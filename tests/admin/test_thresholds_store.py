"""The versions table and the per-process cache: one seed, compare-and-swap saves, refresh within a second."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from cds_service.admin.audit import Actor, entries
from cds_service.admin.thresholds_source import StaticThresholds
from cds_service.admin.thresholds_store import NothingToSave, ThresholdsStore, UnknownVersion, VersionConflict
from cds_service.storage.database import Database, migrate
from rules.thresholds import DEFAULT_THRESHOLDS, Thresholds
from tests.support.app import client_for, make_app

EDITOR = Actor("tester", "editor")


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    migrate(db.engine)
    return db


def lung(limit: int) -> Thresholds:
    return DEFAULT_THRESHOLDS.model_copy(update={"max_levels_severe_lung": limit})


def test_the_store_is_seeded_once_whoever_starts_first(tmp_path: Path) -> None:
    db = database(tmp_path)
    first, second = ThresholdsStore(db), ThresholdsStore(db)
    assert first.seed(lung(1), "from a file") == (1, True)
    assert second.seed(DEFAULT_THRESHOLDS, "defaults") == (1, False)
    assert second.current() == (lung(1), 1)
    assert [e.action for e in entries(db)] == ["thresholds-seed"]


def test_save_is_a_compare_and_swap_on_the_current_version(tmp_path: Path) -> None:
    store = ThresholdsStore(database(tmp_path))
    store.seed(DEFAULT_THRESHOLDS, "defaults")
    saved = store.save(lung(3), expected_version=1, actor=EDITOR, reason="r")
    assert (saved.version, saved.based_on, saved.author, saved.reason) == (2, 1, "tester", "r")
    with pytest.raises(VersionConflict) as conflict:
        store.save(lung(1), expected_version=1, actor=EDITOR, reason="stale")
    assert (conflict.value.expected, conflict.value.current) == (1, 2)
    with pytest.raises(NothingToSave):
        store.save(lung(3), expected_version=2, actor=EDITOR, reason="same")
    assert store.current() == (lung(3), 2)
    assert [v.version for v in store.history()] == [2, 1]


def test_rollback_copies_an_old_version_and_unknown_versions_are_refused(tmp_path: Path) -> None:
    store = ThresholdsStore(database(tmp_path))
    store.seed(DEFAULT_THRESHOLDS, "defaults")
    store.save(lung(3), expected_version=1, actor=EDITOR, reason="r")
    back = store.rollback(1, expected_version=2, actor=EDITOR, reason="undo")
    assert (back.version, back.action, back.rollback_of, back.thresholds) == (
        3,
        "rollback",
        1,
        DEFAULT_THRESHOLDS,
    )
    assert store.get(2).thresholds == lung(3)  # history is never rewritten
    with pytest.raises(UnknownVersion):
        store.rollback(9, expected_version=3, actor=EDITOR, reason="x")


def test_racing_writers_on_separate_connections_make_exactly_one_version(tmp_path: Path) -> None:
    """Separate engines behave like separate processes: SQLite's write lock serialises them."""
    url = f"sqlite:///{tmp_path / 'race.sqlite3'}"
    seed_db = Database(url)
    migrate(seed_db.engine)
    ThresholdsStore(seed_db).seed(DEFAULT_THRESHOLDS, "defaults")
    stores = [ThresholdsStore(Database(url)) for _ in range(8)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(stores))

    def write(index: int, store: ThresholdsStore) -> None:
        barrier.wait()
        try:
            store.save(lung(1 + index % 3), expected_version=1, actor=EDITOR, reason=f"writer {index}")
            outcomes.append("saved")
        except VersionConflict:
            outcomes.append("conflict")
        except NothingToSave:
            outcomes.append("same")

    threads = [threading.Thread(target=write, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("saved") == 1
    assert outcomes.count("saved") + outcomes.count("conflict") + outcomes.count("same") == len(stores)
    assert [v.version for v in ThresholdsStore(seed_db).history()] == [2, 1]


def test_current_is_cached_and_refreshed_when_another_process_saves(tmp_path: Path) -> None:
    db = database(tmp_path)
    clock = FakeMonotonic()
    worker = ThresholdsStore(db, refresh_seconds=1.0, monotonic=clock)
    other = ThresholdsStore(db)
    other.seed(DEFAULT_THRESHOLDS, "defaults")
    assert worker.current()[1] == 1
    other.save(lung(3), expected_version=1, actor=EDITOR, reason="elsewhere")
    clock.now += 0.5
    assert worker.current()[1] == 1  # within the refresh interval: no query
    clock.now += 0.6
    assert worker.current() == (lung(3), 2)


def test_a_failed_refresh_keeps_deciding_with_the_last_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_log: list[str]
) -> None:
    clock = FakeMonotonic()
    store = ThresholdsStore(database(tmp_path), monotonic=clock)
    store.seed(DEFAULT_THRESHOLDS, "defaults")
    assert store.current()[1] == 1

    def unreachable() -> int:
        raise OperationalError("SELECT", {}, Exception("database is gone"))

    monkeypatch.setattr(store, "_pointer", unreachable)
    clock.now += 5
    assert store.current() == (DEFAULT_THRESHOLDS, 1)
    assert any("thresholds refresh failed" in line for line in service_log)


def test_start_up_seeds_version_1_from_the_thresholds_file(tmp_path: Path) -> None:
    file = tmp_path / "site.yaml"
    file.write_text("max_levels_severe_lung: 1\ninr_warning_max: 1.4\n", encoding="utf-8")
    app = make_app(tmp_path, thresholds_file=str(file))
    thresholds, version = app.state.flow.thresholds()
    assert version == 1
    assert (thresholds.max_levels_severe_lung, thresholds.inr_warning_max) == (1, 1.4)
    assert app.state.admin.store.current_version().reason == f"initial thresholds from {file}"


def test_a_thresholds_file_does_not_override_versions_already_stored(
    tmp_path: Path, service_log: list[str]
) -> None:
    first = make_app(tmp_path)
    first.state.admin.store.save(lung(3), expected_version=1, actor=EDITOR, reason="admin change")
    file = tmp_path / "site.yaml"
    file.write_text("max_levels_severe_lung: 1\n", encoding="utf-8")
    store = first.state.admin.store
    assert StaticThresholds.from_file(str(file)).seed(store) == 2
    assert any("thresholds file not used" in line for line in service_log)
    with client_for(make_app(tmp_path, thresholds_file=str(file))) as client:
        assert client.get("/healthz").status_code == 200
    assert store.current_version().thresholds == lung(3)
