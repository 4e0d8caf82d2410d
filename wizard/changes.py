"""Change: one thing the wizard does to a node. It describes itself (with a diff), knows whether it is
already in place, applies itself, returns what undo needs, and reverses itself from that record.
Dry-run, review, idempotency and undo all come from this one type; adding a kind is one subclass here.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from wizard.errors import Interrupted, WizardError

if TYPE_CHECKING:
    from collections.abc import Callable

    from wizard.answers import Etcd
    from wizard.events import ChangeInfo, ChangeState, StepEvent, SubStepInfo
    from wizard.node import NodeLike
    from wizard.node.etcd import Store
    from wizard.node.files import FileState
    from wizard.node.linkinfo import LinkInfo

NO_SYSTEMD = ("System has not been booted with systemd", "Failed to connect to bus", "Host is down")


@dataclass
class ApplyContext:
    node: NodeLike
    backup: Callable[[bytes], str]  # stores bytes in the journal, returns where
    prepare: Callable[[dict[str, Any]], None]  # records what undo needs before the node is touched
    interrupted: Callable[[], bool]
    store: Callable[[], Store]
    entry_id: str = ""  # the journal entry's id: marks what this change creates, so undo finds exactly that
    emit: Callable[[StepEvent], None] = lambda e: None


@dataclass
class UndoContext:
    node: NodeLike
    read_backup: Callable[[str], bytes]
    store_for: Callable[[dict[str, Any]], Store]
    restarts: list[str] = field(default_factory=list)  # services to restart once every file is back


@dataclass
class Applied:
    record: dict[str, Any]
    message: str
    warning: str = ""
    restart_skipped: str = ""  # the service that was not restarted because systemd is not running


class Change(ABC):
    kind: ClassVar[str] = ""
    _kinds: ClassVar[dict[str, type[Change]]] = {}
    pending_on: str = ""  # set when a value is known only after an earlier step has run
    temporary: bool = False  # reversed by its own step when done (the smoke test's objects)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            Change._kinds[cls.kind] = cls

    @staticmethod
    def of_kind(kind: str) -> type[Change]:
        try:
            return Change._kinds[kind]
        except KeyError:
            raise WizardError(f"the journal names an unknown change kind {kind!r}",
                              "it was written by another version of flannel-wizard; reverse it by hand") from None

    @abstractmethod
    def summary(self) -> str: ...

    def detail(self) -> str:
        return ""

    @abstractmethod
    def in_place(self) -> bool: ...

    @abstractmethod
    def apply(self, ctx: ApplyContext) -> Applied: ...

    @classmethod
    @abstractmethod
    def undo(cls, record: dict[str, Any], ctx: UndoContext) -> str:
        """Reverse what `apply` recorded; '' when there is nothing to say."""

    @classmethod
    def record_problem(cls, record: dict[str, Any]) -> str:
        """Why undo must not act on this record, read back from the journal ('' when it may): the journal
        is data that root acts on, so every field is checked for the type and form `apply` writes."""
        return ""

    def title(self) -> str:
        """The summary without its reason: what a one-line row shows."""
        return self.summary()

    def info(self, id: str, state: ChangeState | None = None) -> ChangeInfo:
        from wizard.events import ChangeInfo

        if state is None:
            state = "pending" if self.pending_on else "planned"
        before, after = self.contents()
        return ChangeInfo(id, self.kind, self.summary(), state, self.detail(), self.pending_on, self.title(),
                          before, after)

    def contents(self) -> tuple[str | None, str | None]:
        """The whole text before and after, for a change whose diff is of text that may be shown."""
        return None, None

    def _not_pending(self) -> None:
        if self.pending_on:
            raise WizardError(f"cannot {self.summary()}: it waits for {self.pending_on}",
                              "run the step it depends on first")


# ---------------------------------------------------------------- files


@dataclass
class FileWrite(Change):
    path: str
    # None: known only once `pending_on` is (then `example` shows a likely content); not in the repr,
    # which a traceback's locals would show, since the bytes may be a secret
    new: bytes | None = field(repr=False)
    old: FileState = field(repr=False)
    mode: int | None = None
    secret: bool = False
    why: str = ""
    pending_on: str = ""
    example: bytes | None = None
    example_for: str = ""  # what the example assumes, e.g. "a lease of 10.244.1.0/24"
    kind: ClassVar[str] = "file"

    def title(self) -> str:
        return f"{'create' if self.old.data is None else 'update'} {self.path}"

    def summary(self) -> str:
        return self.title() + (f" ({self.why})" if self.why else "")

    def detail(self) -> str:
        through = f"({self.path} leads to {self.old.target}: that file is written, the link stays)\n" if self.old.target else ""
        return through + self._detail()

    def _detail(self) -> str:
        if self.secret:
            return "(contents not shown: the file holds a secret; mode 0600)"
        if self.new is None:
            head = f"(written once {self.pending_on} is known"
            if self.example is None:
                return head + ")\n"
            return head + f"; for {self.example_for} it would be:)\n" + self._diff(self.example)
        text = self._diff(self.new)
        if not text and self.mode is not None and self.old.mode != self.mode:
            text = f"mode {self.old.mode:o} -> {self.mode:o}\n"
        return text

    def contents(self) -> tuple[str | None, str | None]:
        if self.secret or self.new is None:
            return None, None
        return (self.old.data or b"").decode(errors="replace"), self.new.decode(errors="replace")

    def _diff(self, new: bytes) -> str:
        old = (self.old.data or b"").decode(errors="replace").splitlines(keepends=True)
        lines = new.decode(errors="replace").splitlines(keepends=True)
        diff = difflib.unified_diff(old, lines, fromfile=f"a{self.path}", tofile=f"b{self.path}")
        return "".join(d if d.endswith("\n") else d + "\n\\ No newline at end of file\n" for d in diff)

    def in_place(self) -> bool:
        if self.new is None:
            return False
        return self.old.data == self.new and (self.mode is None or self.old.mode == self.mode)

    def apply(self, ctx: ApplyContext) -> Applied:
        self._not_pending()
        assert self.new is not None
        files = ctx.node.files
        current = files.state(self.path)  # refuses a path that leads out of the root, a FIFO, a device
        record: dict[str, Any] = {"path": self.path, "existed": current.data is not None}
        link = files.readlink(self.path)
        if link is not None:
            # a link to a file inside the root: its target is written and the link stays, so undo
            # restores the target's bytes and puts the link back if something replaced it meanwhile
            record.update(link=link, target=files.resolve(self.path))
        if current.data is not None:
            record.update(backup=ctx.backup(current.data), mode=current.mode, uid=current.uid, gid=current.gid)
        ctx.prepare(record)
        record["created_dirs"] = files.write(record.get("target", self.path), self.new, self.mode)
        return Applied(record, f"{'updated' if current.data is not None else 'created'} {self.path}")

    @classmethod
    def record_problem(cls, record: dict[str, Any]) -> str:
        def node_path(value: object) -> bool:
            return (isinstance(value, str) and value.startswith("/") and "\0" not in value
                    and ".." not in value.split("/"))

        if not node_path(record.get("path")):
            return "its path is not an absolute path without '..'"
        if not isinstance(record.get("existed"), bool):
            return "it does not say whether the file existed"
        if record["existed"]:
            backup = record.get("backup")
            if not isinstance(backup, str) or not backup.startswith("backups/") or "/" in backup[8:] or backup[8:] in ("", ".", ".."):
                return "its backup is not a file in the state dir's backups/"
            if not isinstance(record.get("mode"), int) or isinstance(record["mode"], bool) or not 0 <= record["mode"] <= 0o7777:
                return "its mode is not a file mode"
            if not all(isinstance(record.get(k), int) and not isinstance(record[k], bool) and record[k] >= 0 for k in ("uid", "gid")):
                return "its owner is not a uid and gid"
        dirs = record.get("created_dirs", [])
        if not isinstance(dirs, list) or not all(node_path(d) for d in dirs):
            return "its created directories are not absolute paths without '..'"
        if "link" in record or "target" in record:
            link = record.get("link")
            if not isinstance(link, str) or not link or "\0" in link or not node_path(record.get("target")):
                return "its link and target are not a link text and an absolute path"
        return ""

    @classmethod
    def undo(cls, record: dict[str, Any], ctx: UndoContext) -> str:
        files = ctx.node.files
        path, link = record["path"], record.get("link")
        where = record.get("target") or path
        if record["existed"]:
            files.write(where, ctx.read_backup(record["backup"]), record["mode"], (record["uid"], record["gid"]))
        else:
            files.remove(where)
            files.remove_empty_dirs(record.get("created_dirs", []))
        if link is None:
            return f"{'restored' if record['existed'] else 'removed'} {path}"
        if files.readlink(path) != link:
            files.symlink(path, link)  # replaced by a file since: the node had a link here
        return f"{'restored' if record['existed'] else 'removed'} {where}, the file {path} links to (the link stays)"


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
    kind: ClassVar[str] = "etcd"

    def summary(self) -> str:
        return f"{'create' if self.old is None else 'replace'} {self.key} in etcd"

    def detail(self) -> str:
        return json_diff(self.shown_old or self.old or "", self.shown_new or self.new, self.key)

    def in_place(self) -> bool:
        return False

    def apply(self, ctx: ApplyContext) -> Applied:
        store = ctx.store()
        ctx.prepare({"key": self.key, "old": self.old, "new": self.new, "etcd": self.settings.model_dump(mode="json")})
        if self.old is None:
            try:
                revision = store.create(self.key, self.new)
            except WizardError:
                # the transaction may have committed and only its reply been lost: the key says which
                found = _read_back(store, self.key)
                if found is None or found[0] != self.new:
                    raise
                revision = found[1]
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

    @classmethod
    def record_problem(cls, record: dict[str, Any]) -> str:
        from wizard.answers import Etcd

        if not isinstance(record.get("key"), str) or not record["key"].startswith("/") or "\0" in record["key"]:
            return "its etcd key is not an absolute key"
        if not isinstance(record.get("new"), str) or not isinstance(record.get("old"), str | None):
            return "its etcd values are not strings"
        if not isinstance(record.get("revision"), int | None) or isinstance(record.get("revision"), bool):
            return "its etcd revision is not a number"
        try:
            Etcd.model_validate(record.get("etcd"))
        except ValueError as exc:
            return f"its etcd settings are not valid: {str(exc).splitlines()[0]}"
        return ""

    @classmethod
    def undo(cls, record: dict[str, Any], ctx: UndoContext) -> str:
        store = ctx.store_for(record)
        key = record["key"]
        current = store.get(key)
        # already as it was (a run killed before its write, or an undo killed after its own): done, not a conflict
        if current is None and record["old"] is None:
            return f"{key} is already absent"
        if current is not None and record["old"] is not None and current[0] == record["old"]:
            return f"{key} already holds its earlier value"
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


def _read_back(store: Store, key: str) -> tuple[str, int] | None:
    try:
        return store.get(key)
    except WizardError:
        return None


def json_diff(old: str, new: str, name: str) -> str:
    """A unified diff of two JSON values, pretty-printed; an absent old value diffs from nothing."""

    def pretty(text: str) -> list[str]:
        if not text:
            return []
        try:
            return (json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n").splitlines(keepends=True)
        except ValueError:
            return [text + "\n"]

    return "".join(difflib.unified_diff(pretty(old), pretty(new), fromfile=f"{name} (in etcd)" if old else "(absent)",
                                        tofile=f"{name} (wanted)"))


# ---------------------------------------------------------------- links


@dataclass
class BridgeAddress(Change):
    bridge: str
    address: str  # "" while pending: `expect` says what it will be
    mtu: int
    old: LinkInfo
    pending_on: str = ""
    expect: str = ""  # e.g. "the /24 flanneld leases in 10.244.0.0/16"
    kind: ClassVar[str] = "link"

    def summary(self) -> str:
        return f"set {self.bridge} to {self.address or self.expect} mtu {self.mtu}"

    def detail(self) -> str:
        before = ", ".join(self.old.ipv4) or "no IPv4 address"
        return f"{self.bridge}: {before} mtu {self.old.mtu} -> {self.address or self.expect} mtu {self.mtu}"

    def in_place(self) -> bool:
        return not self.pending_on and self.old.ipv4 == (self.address,) and self.old.mtu == self.mtu

    def apply(self, ctx: ApplyContext) -> Applied:
        self._not_pending()
        current = ctx.node.links.link(self.bridge) or self.old
        record = {"bridge": self.bridge, "ipv4": list(current.ipv4), "mtu": current.mtu}
        ctx.prepare(record)
        ctx.node.links.set_ipv4(self.bridge, [self.address], self.mtu)
        return Applied(record, f"{self.bridge} is now {self.address} mtu {self.mtu}")

    @classmethod
    def record_problem(cls, record: dict[str, Any]) -> str:
        import ipaddress

        if not isinstance(record.get("bridge"), str) or not re.fullmatch(r"[A-Za-z0-9_.:@-]{1,15}", record["bridge"]):
            return "its bridge is not a link name"
        if not isinstance(record.get("mtu"), int) or not 68 <= record["mtu"] <= 65535:
            return "its MTU is not between 68 and 65535"
        try:
            [ipaddress.IPv4Interface(a) for a in record.get("ipv4") or []]
        except (ValueError, TypeError):
            return "its addresses are not IPv4 interfaces"
        return "" if isinstance(record.get("ipv4"), list) else "its addresses are not a list"

    @classmethod
    def undo(cls, record: dict[str, Any], ctx: UndoContext) -> str:
        ctx.node.links.set_ipv4(record["bridge"], record["ipv4"], record["mtu"])
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
    kind: ClassVar[str] = "restart"

    def title(self) -> str:
        return f"restart {self.service}" + (f" and wait for {self.wait_file}" if self.wait_file else "")

    def summary(self) -> str:
        return self.title() + (f" ({self.why})" if self.why else "")

    def in_place(self) -> bool:
        return not self.needed

    def apply(self, ctx: ApplyContext) -> Applied:
        files = ctx.node.files
        before = files.mtime_ns(self.wait_file) if self.wait_file else None
        started = time.time_ns()
        ctx.prepare({"service": self.service})
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
        hint = f"systemctl daemon-reload && systemctl restart {self.service}"
        return Applied(
            {"service": self.service, "skipped": True},
            f"did not restart {self.service}",
            f"systemd is not running here ({message}); run `{hint}` once it is",
            restart_skipped=self.service,
        )

    @classmethod
    def record_problem(cls, record: dict[str, Any]) -> str:
        return "" if unit_name_ok(record.get("service")) else "its service is not a systemd unit name"

    @classmethod
    def undo(cls, record: dict[str, Any], ctx: UndoContext) -> str:
        # restarted once every file is back, so the service starts with its old configuration
        service = record.get("service")
        if service and not record.get("skipped") and service not in ctx.restarts:
            ctx.restarts.insert(0, service)
        return ""


def unit_name_ok(name: object) -> bool:
    """systemd's unit-name rule, for what the wizard passes to systemctl: [A-Za-z0-9:_.@-], no leading dot."""
    return isinstance(name, str) and bool(re.fullmatch(r"[A-Za-z0-9:_@-][A-Za-z0-9:_.@-]{0,249}", name))


