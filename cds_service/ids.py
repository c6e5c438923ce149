"""Card and suggestion ids: random (version 4) UUIDs, cheaply.

`uuid.uuid4()` asks the OS for 16 random bytes per id, a system call each; a response holds seven or
more ids. Here one call fetches the randomness of 256 ids. The bytes come from the same source
(`os.urandom`), and a process started by fork refills its buffer first, so no two workers share ids.
"""

from __future__ import annotations

import os
import threading
import uuid

_BYTES_PER_ID = 16


class RandomIds:
    def __init__(self, ids_per_refill: int = 256) -> None:
        self._size = ids_per_refill * _BYTES_PER_ID
        self._buffer = b""
        self._offset = 0
        self._pid = -1
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._offset >= len(self._buffer) or self._pid != os.getpid():
                self._buffer, self._offset, self._pid = os.urandom(self._size), 0, os.getpid()
            chunk = self._buffer[self._offset : self._offset + _BYTES_PER_ID]
            self._offset += _BYTES_PER_ID
        return str(uuid.UUID(bytes=chunk, version=4))
