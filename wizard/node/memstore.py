"""An in-memory etcd for the demo: the same Store interface, revisions that behave like etcd's.

etcd keeps the keys of its v2 API apart from those of v3: the demo's etcd is one MemoryStore for v3
with a second one (`parent` set) for v2, which shares its up/down state, as both APIs of one server do.
"""

from __future__ import annotations

import threading
import time

from wizard.node.etcd import Store, etcd_error


class MemoryStore(Store):
    def __init__(self, endpoint: str, version: str = "3.4.23", keys: dict[str, str] | None = None,
                 delay: float = 0.0, parent: MemoryStore | None = None) -> None:
        self.endpoint = endpoint
        self._version = version
        self._delay = delay
        self._lock = threading.Lock()
        self._revision = 1
        self._data: dict[str, tuple[str, int]] = {}
        self._parent = parent
        self._down = False
        for key, value in (keys or {}).items():
            self._put(key, value)

    @property
    def down(self) -> bool:
        """etcd refuses connections (both APIs: one server)."""
        return self._parent.down if self._parent is not None else self._down

    @down.setter
    def down(self, value: bool) -> None:
        if self._parent is not None:
            self._parent.down = value
        else:
            self._down = value

    def _put(self, key: str, value: str) -> int:
        self._revision += 1
        self._data[key] = (value, self._revision)
        return self._revision

    def _wait(self) -> None:
        # a round trip, so the demo's live status has something to show
        if self._delay:
            time.sleep(self._delay)
        if self.down:
            raise etcd_error(self.endpoint, "refused", "connection refused")

    def version(self) -> str:
        self._wait()
        return self._version

    def get(self, key: str) -> tuple[str, int] | None:
        self._wait()
        with self._lock:
            return self._data.get(key)

    def create(self, key: str, value: str) -> int | None:
        self._wait()
        with self._lock:
            return None if key in self._data else self._put(key, value)

    def cas(self, key: str, value: str, revision: int) -> int | None:
        self._wait()
        with self._lock:
            current = self._data.get(key)
            return self._put(key, value) if current and current[1] == revision else None

    def delete_if(self, key: str, revision: int) -> bool:
        self._wait()
        with self._lock:
            current = self._data.get(key)
            if current and current[1] == revision:
                del self._data[key]
                return True
            return False

    def list(self, prefix: str) -> list[tuple[str, str]]:
        self._wait()
        with self._lock:
            return sorted((k, v) for k, (v, _) in self._data.items() if k.startswith(prefix))

    def snapshot(self, prefix: str) -> list[tuple[str, str]]:
        """The keys under `prefix` as a watcher already holds them (the simulated flanneld's view of the
        leases): no round trip, so no delay, and no refusal while etcd is down."""
        with self._lock:
            return sorted((k, v) for k, (v, _) in self._data.items() if k.startswith(prefix))

    def put(self, key: str, value: str) -> None:
        """Unconditional write, as the simulated flanneld takes its lease."""
        with self._lock:
            self._put(key, value)
