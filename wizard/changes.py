"""Change: one thing the wizard does to a node. It describes itself (with a diff), knows whether it is
already in place, applies itself and returns what undo needs. Dry-run, review, idempotency and undo all
come from this one type.
"""

from __future__ import annotations

import difflib
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wizard.errors import Interrupted, WizardError

if TYPE_CHECKING:
    from collections.abc import Callable

    from wizard.answers import Etcd
    from wizard.node import Node
    from wizard.node.etcd import Store
    from wizard.node.files import FileState
    from wizard.node.linkinfo import LinkInfo

NO_SYSTEMD = ("System has not been booted with systemd", "Failed to connect to bus", "Host is down")


@dataclass
class ApplyContext:
    node: Node
    backup: Callable[[bytes], str]  # stores bytes in the journal, returns where
    prepare: Callable[[dict[str, Any]], None]  # records what undo needs before the node is touched
    interrupted: Callable[[], bool]
    store: Callable[[], Store]
    etcd_password: Callable[[], str | None] = lambda: None


@dataclass
class Applied:
    record: dict[str, Any]
    message: str
    warning: str = ""


class Change(ABC):
    kind: str = ""
    step: str = ""

    @abstractmethod
    def summary(self) -> str: ...

    def detail(self) -> str:
        return ""

    @abstractmethod
    def in_place(self) -> bool: ...

    @abstractmethod
    def apply(self, ctx: ApplyContext) -> Applied: ...


# ---------------------------------------------------------------- files


@dataclass
class FileWrite(Change):
    path: str
    new: bytes
    old: FileState
    mode: int | None = None
    secret: bool = False
    why: str = ""
    kind: str = "file"

    def summary(self) -> str:
        verb = "create" if self.old.data is None else "update"
        return f"{verb} {self.path}" + (f" ({self.why})" if self.why else "")

    def detail(self) -> str:
        if self.secret:
            return "(contents not shown: the file holds a secret; mode 0600)"
        old = (self.old.data or b"").decode(errors="replace").splitlines(keepends=True)
        new = self.new.decode(errors="replace").splitlines(keepends=True)
        diff = difflib.unified_diff(old, new, fromfile=f"a{self.path}", tofile=f"b{self.path}")
        text = "".join(d if d.endswith("\n") else d + "\n\\ No newline at end of file\n" for d in diff)
        if not text and self.mode is not None and self.old.mode != self.mode:
            text = f"mode {self.old.mode:o} -> {self.mode:o}\n"
        return text

    def in_place(self) -> bool:
        return self.old.data == self.new and (self.mode is None or self.old.mode == self.mode)

    def apply(self, ctx: ApplyContext) -> Applied:
        files = ctx.node.files
        current = files.state(self.path)
        record: dict[str, Any] = {"path": self.path, "existed": current.data is not None}
        if current.data is not None:
            record.update(backup=ctx.backup(current.data), mode=current.mode, uid=current.uid, gid=current.gid)
        ctx.prepare(record)
        record["created_dirs"] = files.write(self.path, self.new, self.mode)
        return Applied(record, f"{'updated' if current.data is not None else 'created'} {self.path}")


def undo_file(node: Node, record: dict[str, Any], read_backup: Callable[[str], bytes]) -> str:
    if record["existed"]:
        node.files.write(record["path"], read_backup(record["backup"]), record["mode"], (record["uid"], record["gid"]))
        return f"restored {record['path']}"
    node.files.remove(record["path"])
    node.files.remove_empty_dirs(record.get("created_dirs", []))
    return f"removed {record['path']}"


# ---------------------------------------------------------------- etcd


class LostRace(WizardError):
    """Another node created the key between our read and our write."""


@dataclass
class EtcdWrite(Change):
    key: str
    new: str
    old: str | None
    revision: int | None
    settings: Etcd
    shown_new: str = ""  # the value as output may show it (secrets masked)
    shown_old: str = ""
    kind: str = "etcd"

    def summary(self) -> str:
        return f"{'create' if self.old is None else 'replace'} {self.key} in etcd"

    def detail(self) -> str:
        if self.old is None:
            return f"(absent) -> {self.shown_new or self.new}"
        return json_diff(self.shown_old or self.old, self.shown_new or self.new, self.key)

    def in_place(self) -> bool:
        return False

    def apply(self, ctx: ApplyContext) -> Applied:
        store = ctx.store()
        ctx.prepare({"key": self.key, "old": self.old, "new": self.new, "etcd": self.settings.model_dump(mode="json")})
        if self.old is None:
            revision = store.create(self.key, self.new)
            if revision is None:
                raise LostRace(f"{self.key} was created by someone else after it was read")
            verb = "created"
        else:
            assert self.revision is not None
            revision = store.cas(self.key, self.new, self.revision)
            if revision is None:
                raise WizardError(
                    f"{self.key} changed in etcd after it was read; nothing was written",
                    "run again to see the new value",
                )
            verb = "replaced"
        record = {
            "key": self.key, "old": self.old, "new": self.new, "revision": revision,
            "etcd": self.settings.model_dump(mode="json"),
        }
        return Applied(record, f"{verb} {self.key}")


