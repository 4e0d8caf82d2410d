"""Steps as typed objects: each module defines its inspect, plan and verify and exports them as `STEP`.

A step reads the node only in `inspect(ctx) -> Facts` (a dataclass of its own); `plan(answers, facts)`
is pure, so a page, `plan` and `apply` get the same changes from the same facts; `verify(ctx, facts)`
returns typed checks. What a later step needs from an earlier one travels as the earlier plan's
typed `output` (for example the etcd step's config in force), never as a shared dict.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from wizard.answers import Answers, Etcd
    from wizard.changes import Change
    from wizard.events import StepEvent
    from wizard.node import NodeLike
    from wizard.node.etcd import ApiChoice, Store
    from wizard.node.files import FileState
    from wizard.proxypath import TreeNode

# The one list of steps, in the order of the manual procedure: the CLI, the TUI and --only/--skip read it.
ORDER = ("preflight", "network", "etcd", "flanneld", "docker", "cgroup", "mesh", "smoke")

NoteStatus = Literal["ok", "warn", "failed", "skipped"]
T = TypeVar("T")


@dataclass(frozen=True)
class Note:
    """Something a step found while inspecting or planning; `failed` stops the step before any change."""

    status: NoteStatus
    message: str
    detail: str = ""
    subject: str = ""  # a note about another node (the mesh step's peers): its PublicIP
    hop: str = ""  # where the path to it breaks first (mesh.HOPS), or what node-level thing this is about
    # the whole listing the message sums up, one entry each (the etcd step's leases): shown on request
    # (--verbose, a key in the TUI), kept in --output json, never folded into `detail`
    items: tuple[str, ...] = ()
    tree: TreeNode | None = None  # a path as nested labels (the smoke test's kube-proxy path), drawn as a tree


Check = Note  # what verify returns has the same shape


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    output: Any = None  # typed data for later steps (see each step's Output)

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def note(self, status: NoteStatus, message: str, detail: str = "", items: Sequence[str] = ()) -> None:
        self.notes.append(Note(status, message, detail, items=tuple(items)))

    @property
    def failed(self) -> bool:
        return any(n.status == "failed" for n in self.notes)

    @property
    def skipped(self) -> bool:
        return bool(self.notes) and not self.changes and all(n.status == "skipped" for n in self.notes)

    @property
    def to_make(self) -> list[Change]:
        """The changes not already in place: what apply will do, and what plan counts."""
        return [c for c in self.changes if not c.in_place()]


def _no_checks(ctx: Context, facts: Any) -> list[Check]:
    return []


def _no_restarts(ctx: Context) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Step:
    """One step: its name and title, and its three parts (each module defines them as functions)."""

    name: str
    title: str
    inspect: Callable[[Context], Any]  # all reading; returns the step's Facts
    plan: Callable[[Answers, Any], Plan]  # pure: the same facts and answers give the same changes
    verify: Callable[[Context, Any], list[Check]] = _no_checks  # after apply: typed checks
    needs: tuple[str, ...] = ()  # earlier steps whose plan output this one reads
    makes_changes: bool = True  # False: it reads and reports only ("checked")
    # the services its plan may restart: an earlier step's restart of one of them waits for this step,
    # so a service restarts once per run, after every change to its configuration
    restarts: Callable[[Context], tuple[str, ...]] = _no_restarts


def get(name: str) -> Step:
    """The step called `name` (imported on first use: `--help` pays for none of them)."""
    if name not in ORDER:
        raise KeyError(name)
    step: Step = importlib.import_module(f"wizard.steps.{name}").STEP
    return step


def select(only: list[str] | None = None, skip: list[str] | None = None) -> list[str]:
    return [n for n in ORDER if (not only or n in only) and n not in (skip or [])]


@dataclass
class Context:
    """What a step may use while it runs: the answers, the node, and this run's state."""

    answers: Answers
    node: NodeLike
    dry_run: bool = False
    checking: bool = False  # `check`: read as a plan does, but what a plan would put off is a problem now
    emit: Callable[[StepEvent], None] = lambda e: None
    ignore_preflight: frozenset[str] = frozenset()
    interrupted: Callable[[], bool] = lambda: False
    outputs: dict[str, Any] = field(default_factory=dict)  # each planned step's Plan.output, by step name
    skipped_restarts: set[str] = field(default_factory=set)  # services not restarted: systemd is not running
    planned_files: dict[str, bytes] = field(default_factory=dict)  # dry run: what earlier steps will write
    # service -> the later step that restarts it for an earlier one's changes (the runner's deferral): until
    # then the running service is the old one, so a reading of it says how it runs, not how it will
    deferred_restarts: dict[str, str] = field(default_factory=dict)
    restarted: list[str] = field(default_factory=list)  # services this run restarted, in order
    # set by the runner while a step verifies: reverses that step's temporary changes (the smoke test's objects)
    release: Callable[[], list[Note]] = lambda: []
    _store: Store | None = None
    _api: ApiChoice | None = None

    def __post_init__(self) -> None:
        from wizard.node.commands import keep_from_children

        keep_from_children(self.answers.etcd.password_env)

    def etcd_api(self) -> ApiChoice:
        """The etcd API for this run (`etcd.api: auto` asks the installed flanneld), chosen once per run."""
        if self._api is None:
            from wizard.node.etcd import choose_api

            self._api = choose_api(self.node.commands, self.answers.etcd)
        return self._api

    def etcd_settings(self) -> Etcd:
        """The answers' etcd settings with the API resolved: what the connection and a journal record use."""
        from wizard.node.etcd import resolved

        return resolved(self.answers.etcd, self.etcd_api())

    def store(self) -> Store:
        """The etcd connection, made once per run."""
        if self._store is None:
            self._store = self.node.etcd(self.etcd_settings(), self.answers.etcd_password())
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def output(self, step: str, kind: type[T]) -> T | None:
        value = self.outputs.get(step)
        return value if isinstance(value, kind) else None

    def file_state(self, path: str) -> FileState:
        """A file as the steps before this one leave it: on a dry run, with their planned writes."""
        state = self.node.files.state(path)
        planned = self.planned_files.get(path)
        if planned is None:
            return state
        from wizard.node.files import FileState

        return FileState(planned, state.mode if state.data is not None else 0o644, state.uid, state.gid)
