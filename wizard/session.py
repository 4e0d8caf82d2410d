"""One interactive session's state: the answers as the operator edits them, the node, the journal.

The TUI renders and edits this; it holds no widgets, so it can be tested and used without Textual.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wizard import answers as answers_mod
from wizard import savefile
from wizard.journal import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from collections.abc import Callable

    from wizard.answers import Answers
    from wizard.events import RunResult, StepEvent
    from wizard.journal import Journal
    from wizard.node import NodeLike
    from wizard.runner import Runner
    from wizard.steps import Context, Plan

Loc = tuple[Any, ...]
PASSWORD_ENV = "FLANNEL_ETCD_PASSWORD"  # the name saved answers give a password typed into the wizard


def defaults() -> dict[str, Any]:
    return savefile.data(answers_mod.Answers(version=1))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "backend":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class Session:
    node: NodeLike
    draft: dict[str, Any] = field(default_factory=defaults)
    source: str | None = None
    state_dir: str = DEFAULT_STATE_DIR
    scenario: dict[str, Any] | None = None  # the demo's machine profile; None on a real node
    file_problems: list[answers_mod.Problem] = field(default_factory=list)
    ignore_preflight: set[str] = field(default_factory=set)
    facts: dict[str, Any] = field(default_factory=dict)  # each step's facts as its page last read them

    # ------------------------------------------------------------ answers in

    @classmethod
    def from_file(cls, node: NodeLike, path: str, **kwargs: Any) -> Session:
        """Prefill from an answers file; a file with problems still prefills what it can, and its
        problems are kept to show on the screen each belongs to. A file that cannot be read as text
        (missing, a directory or FIFO, too large, not UTF-8) is refused before the wizard opens."""
        text = answers_mod.read(path)
        session = cls(node, source=path, **kwargs)
        try:
            _answers, data = answers_mod.parse_data(text, path)
        except answers_mod.AnswersInvalid as exc:
            session.file_problems = exc.problems
            data = exc.data
        if isinstance(data, dict):
            session.draft = _merge(defaults(), data)
        return session

    @property
    def demo(self) -> bool:
        return self.scenario is not None

    # ------------------------------------------------------------ editing

    def get(self, path: Loc, default: Any = None) -> Any:
        node: Any = self.draft
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def set(self, path: Loc, value: Any) -> None:
        """Set a value; `None` for an optional key removes it, as a file that leaves it out would."""
        node = self.draft
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if value is None and path[0] == "network" and len(path) == 3 and path[1] == "backend":
            node.pop(path[-1], None)  # an unset backend option is not written into flannel's config
        else:
            node[path[-1]] = value
        # a problem from the file is answered once the operator edits that field
        self.file_problems = [p for p in self.file_problems if tuple(p.loc[: len(path)]) != path]

    def set_password(self, value: str) -> None:
        """A password typed into the wizard: kept in memory, and the answers name it by reference."""
        etcd = self.draft["etcd"]
        if value and not etcd.get("password_file"):
            etcd["password_env"] = etcd.get("password_env") or PASSWORD_ENV
        answers_mod.remember_secret(etcd.get("password_env") or PASSWORD_ENV, value)
        if not value and etcd.get("password_env") == PASSWORD_ENV:
            etcd["password_env"] = None

    # ------------------------------------------------------------ validation

    def problems(self) -> dict[Loc, list[str]]:
        """Every problem by location: the model's own, and those still standing from the file."""
        _, found = answers_mod.check(self.draft)
        out: dict[Loc, list[str]] = {}
        for loc, _kind, message in found:
            out.setdefault(tuple(loc), []).append(message)
        for p in self.located_file_problems():
            if p.message not in out.get(tuple(p.loc), []):
                out.setdefault(tuple(p.loc), []).append(p.message)
        return out

    def unknown_keys(self, prefix: Loc = ()) -> list[Loc]:
        """Keys the answers model does not know (a typo like `endponts`, a key of another version): no
        field on any page can fix them, so the wizard offers to drop them (`drop`)."""
        _, found = answers_mod.check(self.draft)
        out = [tuple(loc) for loc, kind, _m in found if kind == "extra_forbidden"]
        out += [tuple(p.loc) for p in self.located_file_problems() if p.message.startswith("unknown key")]
        return [loc for loc in dict.fromkeys(out) if loc[: len(prefix)] == prefix]

    def drop(self, loc: Loc) -> None:
        """Remove a key from the answers (and the file's problem about it): saved answers do not carry it."""
        node: Any = self.draft
        for part in loc[:-1]:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            if isinstance(node, dict):
                node.pop(loc[-1], None)
        self.file_problems = [p for p in self.file_problems if tuple(p.loc[: len(loc)]) != tuple(loc)]

    def located_file_problems(self) -> list[answers_mod.Problem]:
        """The file's problems that belong to an answer. One with no place (YAML that does not parse)
        is shown on the Welcome page but blocks nothing: the pages hold the answers now."""
        return [p for p in self.file_problems if p.loc]

    def problems_under(self, prefix: Loc) -> list[tuple[Loc, str]]:
        return [(loc, m) for loc, ms in self.problems().items() for m in ms if tuple(loc[: len(prefix)]) == prefix]

    def answers(self) -> Answers:
        """The validated answers; raises AnswersInvalid (with locations) when they are not."""
        answers, found = answers_mod.check(self.draft)
        if answers is None or self.located_file_problems():
            problems = [answers_mod.Problem(0, 0, m, tuple(loc)) for loc, _k, m in found] + self.located_file_problems()
            raise answers_mod.AnswersInvalid(self.source or "answers", problems, self.draft)
        return answers

    def partial(self) -> Answers:
        """Answers for live previews: each section that validates on its own, defaults for the rest."""
        from pydantic import ValidationError

        sections: dict[str, Any] = {}
        for name, info in answers_mod.Answers.model_fields.items():
            if name == "version":
                continue
            model = info.annotation
            try:
                sections[name] = model.model_validate(self.draft.get(name) or {})  # type: ignore[union-attr]
            except ValidationError:
                sections[name] = model()  # type: ignore[misc]
        return answers_mod.Answers.model_construct(version=1, **sections)

    # ------------------------------------------------------------ engine

    def context(self, answers: Answers, emit: Callable[[StepEvent], None], dry_run: bool) -> Context:
        from wizard.steps import Context

        return Context(answers, self.node, dry_run=dry_run, emit=emit,
                       ignore_preflight=frozenset(n.lower() for n in self.ignore_preflight))

    def preview(self) -> Context:
        """A dry-run context on the partial answers, for the pages' live reads and previews."""
        return self.context(self.partial(), lambda e: None, dry_run=True)

    # ------------------------------------------------------------ a page's facts and preview

    def inspect(self, name: str) -> Any:
        """The step's facts as the engine reads them (blocking: call it from a worker). The steps it
        needs are planned first from their own facts, as a run would, so their outputs (flanneld's
        restart, the config in force) reach it; etcd is not contacted for that unless its page has."""
        from wizard import steps

        ctx = self.preview()
        try:
            for upstream in steps.ORDER[: steps.ORDER.index(name)]:
                if upstream not in steps.get(name).needs:
                    continue
                facts = self.facts.get(upstream)
                if facts is None and upstream in ("etcd", "preflight", "smoke"):
                    continue  # slow or remote: the step falls back to the answers' own values
                step = steps.get(upstream)
                if facts is None:
                    facts = step.inspect(ctx)
                ctx.outputs[upstream] = step.plan(ctx.answers, facts).output
            found = steps.get(name).inspect(ctx)
        finally:
            ctx.close()
        self.facts[name] = found
        return found

    def plan(self, name: str, facts: Any) -> Plan:
        """The step's plan for the answers as they are now: pure, cheap, the same function apply uses."""
        import dataclasses

        from wizard import steps

        if name == "preflight":  # the errors the operator chose to ignore may have changed since the read
            facts = dataclasses.replace(facts, ignore=frozenset(n.lower() for n in self.ignore_preflight))
        return steps.get(name).plan(self.partial(), facts)

    # ------------------------------------------------------------ runs

    @property
    def root(self) -> str:
        """Where the node's files are on this machine (`/`, a --root, or the demo's temporary directory)."""
        return os.path.abspath(self.node.files.root)

    def runner(self, answers: Answers, emit: Callable[[StepEvent], None], dry_run: bool) -> Runner:
        """A run of every step on these answers; `.plan()` for Review, `.run()` for Apply."""
        from wizard import steps
        from wizard.runner import Runner

        ctx = self.context(answers, emit, dry_run)
        return Runner(ctx, self.journal(), list(steps.ORDER))  # a plan only reads it (restarts owed)

    def check(self, emit: Callable[[StepEvent], None]) -> RunResult:
        """`flannel-wizard check` on the answers as they are: every step's inspect and verify, nothing
        changed (blocking: call it from a worker)."""
        return self.runner(self.answers(), emit, dry_run=True).check()

    def plan_all(self, answers: Answers) -> RunResult:
        runner = self.runner(answers, lambda e: None, dry_run=True)
        try:
            return runner.plan()
        finally:
            runner.ctx.close()

    def undo(self, emit: Callable[[StepEvent], None]) -> int:
        """Reverse every change this node's journal records (the Apply page's Roll back); failures."""
        from wizard.undo import undo_all

        journal = self.journal()
        return undo_all(self.node, journal, emit) if journal.exists() else 0

    def undo_advice(self) -> list[tuple[str, str]]:
        """Where the journal really is and how to undo, as (label, text) lines.

        The journal's path is the one on this machine (the state dir under the node's root). A real node
        gets an undo command that is safe to paste; the demo gets none, since its journal describes a
        simulated node and replaying it here would act on this machine."""
        import shlex

        from wizard.journal import DEFAULT_STATE_DIR

        root = self.root
        journal = os.path.abspath(self.node.files.path(self.journal().path))
        if self.node.simulated:
            return [
                ("Demo files (inspect them)", root),
                ("Journal and backups", f"{os.path.relpath(journal, root)} in that directory"),
                ("Nothing on this machine needs undoing", f"the demo changed only files under {root} and an in-memory etcd."),
                ("", "Roll back on the Apply page reverses the demo's changes within the demo; the demo "
                     f"removes its files when it ends (with --keep they stay: `rm -r {shlex.quote(root)}`)."),
            ]
        undo = ["flannel-wizard", "undo"]
        if root != "/":
            undo += ["--root", root]
        if self.state_dir.rstrip("/") != DEFAULT_STATE_DIR:
            undo += ["--state-dir", self.state_dir]
        return [("Journal and backups", journal), ("Undo everything", shlex.join(undo))]

    def journal(self) -> Journal:
        from wizard.journal import Journal

        return Journal(self.node.files, self.state_dir, self.node.identity())

    def save(self, path: str) -> str:
        """Write the answers to `path` (a path on this machine, not under the node's root)."""
        from wizard.node.files import Files

        return savefile.save(Files("/"), os.path.abspath(path), self.answers())
