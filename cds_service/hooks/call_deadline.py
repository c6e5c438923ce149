"""The deadline of one hook call, which its work checks cooperatively.

The route waits for the worker thread at most until the deadline and then answers 503; a thread cannot
be stopped from outside, so the work itself checks between its stages (and the FHIR fetches take the
same deadline), and stops at the first check past it instead of burning CPU for an answer nobody waits
for. Nothing of a call that missed its deadline is stored.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from cds_service.web.errors import DeadlineExceeded


@dataclass
class CallDeadline:
    seconds: float
    at: float = 0.0  # monotonic; set from `seconds` when made
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.at = time.monotonic() + self.seconds

    def cancel(self) -> None:
        """The caller stopped waiting: the work stops at its next check."""
        self._cancelled.set()

    @property
    def passed(self) -> bool:
        return self._cancelled.is_set() or time.monotonic() >= self.at

    def check(self) -> None:
        if self.passed:
            raise DeadlineExceeded(f"The hook call did not finish within {self.seconds:g} s")
