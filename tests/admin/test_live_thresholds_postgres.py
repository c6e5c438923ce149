"""Live everywhere: a version saved through one server decides the next hook calls of another server's
workers on the same PostgreSQL database, within seconds and without a restart.

Uses a fresh schema, dropped afterwards, on the PostgreSQL that VCDS_TEST_POSTGRES_DSN names or on a
private one the session starts (tests/support/postgres.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from cds_service.admin.audit import Actor, entries
from cds_service.admin.thresholds_store import ThresholdsStore, VersionConflict
from cds_service.storage.database import Database, migrate
from rules.thresholds import DEFAULT_THRESHOLDS
from testing.service_process import ServiceProcess
from tests.support.app import sample

TOKEN = "editor-token-for-the-postgres-test"
SELECT = "/cds-services/vertebral-augmentation-select"

pytestmark = pytest.mark.integration


def _env(database_url: str) -> dict[str, str]:
    return {
        "VCDS_DATABASE_URL": database_url,
        "VCDS_ADMIN_TOKEN": TOKEN,
        "VCDS_PATIENT_HASH_KEY": "postgres-test-key",
        "VCDS_THRESHOLDS_REFRESH_SECONDS": "1",
        "VCDS_LOG_LEVEL": "WARNING",
    }


def _copd_card(server: ServiceProcess) -> tuple[bool, set[int]]:
    response = httpx.post(server.base_url + SELECT, json=sample("order-select.json"), timeout=10)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    rules = {c["source"]["topic"]["code"] for c in cards}
    versions = {c["extension"]["vertebral-cds"]["thresholdsVersion"] for c in cards}
    return "copd-multilevel" in rules, versions


def test_a_change_through_one_server_is_used_by_the_workers_of_another(pg_url: str, tmp_path: Path) -> None:
    env = _env(pg_url)
    with (
        ServiceProcess(env, workers=1, log_path=tmp_path / "admin-server.log") as admin_server,
        ServiceProcess(env, workers=2, log_path=tmp_path / "hook-server.log") as hook_server,
    ):
        for _ in range(6):  # both workers of the hook server answer with version 1
            assert _copd_card(hook_server) == (True, {1})

        headers = {"Authorization": f"Bearer {TOKEN}"}
        current = httpx.get(admin_server.base_url + "/admin/api/thresholds", headers=headers, timeout=10)
        values = {**current.json()["values"], "max_levels_severe_lung": 3}
        saved = httpx.put(
            admin_server.base_url + "/admin/api/thresholds",
            headers={**headers, "If-Match": current.headers["etag"]},
            json={"values": values, "reason": "multi-process test"},
            timeout=10,
        )
        assert saved.status_code == 200, saved.text
        saved_at = time.monotonic()

        deadline = saved_at + 10
        while _copd_card(hook_server) != (False, {2}):
            assert time.monotonic() < deadline, "the hook server never used version 2"
            time.sleep(0.05)
        first_seen = time.monotonic() - saved_at
        time.sleep(1.2)  # past one refresh interval every worker has looked
        for _ in range(10):
            assert _copd_card(hook_server) == (False, {2})
        print(f"propagation: version 2 first used by the other server {first_seen:.3f} s after the save")
        assert first_seen < 3.0


def test_racing_editors_on_postgresql_make_exactly_one_version(pg_url: str) -> None:
    url = pg_url
    seed_db = Database(url)
    migrate(seed_db.engine)
    ThresholdsStore(seed_db).seed(DEFAULT_THRESHOLDS, "defaults")
    databases = [Database(url) for _ in range(6)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(databases))

    def write(index: int, db: Database) -> None:
        barrier.wait()
        try:
            ThresholdsStore(db).save(
                DEFAULT_THRESHOLDS.model_copy(update={"pain_lookback_days": 10 + index}),
                expected_version=1,
                actor=Actor(f"editor {index}", "editor"),
                reason="race",
            )
            outcomes.append("saved")
        except VersionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(i, db)) for i, db in enumerate(databases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(outcomes) == ["conflict"] * 5 + ["saved"]
        store = ThresholdsStore(seed_db)
        assert [v.version for v in store.history()] == [2, 1]
        assert store.current()[1] == 2
        assert [e.action for e in entries(seed_db)] == ["thresholds-update", "thresholds-seed"]
    finally:
        for db in [seed_db, *databases]:
            db.dispose()
