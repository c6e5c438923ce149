"""Store evaluation rows off the hook's path, several per transaction when calls come fast.

Every hook call leaves one evaluation row and its card rows. Written inside the call, that is a
transaction per call (an SQLite commit, or a PostgreSQL round trip) on the path the clinician waits on.
Here the call only queues its row; one thread per process waits `linger_seconds` after the first row for
the rows of the calls in flight, then writes them all in one transaction. At a trickle that is one row
a few milliseconds after its call; under load the batches grow and the cost per row falls
(`python -m bench`).

What this changes, on purpose:
- A card's row exists a few milliseconds after the answer, not before it. Feedback handled by the same
  process waits for the queue first (`flush`); feedback that reaches another worker or replica before
  the row is written is stored anyway and linked to its evaluation by whichever of the two writes
  commits second (`records.link_early_feedback`).
- If the database is down, the clinician still gets the cards; the rows that could not be written are
  counted (`vcds_evaluation_rows_dropped_total`), logged without content, and dropped. /readyz reports
  the database.
- A crash of the process loses what is still queued (at most the calls of the last moment); a clean
  shutdown writes it first.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from sqlalchemy.exc import SQLAlchemyError

from cds_service.storage.database import Database
from cds_service.storage.records import EvaluationRecord, store_batch
from cds_service.web import metrics

log = logging.getLogger("vertebral_cds.storage")


class EvaluationWriter:
    """A queue and the thread that drains it. The thread starts with the first row and stops after
    `idle_seconds` without one, so an app that is built and never served leaves no thread behind."""

    def __init__(
        self,
        database: Database,
        *,
        linger_seconds: float = 0.05,
        max_queued: int = 10_000,
        max_batch: int = 500,
        idle_seconds: float = 5.0,
    ) -> None:
        self.database = database
        self.linger_seconds = linger_seconds
        self.max_queued = max_queued
        self.max_batch = max_batch
        self.idle_seconds = idle_seconds
        self._urgent = False
        """Someone waits in `flush`: write without lingering."""
        self._queue: deque[EvaluationRecord] = deque()
        self._changed = threading.Condition()
        self._submitted = 0
        self._done = 0
        """Rows handled so far (written or dropped): `flush` waits for it to reach `_submitted`."""
        self._closing = False
        self._thread: threading.Thread | None = None

    def submit(self, record: EvaluationRecord) -> None:
        """Queue one evaluation for writing. Never waits for the database: a full queue drops the row
        (counted and logged). After `close`, rows are written at once, in the caller's thread."""
        with self._changed:
            if self._closing:
                closed = True
            elif len(self._queue) >= self.max_queued:
                metrics.EVALUATION_ROWS_DROPPED.labels(reason="queue full").inc()
                log.error("evaluation row dropped: the write queue is full", extra={"rows": 1})
                return
            else:
                closed = False
                self._queue.append(record)
                self._submitted += 1
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="evaluation-writer", daemon=True)
                    self._thread.start()
                # Wake the thread only when it has something to act on: the first row of a batch (it
                # waits for one) or a full batch (it stops lingering). Woken for every row, it took the
                # GIL from the calls only to go back to sleep.
                if len(self._queue) == 1 or len(self._queue) >= self.max_batch:
                    self._changed.notify_all()
        if closed:
            self._write([record])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is written (or dropped). False on timeout."""
        with self._changed:
            target = self._submitted
            self._urgent = True
            self._changed.notify_all()
            return self._changed.wait_for(lambda: self._done >= target, timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread; later rows are written at once."""
        with self._changed:
            self._closing = True
            thread = self._thread
            self._changed.notify_all()
        if thread is not None:
            thread.join(timeout)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue) or self._closing, timeout=self.idle_seconds)
                if not self._queue:  # idle, or closing with nothing left: the next row starts a thread
                    self._thread = None
                    return
                self._changed.wait_for(
                    lambda: len(self._queue) >= self.max_batch or self._closing or self._urgent,
                    timeout=self.linger_seconds,
                )
                self._urgent = False
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]
            self._write(batch)
            with self._changed:
                self._done += len(batch)
                self._changed.notify_all()

    def _write(self, batch: list[EvaluationRecord]) -> None:
        try:
            store_batch(self.database, batch)
        except SQLAlchemyError as error:
            metrics.EVALUATION_ROWS_DROPPED.labels(reason="database error").inc(len(batch))
            log.error(
                "evaluation rows not stored: the database refused the write",
                extra={"rows": len(batch), "error_code": type(error).__name__},
            )
