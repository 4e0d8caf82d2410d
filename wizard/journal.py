"""The journal: every change recorded before and after it is made, with backups, so undo can reverse it.

It lives in the state dir under --root. An entry is `applying` while its change is in flight, so a crash
or power cut leaves a record undo can still act on.

A new journal records which node it belongs to (`node.identity()`): a journal the demo wrote names its
simulated node, so `undo` on the real machine can tell that nothing here was changed and refuse.

Root acts on what the journal says, so it is treated as untrusted data: the state dir must be root's
alone (0700, no symlink, no parent others can write), the file must have the journal's shape, and
each entry is checked before undo uses it (`problem()`); backups are only ever `backups/<entry id>`.
Services whose configuration changed but that were not restarted yet are kept as `owed` restarts, so
a run killed in between is finished by the next `apply` or `undo`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wizard.errors import InputError, WizardError

if TYPE_CHECKING:
    from wizard.changes import Change
    from wizard.node.files import Files

DEFAULT_STATE_DIR = "/var/lib/flannel-wizard"
LIVE = ("applying", "applied")
STATES = ("applying", "applied", "failed", "rolled-back", "undone")
ENTRY_ID = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{6}-\d{3,6}$")
RESERVE_BYTES = 128 * 1024  # freed when the disk fills up, so the journal can still record a rollback


class JournalUnreadable(InputError):
    """The journal file is not a journal: nothing was done."""


class JournalWriteFailed(WizardError):
    """The journal could not be saved (disk full, read-only): the change it was about to record is not made."""


class StateDirUnsafe(InputError):
    """The state dir could be changed by someone other than root: refused before anything is read."""


def check_private_dir(real: Path) -> None:
    """Refuse a state dir that someone other than root (this user) could steer: a symlink anywhere on
    its path, a parent others can write to (a sticky one such as /tmp aside), or itself not 0700."""
    me = os.geteuid()
    for n, where in enumerate([real, *real.parents]):
        try:
            st = os.lstat(where)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise StateDirUnsafe(f"state dir {real}: {where} is a symlink; root's undo would follow it",
                                 "use a real directory: pass --state-dir on a path without symlinks")
        if n == 0:
            if st.st_uid != me or st.st_mode & 0o077:
                raise StateDirUnsafe(
                    f"state dir {real} has mode {stat.S_IMODE(st.st_mode):04o} and owner uid {st.st_uid}: others "
                    "could change the journal that root's undo acts on",
                    f"chown {me} {real} && chmod 700 {real} (after checking its contents), or pass another --state-dir")
            continue
        others_write = st.st_mode & 0o002 or (st.st_mode & 0o020 and st.st_gid != 0)
        if st.st_uid not in (0, me) or (others_write and not st.st_mode & stat.S_ISVTX):
            raise StateDirUnsafe(
                f"state dir {real}: its parent {where} (mode {stat.S_IMODE(st.st_mode):04o}, owner uid "
                f"{st.st_uid}) can be changed by another user, who could swap the journal",
                "put the state dir under a directory only root can write (the default /var/lib/flannel-wizard)")


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
        self._unsaved = False  # what is in memory and not on disk yet: only what a crash may lose (see begin)
        self.low_space = False  # the disk filled up and the reserve was spent: make no further change

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self.check_dir()
            raw = self.files.read(self.path)
            if raw is not None:
                self._data = self._parse(raw)
            else:
                self._data = {"version": 1, "entries": [], "owed": []}
                if self.node_identity is not None:
                    self._data["node"] = dict(self.node_identity)
        return self._data

    def _parse(self, raw: bytes) -> dict[str, Any]:
        where = self.files.path(self.path)
        fix = f"move {where} aside and check the node by hand; nothing was done"
        if not raw.strip():
            raise JournalUnreadable(f"{where} is empty, not a journal (cut off while it was written?)", fix)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise JournalUnreadable(f"{where} is not valid JSON: {str(exc)[:200]}", fix) from None
        if (not isinstance(data, dict) or not isinstance(data.get("entries"), list)
                or not all(isinstance(e, dict) for e in data["entries"])):
            raise JournalUnreadable(f"{where} does not have a journal's shape (an object with a list of entries)", fix)
        by = data.get("owed_by")
        if not isinstance(by, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in by.items()):
            data["owed_by"] = {}  # only an ordering hint: a bad one is dropped, not trusted
        owed = data.setdefault("owed", [])
        if not isinstance(owed, list) or not all(isinstance(s, str) for s in owed):
            raise JournalUnreadable(f"{where}: 'owed' is not a list of service names", fix)
        return data

    def problem(self, entry: dict[str, Any]) -> str:
        """Why undo must not act on this entry ('' when it may): its shape, and the paths it names.

        The kind's own record check (Change.record_problem) and the node's confinement to --root
        (Files) do the rest."""
        from wizard.changes import Change
        from wizard.steps import ORDER

        if not isinstance(entry.get("id"), str) or not ENTRY_ID.match(entry["id"]):
            return f"its id {str(entry.get('id'))[:40]!r} is not one the wizard writes"
        if entry.get("step") not in ORDER:
            return f"its step {str(entry.get('step'))[:40]!r} is not a step"
        if entry.get("state") not in STATES:
            return f"its state {str(entry.get('state'))[:40]!r} is not a journal state"
        record = entry.get("record")
        if not isinstance(record, dict):
            return "its record is not an object"
        try:
            kind = Change.of_kind(str(entry.get("kind")))
        except WizardError as exc:
            return exc.what
        if "backup" in record and record["backup"] != f"backups/{entry['id']}":
            return f"its backup {str(record['backup'])[:80]!r} is not this entry's own (backups/{entry['id']})"
        return kind.record_problem(record) if record else ""

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
        self.ensure_dir()
        self._write(self.path, (json.dumps(self.data, indent=2) + "\n").encode())
        self._unsaved = False

    def flush(self) -> None:
        """Write what was kept in memory only (an entry's `applied`, a restart paid or owed): at the end of
        a run, so the journal on disk says exactly what happened."""
        if self._unsaved:
            self._save()

    def _write(self, path: str, data: bytes) -> None:
        try:
            self.files.write(path, data, 0o600)
        except (OSError, WizardError) as exc:
            if getattr(exc, "errno", None) == errno.ENOSPC and self._free_reserve():
                self.files.write(path, data, 0o600)  # the reserve made room for this one: a rollback's record
                self.low_space = True  # and the run stops here, so what is left goes to rolling back
                return
            if isinstance(exc, WizardError):
                raise
            raise JournalWriteFailed(f"cannot write {self.files.path(path)}: {exc.strerror or exc}",
                                     "free space on that filesystem (or make it writable), then run "
                                     "`flannel-wizard undo` or apply again") from None

    def check_dir(self) -> None:
        """Refuse a state dir others could have written to, before a single byte of it is read."""
        real = self.files.path(self.state_dir)
        if real.exists() or real.is_symlink():
            check_private_dir(real)

    def ensure_dir(self) -> None:
        """Create the state dir 0700 (its parents 0755), keep room for a rollback, and refuse one others
        could steer."""
        real = self.files.path(self.state_dir)
        root = Path(self.files.root)
        if not root.is_dir():
            raise InputError(f"the root {root} does not exist", "create it, or pass the --root of the node's files")
        if not real.exists():
            missing = [p for p in [real, *real.parents] if not p.exists()]
            for where in reversed(missing):
                where.mkdir(mode=0o755 if where != real else 0o700)
        check_private_dir(real)
        self._reserve(real)

    def _reserve(self, real: Path) -> None:
        reserve = real / ".reserve"
        if reserve.exists():
            return
        try:
            fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError:
            return  # no room even for the reserve: the journal write that follows says so
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        except OSError:
            os.close(fd)
            reserve.unlink(missing_ok=True)
            return
        os.close(fd)

    def _free_reserve(self) -> bool:
        reserve = self.files.path(self.state_dir) / ".reserve"
        if not reserve.exists():
            return False
        reserve.unlink()
        return True

    def begin(self, change: Change, step: str) -> dict[str, Any]:
        """A new entry, in memory: every change records itself (`finish(entry, "applying", record)`, through
        ApplyContext.prepare) before it touches the node, and that write puts the entry on disk. A crash
        before it loses an entry whose change never started, so it is not written twice."""
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
        self._unsaved = True
        return entry

    def backup(self, entry: dict[str, Any], data: bytes) -> str:
        """Keep the bytes a change is about to replace; 0600, since some files hold secrets."""
        name = f"backups/{entry['id']}"
        self.ensure_dir()
        self._write(f"{self.state_dir}/{name}", data)
        return name

    def read_backup(self, name: str) -> bytes:
        if not re.fullmatch(r"backups/\d{8}T\d{6}-[0-9a-f]{6}-\d{3,6}", name):
            raise WizardError(f"backup name {name[:80]!r} is not one the wizard writes; refused",
                              "the journal was edited by hand; restore that file yourself")
        data = self.files.read(f"{self.state_dir}/{name}")
        if data is None:
            raise FileNotFoundError(f"backup {name} is missing from {self.state_dir}")
        return data

    def finish(self, entry: dict[str, Any], state: str, record: dict[str, Any] | None = None, error: str = "",
               paid: str = "", later: bool = False) -> None:
        """Record an entry's new state. `later`: keep it in memory until the next write (the next change's
        record, or flush). Only for `applied`: an entry a crash leaves `applying` with its record is reversed
        by undo like an applied one, and a restart it leaves owed is made again by the next run."""
        entry["state"] = state
        if record is not None:
            entry["record"] = record
        if error:
            entry["error"] = error
        if paid:
            self.data["owed"] = [s for s in self.owed() if s != paid]
        if later:
            self._unsaved = True
        else:
            self._save()

    # ------------------------------------------------------------ restarts owed

    def owed(self) -> list[str]:
        """Services whose configuration changed and that no run has restarted since."""
        return list(self.data.get("owed", []))

    def owe(self, services: list[str], step: str = "", later: bool = False) -> None:
        """Record the restarts a step (or an undo) is about to make necessary, before it changes anything.
        `later`: with the step's first change's record, which is written before that change starts."""
        owed = self.owed()
        by_step = dict(self.data.get("owed_by") or {})
        for service in services if step else []:
            by_step.setdefault(service, step)  # the first step that restarts it ranks it (docker's, not cgroup's)
        wanted = self.restart_order(list(dict.fromkeys(owed + list(services))), by_step)
        if wanted != owed or by_step != self.data.get("owed_by"):
            self.data["owed"], self.data["owed_by"] = wanted, by_step
            if later:
                self._unsaved = True
            else:
                self._save()

    def restart_order(self, services: list[str], by_step: dict[str, str] | None = None) -> list[str]:
        """Services in the order their steps run (flanneld before docker before kubelet): a service
        restarted against a configuration an earlier step has not brought back yet would start wrong."""
        from wizard.steps import ORDER

        steps = dict(by_step if by_step is not None else (self.data.get("owed_by") or {}))
        for entry in self.entries:
            service = (entry.get("record") or {}).get("service") if entry.get("kind") == "restart" else None
            if isinstance(service, str) and entry.get("step") in ORDER:
                steps.setdefault(service, entry["step"])
        # a service of the cgroup step restarts after the others; kubelet after its runtime within it
        return sorted(services, key=lambda s: (ORDER.index(steps[s]) if steps.get(s) in ORDER else -1,
                                               services.index(s)))

    def pay(self, service: str) -> None:
        if service in self.owed():
            self.data["owed"] = [s for s in self.owed() if s != service]
            self._save()

    def live(self) -> list[dict[str, Any]]:
        """Entries whose change may be on the node now, newest first."""
        return [e for e in reversed(self.entries) if e["state"] in LIVE]
