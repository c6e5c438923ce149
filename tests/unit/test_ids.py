"""Card ids: version-4 UUIDs, unique, and never shared by a forked worker."""

from __future__ import annotations

import os
import uuid

import pytest

from cds_service.ids import RandomIds


def test_ids_are_distinct_version_4_uuids_across_refills() -> None:
    ids = RandomIds(ids_per_refill=4)
    made = [ids() for _ in range(1000)]
    assert len(set(made)) == 1000
    for value in made:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == value


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_does_not_repeat_the_parents_ids() -> None:
    ids = RandomIds()
    ids()  # the buffer is filled before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without running the parent's clean-up
        os.write(write, ids().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(read, 64).decode()
    assert child_id != ids()