def systemctl(node: NodeLike, *args: str) -> str:
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


# ---------------------------------------------------------------- cluster objects


@dataclass
class KubeObjects(Change):
    """Objects the wizard creates in the cluster (the smoke test's Deployment and Service).

    Each is labelled with the journal entry's id, so undo after a crash deletes exactly what this
    change created, and never an object of the same name that someone else made later.
    """

    namespace: str
    objects: list[dict[str, Any]]  # full manifests; their metadata.labels get the change label
    kubeconfig: str | None
    why: str = ""
    temporary: bool = True
    replace: list[str] = field(default_factory=list)  # the wizard's own earlier objects of these names
    substep: SubStepInfo | None = None  # the numbered sub-step of its step that this change is
    kind: ClassVar[str] = "kube"
    LABEL: ClassVar[str] = "flannel-wizard/change"

    def names(self) -> list[str]:
        return [f"{o['kind'].lower()}/{o['metadata']['name']}" for o in self.objects]

    def title(self) -> str:
        return f"create {' and '.join(self.names())} in namespace {self.namespace}"

    def summary(self) -> str:
        return self.title() + (f" ({self.why})" if self.why else "")

    def detail(self) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": self.objects}, indent=2) + "\n"

    def in_place(self) -> bool:
        return False

    def apply(self, ctx: ApplyContext) -> Applied:
        from wizard import kubectl

        record = {"namespace": self.namespace, "names": self.names(), "kubeconfig": self.kubeconfig,
                  "label": ctx.entry_id}
        ctx.prepare(record)
        if self.replace:
            old = kubectl.run(ctx.node, self.kubeconfig, "delete", *self.replace, "-n", self.namespace,
                              "--ignore-not-found", "--wait=true", "--timeout=30s")
            if not old.ok:
                raise WizardError(f"cannot delete the wizard's earlier {', '.join(self.replace)}: {kubectl.said(old)}")
        labelled = []
        for obj in self.objects:
            copy = json.loads(json.dumps(obj))
            copy["metadata"].setdefault("labels", {})[self.LABEL] = ctx.entry_id
            if copy["kind"] == "Deployment":
                copy["spec"]["template"]["metadata"].setdefault("labels", {})[self.LABEL] = ctx.entry_id
            labelled.append(copy)
        created = kubectl.run(ctx.node, self.kubeconfig, "create", "-f", "-", "-o", "json", "--validate=false",
                              input=json.dumps({"apiVersion": "v1", "kind": "List", "items": labelled}))
        if not created.ok:
            # kubectl creates the objects one by one: what it made before the refusal carries our label and
            # goes again now, since a failed change is not one that rollback or undo reverses
            leftover = ""
            try:
                self.undo(record, UndoContext(ctx.node, lambda name: b"", lambda record: ctx.store()))
            except WizardError as exc:
                leftover = f"; some may be left: {exc.what}"
            raise WizardError(f"kubectl create failed: {kubectl.said(created)}{leftover}",
                              f"the kubeconfig's user must be allowed to create {', '.join(self.names())} in {self.namespace}")
        record["created"] = kubectl.items(created)
        return Applied(record, f"created {' and '.join(self.names())}")

    @classmethod
    def record_problem(cls, record: dict[str, Any]) -> str:
        if not isinstance(record.get("namespace"), str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
                                                                               record["namespace"]):
            return "its namespace is not a Kubernetes namespace name"
        names = record.get("names")
        if not isinstance(names, list) or not all(
                isinstance(n, str) and re.fullmatch(r"(deployment|service)/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", n)
                for n in names):
            return "its objects are not deployment/NAME or service/NAME"
        if not isinstance(record.get("label"), str) or not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,62}", record["label"]):
            return "its label is not a label value"
        config = record.get("kubeconfig")
        if config is not None and (not isinstance(config, str) or not config.startswith("/") or ".." in config.split("/")):
            return "its kubeconfig is not an absolute path"
        return ""

    @classmethod
    def undo(cls, record: dict[str, Any], ctx: UndoContext) -> str:
        from wizard import kubectl

        node, ns, config = ctx.node, record["namespace"], record.get("kubeconfig")
        found = kubectl.run(node, config, "get", *record["names"], "-n", ns, "-o", "json", "--ignore-not-found")
        if not found.ok:
            raise WizardError(f"cannot look up {', '.join(record['names'])}: {kubectl.said(found)}",
                              "check that the API server answers, then run undo again")
        ours = [f"{i['kind'].lower()}/{i['metadata']['name']}" for i in kubectl.items(found)
                if (i.get("metadata", {}).get("labels") or {}).get(cls.LABEL) == record["label"]]
        if not ours:
            return f"{', '.join(record['names'])} already gone"
        gone = kubectl.run(node, config, "delete", *ours, "-n", ns, "--ignore-not-found", "--wait=false")
        if not gone.ok:
            raise WizardError(f"could not delete {', '.join(ours)}: {kubectl.said(gone)}",
                              f"kubectl delete {' '.join(ours)} -n {ns}")
        return f"deleted {' and '.join(ours)}"
