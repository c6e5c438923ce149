"""Evaluation records as a hook call leaves them, for tests of how they are stored."""

from __future__ import annotations

from cds_service.storage.records import EvaluationRecord, IssuedCard


def evaluation_record(n: int, cards: int = 1) -> EvaluationRecord:
    """Call number `n`: a three-level kyphoplasty with `cards` COPD warnings, the first `card-{n}`, the
    others `card-{n}-{k}`."""
    uuids = [f"card-{n}"] + [f"card-{n}-{k}" for k in range(1, cards)]
    return EvaluationRecord(
        service_id="vertebral-augmentation-select",
        hook="order-select",
        hook_instance=f"hook-{n}",
        patient_hash="0" * 64,
        thresholds_version=1,
        procedure="kyphoplasty",
        level_count=3,
        rules_run=("copd-multilevel",),
        outcomes=[{"rule": "copd-multilevel", "indicator": "warning", "card": uuid} for uuid in uuids],
        cards=tuple(
            IssuedCard(uuid=uuid, rule="copd-multilevel", indicator="warning", suggestion_uuids=())
            for uuid in uuids
        ),
        data={},
        timings_ms={"total": 1.0},
    )
