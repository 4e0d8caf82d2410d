"""Runs the steps in order: inspect -> plan -> apply -> verify, emitting StepEvents and keeping the journal."""

from __future__ import annotations

import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from wizard import steps
from wizard.changes import ApplyContext, LostRace
from wizard.errors import Interrupted, WizardError
from wizard.events import StepEvent

if TYPE_CHECKING:
    from wizard.journal import Journal
    from wizard.node.etcd import Store
    from wizard.steps import Context, Plan

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_PREFLIGHT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _summary(module: Any, count: int, counted: str, none: str) -> str:
    """A step's closing line: checking-only steps (CHANGES = False) say so instead of counting."""
    if not getattr(module, "CHANGES", True):
        return "checked"
    return f"{count} {counted}" if count else none


class StepStopped(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Runner:
    def __init__(self, ctx: Context, journal: Journal | None, names: list[str]) -> None:
        self.ctx = ctx
        self.journal = journal
        self.names = names
        self.changed = 0
        self._interrupted = threading.Event()

    # ------------------------------------------------------------ public

    def interrupt(self) -> None:
        """Ask the run to stop after the change in flight (Ctrl+C, or the TUI's cancel)."""
        self._interrupted.set()

    def plan(self) -> dict[str, Plan]:
        """Inspect and plan every step without touching anything; emits what each would do."""
        dry, self.ctx.dry_run = self.ctx.dry_run, True
        plans: dict[str, Plan] = {}
        try:
            for name in self.names:
                try:
                    plans[name] = self._step(name)
                except StepStopped:
                    continue
        finally:
            self.ctx.dry_run = dry
        return plans

    def run(self) -> int:
        started = time.monotonic()
        restore = self._trap_sigint()
        code = EXIT_OK
        try:
            for name in self.names:
                if self._interrupted.is_set():
                    code = EXIT_INTERRUPTED
                    break
                try:
                    self._step(name)
                except StepStopped as stop:
                    code = stop.code
                    break
        finally:
            restore()
            self.ctx.close()
        elapsed = time.monotonic() - started
        if code == EXIT_OK:
            if self.ctx.dry_run:
                self._emit("wizard", "ok", f"plan: {self.changed} change(s) would be made; nothing was touched", elapsed=elapsed)
            else:
                self._emit("wizard", "ok", f"done: {self.changed} change(s)", elapsed=elapsed)
        elif code == EXIT_INTERRUPTED:
            self._emit("wizard", "failed", "interrupted: the step in flight was rolled back",
                       "earlier steps stay applied; `flannel-wizard undo` reverses them", elapsed=elapsed)
        return code

    # ------------------------------------------------------------ one step

    def _emit(self, step: str, status: Any, message: str, detail: str = "", elapsed: float = 0.0, kind: str = "") -> None:
        self.ctx.emit(StepEvent(step, status, message, detail, elapsed, kind))

    def _inspect_and_plan(self, module: Any) -> Plan:
        facts = module.inspect(self.ctx)
        return module.plan(self.ctx, facts)

    def _step(self, name: str) -> Plan:
        module = steps.load(name)
        t0 = time.monotonic()
        self._emit(name, "running", getattr(module, "TITLE", name))
        try:
            plan = self._inspect_and_plan(module)
        except WizardError as exc:
            self._emit(name, "failed", exc.what, exc.fix, time.monotonic() - t0)
            raise StepStopped(EXIT_FAILED) from None
        for note in plan.notes:
            self._emit(name, note.status, note.message, note.detail, kind="note")
        if plan.failed:
            if name == "preflight":
                if self.ctx.dry_run:
                    self._emit(name, "warn", "preflight errors above would stop a real apply", elapsed=time.monotonic() - t0)
                    return plan
                self._emit(name, "failed", "preflight found errors; nothing was changed",
                           "fix them, or pass --ignore-preflight-errors NAME,.. (or all)", time.monotonic() - t0)
                raise StepStopped(EXIT_PREFLIGHT)
            self._emit(name, "failed", "stopped before changing anything", elapsed=time.monotonic() - t0)
            raise StepStopped(EXIT_FAILED)
        if all(n.status == "skipped" for n in plan.notes) and plan.notes and not plan.changes:
            return plan
        pending = plan.pending
        if self.ctx.dry_run:
            for change in pending:
                self._emit(name, "pending", f"would {change.summary()}", change.detail(), kind="change")
            self.changed += len(pending)
            self._emit(name, "ok", _summary(module, len(pending), "change(s) planned", "nothing to change"),
                       elapsed=time.monotonic() - t0)
            return plan
        assert self.journal is not None
        applied: list[dict[str, Any]] = []
        raced = False
        index = 0
        while index < len(pending):
            change = pending[index]
            change.step = name
            entry = self.journal.begin(change)
            try:
                result = change.apply(self._apply_context(entry))
            except LostRace as exc:
                self.journal.finish(entry, "failed", error=str(exc))
                if raced:
                    self._fail(name, applied, exc, t0)
                raced = True
                self._emit(name, "warn", str(exc), "reading it again and going on as if it had been there", kind="change")
                plan = self._inspect_and_plan(module)
                for note in plan.notes:
                    self._emit(name, note.status, note.message, note.detail, kind="note")
                if plan.failed:
                    self._fail(name, applied, WizardError("stopped after reading the key again"), t0)
                pending, index = plan.pending, 0
                continue
            except Interrupted:
                self.journal.finish(entry, "failed", error="interrupted")
                self._rollback(name, applied)
                raise StepStopped(EXIT_INTERRUPTED) from None
            except (WizardError, OSError) as exc:
                self.journal.finish(entry, "failed", error=str(exc))
                self._fail(name, applied, exc, t0)
            self.journal.finish(entry, "applied", result.record)
            applied.append(entry)
            self.changed += 1
            if result.warning:
                self.ctx.restart_skipped.add(result.record.get("service", ""))
            self._emit(name, "warn" if result.warning else "ok", result.message, result.warning, kind="change")
            if self._interrupted.is_set():
                self._rollback(name, applied)
                raise StepStopped(EXIT_INTERRUPTED)
            index += 1
        checks = module.verify(self.ctx) if hasattr(module, "verify") else []
        for check in checks:
            self._emit(name, check.status, check.message, check.detail, kind="check")
        if any(c.status == "failed" for c in checks):
            self._fail(name, applied, WizardError("verification failed"), t0)
        warned = any(c.status == "warn" for c in checks) or any(n.status == "warn" for n in plan.notes)
        summary = _summary(module, len(applied), "change(s)", "no changes")
        self._emit(name, "warn" if warned else "ok", summary, elapsed=time.monotonic() - t0)
        return plan

    def _fail(self, name: str, applied: list[dict[str, Any]], exc: BaseException, t0: float) -> None:
        what, fix = (exc.what, exc.fix) if isinstance(exc, WizardError) else (str(exc), "")
        if applied:
            self._rollback(name, applied)
            fix = (fix + "; " if fix else "") + f"this step's {len(applied)} change(s) were rolled back"
        self._emit(name, "failed", what, fix, time.monotonic() - t0)
        raise StepStopped(EXIT_FAILED)

    def _rollback(self, name: str, applied: list[dict[str, Any]]) -> None:
        from wizard.undo import undo_entries

        assert self.journal is not None
        self._emit(name, "running", f"rolling back {len(applied)} change(s)")
        undo_entries(self.ctx.node, self.journal, list(reversed(applied)), self.ctx.emit,
                     lambda record: self.ctx.store(), "rolled-back")

    def _apply_context(self, entry: dict[str, Any]) -> ApplyContext:
        journal = self.journal
        assert journal is not None

        def prepare(record: dict[str, Any]) -> None:
            journal.finish(entry, "applying", record)

        def store() -> Store:
            return self.ctx.store()

        return ApplyContext(
            node=self.ctx.node,
            backup=lambda data: journal.backup(entry, data),
            prepare=prepare,
            interrupted=self._interrupted.is_set,
            store=store,
        )

    def _trap_sigint(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            if self._interrupted.is_set():
                raise KeyboardInterrupt  # a second Ctrl+C: the operator really means it
            self._interrupted.set()
            self._emit("wizard", "warn", "interrupt: finishing the change in flight, then rolling back this step")

        previous = signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)