def undo_etcd(store: Store, record: dict[str, Any]) -> str:
    key = record["key"]
    current = store.get(key)
    if current is None or current[0] != record["new"] or (record.get("revision") and current[1] != record["revision"]):
        raise WizardError(
            f"{key} was changed by someone else since the wizard wrote it; left as it is",
            "compare it by hand (etcdctl get) and fix it if needed",
        )
    if record["old"] is None:
        if not store.delete_if(key, current[1]):
            raise WizardError(f"{key} changed while undoing; left as it is", "run undo again")
        return f"deleted {key}"
    if store.cas(key, record["old"], current[1]) is None:
        raise WizardError(f"{key} changed while undoing; left as it is", "run undo again")
    return f"restored {key}"


def json_diff(old: str, new: str, name: str) -> str:
    def pretty(text: str) -> list[str]:
        try:
            return (json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n").splitlines(keepends=True)
        except ValueError:
            return [text + "\n"]

    return "".join(difflib.unified_diff(pretty(old), pretty(new), fromfile=f"{name} (in etcd)", tofile=f"{name} (wanted)"))


# ---------------------------------------------------------------- links


@dataclass
class BridgeAddress(Change):
    bridge: str
    address: str
    mtu: int
    old: LinkInfo
    kind: str = "link"

    def summary(self) -> str:
        return f"set {self.bridge} to {self.address} mtu {self.mtu}"

    def detail(self) -> str:
        before = ", ".join(self.old.ipv4) or "no IPv4 address"
        return f"{self.bridge}: {before} mtu {self.old.mtu} -> {self.address} mtu {self.mtu}"

    def in_place(self) -> bool:
        return self.old.ipv4 == (self.address,) and self.old.mtu == self.mtu

    def apply(self, ctx: ApplyContext) -> Applied:
        current = ctx.node.links.link(self.bridge) or self.old
        record = {"bridge": self.bridge, "ipv4": list(current.ipv4), "mtu": current.mtu}
        ctx.prepare(record)
        ctx.node.links.set_ipv4(self.bridge, [self.address], self.mtu)
        return Applied(record, f"{self.bridge} is now {self.address} mtu {self.mtu}")


def undo_link(node: Node, record: dict[str, Any]) -> str:
    node.links.set_ipv4(record["bridge"], record["ipv4"], record["mtu"])
    return f"restored {record['bridge']} to {', '.join(record['ipv4']) or 'no address'} mtu {record['mtu']}"


# ---------------------------------------------------------------- services


@dataclass
class Restart(Change):
    service: str
    needed: bool
    daemon_reload: bool = False
    wait_file: str | None = None
    wait_s: float = 30.0
    why: str = ""
    kind: str = "restart"
    skipped: list[str] = field(default_factory=list)  # filled when systemd is not running

    def summary(self) -> str:
        text = f"restart {self.service}"
        if self.wait_file:
            text += f" and wait for {self.wait_file}"
        return text + (f" ({self.why})" if self.why else "")

    def in_place(self) -> bool:
        return not self.needed

    def apply(self, ctx: ApplyContext) -> Applied:
        files = ctx.node.files
        before = files.mtime_ns(self.wait_file) if self.wait_file else None
        started = time.time_ns()
        if self.daemon_reload:
            warning = systemctl(ctx.node, "daemon-reload")
            if warning:
                return self._not_booted(warning)
        warning = systemctl(ctx.node, "restart", self.service)
        if warning:
            return self._not_booted(warning)
        if self.wait_file:
            deadline = time.monotonic() + self.wait_s
            while True:
                mtime = files.mtime_ns(self.wait_file)
                if mtime is not None and (before is None or mtime > before or mtime >= started):
                    break
                if ctx.interrupted():
                    raise Interrupted()
                if time.monotonic() > deadline:
                    raise WizardError(
                        f"{self.service} did not write {self.wait_file} within {self.wait_s:g}s",
                        f"look at `journalctl -u {self.service}`; etcd reachable from this node? config at PREFIX/config?",
                    )
                time.sleep(0.02)
        return Applied({"service": self.service}, f"restarted {self.service}")

    def _not_booted(self, message: str) -> Applied:
        self.skipped.append(self.service)
        hint = f"systemctl daemon-reload && systemctl restart {self.service}"
        return Applied(
            {"service": self.service, "skipped": True},
            f"did not restart {self.service}",
            f"systemd is not running here ({message}); run `{hint}` once it is",
        )


def systemctl(node: Node, *args: str) -> str:
    """Run systemctl; '' on success, the reason when systemd is not running; raise on other failures."""
    result = node.commands.run("systemctl", *args, timeout=90)
    if result.ok:
        return ""
    text = (result.err or result.out).strip()
    if any(marker in text for marker in NO_SYSTEMD):
        return text.splitlines()[0]
    if result.rc == 127:
        raise WizardError("systemctl is not on PATH", "install systemd or restart the service by hand")
    raise WizardError(f"systemctl {' '.join(args)} failed: {text or f'exit {result.rc}'}", "see `systemctl status` and `journalctl -xe`")
