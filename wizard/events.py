"""The engine's typed outputs: StepEvent (live, one per thing that happens) and RunResult (the whole run).

Every front end renders these fields; none parses a message string. `--output json` is their
serialised form: one event per line, each carrying `version`, and a closing `result` object.
`flannel-wizard schema --events` prints their JSON Schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from wizard.proxypath import TreeNode

EVENTS_VERSION = 6  # 3: notes and checks carry `subject` (a peer node) and `hop` (where it breaks)
# 4: a file change carries `before` and `after`, the file's whole text (Ansible's diff mode shows them)
# 5: a note carries `items`, the whole listing its message sums up (the etcd step's leases, one per item)
# 6: an event carries `tree`, a path as nested {label, children} (the smoke test's kube-proxy path, any mode)

Status = Literal["pending", "running", "ok", "warn", "failed", "skipped"]
# run: the run as a whole · step: a step's own line · note: found while inspecting or planning ·
# change: one change planned, applied, failed or reversed · check: a verify result · substep: a numbered sub-step
Kind = Literal["run", "step", "note", "change", "check", "substep"]
# planned: will be made · pending: will be made, its value known only after an earlier step ·
# applied / failed: made, or tried and failed · rolled-back: reversed by a failing step or a cleanup · undone: by undo
ChangeState = Literal["planned", "pending", "applying", "applied", "failed", "rolled-back", "undone"]


@dataclass(frozen=True)
class ChangeInfo:
    id: str  # stable within a plan: "<step>.<n>"; the journal entry's id once applied
    kind: str  # file, etcd, link, restart, kube
    summary: str
    state: ChangeState
    diff: str = ""
    pending_on: str = ""  # what the value waits for, e.g. "flanneld's lease"
    title: str = ""  # the summary without its reason, for a one-line row
    # a file change whose contents may be shown: the whole text before ("" for a new file) and after;
    # None for other kinds, a secret, or a value known only later (pending)
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class SubStepInfo:
    index: int  # 1-based
    total: int
    title: str


@dataclass(frozen=True)
class StepEvent:
    step: str
    status: Status
    message: str
    detail: str = ""
    elapsed: float = 0.0
    kind: Kind = "step"
    change: ChangeInfo | None = None
    substep: SubStepInfo | None = None
    version: int = EVENTS_VERSION
    subject: str = ""  # a check about another node: its PublicIP
    hop: str = ""  # where a path breaks first: underlay, port, overlay state, overlay traffic, bridge, path MTU, ...
    # a note's whole listing, one entry each, that `message` sums up (16 000 leases): text output shows it
    # with --verbose, the TUI a keystroke away; `detail` stays short (a reason, a fix)
    items: tuple[str, ...] = ()
    # the kube-proxy path the smoke test traced, as explain-service draws it: front ends draw this, never `detail`
    tree: TreeNode | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed"] = round(self.elapsed, 3)
        return data


@dataclass(frozen=True)
class NoteInfo:
    status: Status
    message: str
    detail: str = ""
    subject: str = ""  # see StepEvent
    hop: str = ""
    items: tuple[str, ...] = ()


@dataclass
class SubStepResult:
    index: int
    total: int
    title: str
    status: Status
    message: str
    detail: str = ""
    elapsed: float = 0.0


@dataclass
class StepResult:
    name: str
    title: str
    status: Status = "pending"
    message: str = ""  # the step's closing line
    detail: str = ""  # its reason or fix when it failed
    elapsed: float = 0.0
    notes: list[NoteInfo] = field(default_factory=list)
    changes: list[ChangeInfo] = field(default_factory=list)
    checks: list[NoteInfo] = field(default_factory=list)
    substeps: list[SubStepResult] = field(default_factory=list)

    @property
    def made(self) -> list[ChangeInfo]:
        """Changes that are on the node now (applied, not rolled back)."""
        return [c for c in self.changes if c.state == "applied"]

    @property
    def planned(self) -> list[ChangeInfo]:
        return [c for c in self.changes if c.state in ("planned", "pending")]


@dataclass
class RunResult:
    dry_run: bool
    mode: Literal["apply", "plan", "check"] = "apply"
    code: int = 0
    status: Status = "pending"
    message: str = ""
    elapsed: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    applied: int = 0  # changes made by this run, temporary ones (reversed again by their step) included
    version: int = EVENTS_VERSION

    def step(self, name: str) -> StepResult | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def planned(self) -> int:
        return sum(len(s.planned) for s in self.steps)

    @property
    def made(self) -> int:
        return sum(len(s.made) for s in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed"] = round(self.elapsed, 3)
        data["planned"], data["made"] = self.planned, self.made
        return data


def schema() -> dict[str, Any]:
    """JSON Schema of one event line and of the closing result line of `--output json`."""
    from pydantic import TypeAdapter

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "flannel-wizard --output json",
        "description": f"version {EVENTS_VERSION}: one StepEvent object per line while running, then one line "
                       "{\"result\": RunResult}",
        "event": TypeAdapter(StepEvent).json_schema(),
        "result": TypeAdapter(RunResult).json_schema(),
    }
