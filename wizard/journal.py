"""The journal: every change recorded before and after it is made, with backups, so undo can reverse it.

It lives in the state dir under --root. An entry is `applying` while its change is in flight, so a crash
or power cut leaves a record undo can still act on.

A new journal records which node it belongs to (`node.identity()`): a journal the demo wrote names its
simulated node, so `undo` on the real machine can tell that nothing here was changed and refuse.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wizard.changes import Change
    from wizard.node.files import Files

DEFAULT_STATE_DIR = "/var/lib/flannel-wizard"
LIVE = ("applying", "applied")


class Journal:
    def __init__(self, files: Files, state_dir: str = DEFAULT_STATE_DIR,
                 node_identity: dict[str, str] | None = None) -> None:
        self.files = files
        # the demo's files carry its identity too, so a demo journal is marked even where a caller
        # did not pass one
        self.node_identity = node_identity if node_identity is not None else getattr(files, "node_identity", None)
        self.state_dir = state_dir.rstrip("/") or "/"
        self.path = f"{self.state_dir}/journal.json"
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._data: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            raw = self.files.read(self.path)
            if raw:
                self._data = json.loads(raw)
            else:
                self._data = {"version": 1, "entries": []}
                if self.node_identity is not None:
                    self._data["node"] = dict(self.node_identity)
        return self._data

    @property
    def node(self) -> dict[str, str] | None:
        """The node this journal's changes were made to; None for a journal written before it was recorded."""
        found = self.data.get("node")
        return found if isinstance(found, dict) else None

    def belongs_to_demo(self) -> dict[str, str] | None:
        """The demo's identity ({"kind": "demo", "scenario", "root"}) when the demo wrote this journal."""
        node = self.node
        return node if node is not None and node.get("kind") == "demo" else None

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.data["entries"]

    def exists(self) -> bool:
        return self.files.exists(self.path)

    def _save(self) -> None:
        self._ensure_dir()
        self.files.write(self.path, (json.dumps(self.data, indent=2) + "\n").encode(), 0o600)

    def _ensure_dir(self) -> None:
        real = self.files.path(self.state_dir)
        if not real.exists():
            real.mkdir(parents=True, mode=0o700)

    def begin(self, change: Change, step: str) -> dict[str, Any]:
        mine, theirs = (self.node_identity or {}).get("kind"), (self.node or {}).get("kind")
        if mine and theirs and mine != theirs:
            # a real change recorded in the demo's journal would be one that `undo` then refuses to reverse
            from wizard.errors import InputError

            raise InputError(f"{self.files.path(self.path)} belongs to {'the demo' if theirs == 'demo' else 'a real node'}; "
                             "nothing was changed", "give this node its own --state-dir (or --root)")
        entry = {
            "id": f"{self.run_id}-{len(self.entries):03d}",
            "run": self.run_id,
            "step": step,
            "kind": change.kind,
            "summary": change.summary(),
            "state": "applying",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "record": {},
        }
        self.entries.append(entry)
        self._save()
        return entry

    def backup(self, entry: dict[str, Any], data: bytes) -> str:
        """Keep the bytes a change is about to replace; 0600, since some files hold secrets."""
        name = f"backups/{entry['id']}"
        self._ensure_dir()
        self.files.write(f"{self.state_dir}/{name}", data, 0o600)
        return name

    def read_backup(self, name: str) -> bytes:
        data = self.files.read(f"{self.state_dir}/{name}")
        if data is None:
            raise FileNotFoundError(f"backup {name} is missing from {self.state_dir}")
        return data

    def finish(self, entry: dict[str, Any], state: str, record: dict[str, Any] | None = None, error: str = "") -> None:
        entry["state"] = state
        if record is not None:
            entry["record"] = record
        if error:
            entry["error"] = error
        self._save()

    def live(self) -> list[dict[str, Any]]:
        """Entries whose change may be on the node now, newest first."""
        return [e for e in reversed(self.entries) if e["state"] in LIVE]
