"""Runs the steps in order: inspect -> plan -> apply -> verify, emitting typed events, keeping the journal,
and returning a RunResult that every front end renders."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from wizard import steps
from wizard.changes import ApplyContext, LostRace, Restart
from wizard.errors import Interrupted, WizardError
from wizard.events import ChangeInfo, NoteInfo, RunResult, StepEvent, StepResult, SubStepResult
from wizard.steps import Note

if TYPE_CHECKING:
    from wizard.changes import Change
    from wizard.events import ChangeState, Kind, Status, SubStepInfo
    from wizard.journal import Journal
    from wizard.node.etcd import Store
    from wizard.steps import Context, Plan, Step

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_PREFLIGHT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class StepStopped(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Runner:
    def __init__(self, ctx: Context, journal: Journal | None, names: list[str]) -> None:
        self.ctx = ctx
        self.journal = journal
        self.names = names
        self._interrupted = threading.Event()
        ctx.interrupted = self._interrupted.is_set
        self._outer_emit = ctx.emit
        ctx.emit = self._substep  # sub-step events from the steps' own code are kept on the result too
        self.result = RunResult(dry_run=ctx.dry_run)
        self.changed = 0
        self._step_owed: list[str] = []
        self._deferred_by: dict[str, str] = {}  # service -> the step whose restart of it waits for a later one
        self._deferred_change: dict[str, Restart] = {}  # service -> that step's own restart, as it planned it
        self._applied: dict[str, tuple[StepResult, list[tuple[dict[str, Any], Change]]]] = {}  # by step
        self._restart_sets: dict[str, tuple[str, ...]] = {}  # step -> the services it may restart, read once

    # ------------------------------------------------------------ public

    def interrupt(self) -> None:
        """Ask the run to stop after the change in flight (Ctrl+C, or the TUI's quit)."""
        self._interrupted.set()

    def plan(self) -> RunResult:
        """Inspect and plan every step without touching anything; emits what each would do."""
        dry, self.ctx.dry_run = self.ctx.dry_run, True
        self.result = RunResult(dry_run=True, mode="plan")
        started = time.monotonic()
        try:
            for name in self.names:
                try:
                    self._step(name)
                except StepStopped:
                    continue
                finally:
                    self._settle(name)
        finally:
            self.ctx.dry_run = dry
            self.ctx.deferred_restarts.clear()
        failed = self.result.failed_step
        self.result.status = "failed" if failed else "ok"
        self.result.code = EXIT_FAILED if failed else EXIT_OK
        self.result.message = f"plan: {self.result.planned} change(s) would be made; nothing was touched"
        if failed:
            self.result.message += f"; apply would stop at {failed.name}"
        self.result.elapsed = time.monotonic() - started
        return self.result

    def check(self) -> RunResult:
        """Every selected step's inspect, plan and verify against the node as it is, changing nothing (no
        journal entry, no lock, no restart): what is not as the answers say, and what does not work. Unlike
        apply it goes on past a step with problems, to report them all."""
        dry, self.ctx.dry_run, self.ctx.checking = self.ctx.dry_run, True, True
        self.result = RunResult(dry_run=True, mode="check")
        started = time.monotonic()
        preflight_failed = False
        try:
            for name in self.names:
                if self._interrupted.is_set():
                    break
                preflight_failed |= self._check_step(name) and name == "preflight"
        finally:
            self.ctx.dry_run, self.ctx.checking = dry, False
            self.ctx.close()
        result = self.result
        result.elapsed = time.monotonic() - started
        bad = [s for s in result.steps if s.status == "failed"]
        problems = sum(1 for s in result.steps for c in s.checks if c.status == "failed")
        if self._interrupted.is_set():
            result.status, result.code, result.message = "failed", EXIT_INTERRUPTED, "check interrupted"
        elif bad:
            result.status = "failed"
            result.code = EXIT_PREFLIGHT if preflight_failed else EXIT_FAILED
            result.message = (f"check: {problems} problem(s) in {', '.join(s.name for s in bad)}; nothing was "
                              "changed")
        else:
            warned = [s.name for s in result.steps if s.status == "warn"]
            result.status, result.code = "ok", EXIT_OK
            result.message = "check: healthy" + (f", with warnings in {', '.join(warned)}" if warned else "")
        self._emit("wizard", result.status, result.message, elapsed=result.elapsed, kind="run")
        return result

    def _begin(self, name: str) -> tuple[Step, StepResult, float]:
        """A step's result on the run's, marked running and said: where apply, plan and check start one."""
        step = steps.get(name)
        sr = StepResult(name, step.title)
        self.result.steps.append(sr)
        sr.status = "running"
        self._emit(name, "running", step.title)
        return step, sr, time.monotonic()

    def _check_step(self, name: str) -> bool:
        """One step of a check; True when it found a problem."""
        step, sr, t0 = self._begin(name)
        try:
            facts, plan = self._inspect_and_plan(step)
        except WizardError as exc:
            self._note(sr, Note("failed", exc.what, exc.fix), "check")
            self._close(sr, "failed", exc.what, exc.fix, t0)
            return True
        for note in plan.notes:
            # what stops apply is a problem the check reports, with the same words
            self._note(sr, note, "check" if note.status == "failed" else "note")
        if plan.failed:
            failed = [n for n in plan.notes if n.status == "failed"]
            self._close(sr, "failed", f"{len(failed)} problem(s) (above)", "", t0)
            return True
        to_make = plan.to_make
        if to_make and all(c.temporary for c in to_make):
            self._close(sr, "skipped", "skipped: it deploys test objects, and check changes nothing",
                        f"run it with `flannel-wizard apply FILE --only {name}`", t0)
            return False
        if plan.skipped:
            self._close(sr, "skipped", plan.notes[0].message, plan.notes[0].detail, t0)
            return False
        infos = [change.info(f"{name}.{n}") for n, change in enumerate(to_make, start=1)]
        sr.changes += infos
        # a restart that follows from a setting is part of that setting's fix, not a problem of its own;
        # a restart on its own (owed by an interrupted run) is one
        settings = [i for i, c in zip(infos, to_make, strict=True) if not isinstance(c, Restart)]
        restarts = [i.title or i.summary for i, c in zip(infos, to_make, strict=True) if isinstance(c, Restart)]
        then = f", which restarts {', '.join(r.removeprefix('restart ') for r in restarts)}" if restarts else ""
        for info in settings or [i for i, c in zip(infos, to_make, strict=True) if isinstance(c, Restart)]:
            self._note(sr, Note("failed", f"not as the answers say: it would {info.summary}",
                                (info.diff.rstrip("\n") + "\n" if info.diff else "")
                                + f"make it so with `flannel-wizard apply FILE --only {name}`"
                                + (then if settings else "")), "check")
        try:
            checks = step.verify(self.ctx, facts)
        except WizardError as exc:
            checks = [Note("failed", exc.what, exc.fix)]
        for check in checks:
            self._note(sr, check, "check")
        failed = [c for c in sr.checks if c.status == "failed"]
        if failed:
            self._close(sr, "failed", f"{len(failed)} problem(s) (above)", "", t0)
            return True
        warned = any(c.status == "warn" for c in sr.checks) or any(n.status == "warn" for n in plan.notes)
        self._close(sr, "warn" if warned else "ok", "healthy" if sr.checks or not step.makes_changes else "in place",
                    "", t0)
        return False

    def run(self) -> RunResult:
        if self.ctx.dry_run:
            result = self.plan()
            self._emit("wizard", result.status if result.status == "failed" else "ok", result.message,
                       elapsed=result.elapsed, kind="run")
            self.ctx.close()
            return result
        from wizard.lock import RunLock

        started = time.monotonic()
        self.result = RunResult(dry_run=False)
        assert self.journal is not None
        lock = RunLock(self.journal)
        try:
            lock.acquire()  # before anything is read: a second run would plan from what the first is changing
        except BaseException:
            self.ctx.close()
            raise
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
                    settled = self._settle(name)
                code = code if code != EXIT_OK else settled
                if code != EXIT_OK:
                    break
            if self._settle(None) != EXIT_OK and code == EXIT_OK:
                code = EXIT_FAILED
            self._left_owed()
        finally:
            restore()
            self.ctx.close()
            self._flush()
            lock.release()
        result = self.result
        result.code, result.elapsed, result.applied = code, time.monotonic() - started, self.changed
        if code == EXIT_OK:
            result.status, result.message = "ok", f"done: {self.changed} change(s)"
            self._emit("wizard", "ok", result.message, elapsed=result.elapsed, kind="run")
        else:
            result.status = "failed"
            if code == EXIT_INTERRUPTED:
                result.message = "interrupted: the step in flight was rolled back"
                detail = "earlier steps stay applied; `flannel-wizard undo` reverses them"
            else:
                failed = result.failed_step
                result.message = f"{failed.name}: {failed.message}" if failed else "stopped"
                detail = failed.detail if failed else ""
            self._emit("wizard", "failed", result.message, detail, elapsed=result.elapsed, kind="run")
        return result

    # ------------------------------------------------------------ events

    def _emit(self, step: str, status: Status, message: str, detail: str = "", elapsed: float = 0.0,
              kind: Kind = "step", change: ChangeInfo | None = None, substep: SubStepInfo | None = None) -> None:
        self._substep(StepEvent(step, status, message, detail, elapsed, kind, change, substep))

    def _note(self, sr: StepResult, note: Note, kind: Kind = "note") -> None:
        (sr.checks if kind == "check" else sr.notes).append(
            NoteInfo(note.status, note.message, note.detail, note.subject, note.hop, note.items))
        self._substep(StepEvent(sr.name, note.status, note.message, note.detail, kind=kind, subject=note.subject,
                                hop=note.hop, items=note.items))

    def _close(self, sr: StepResult, status: Status, message: str, detail: str, t0: float) -> None:
        sr.status, sr.message, sr.detail, sr.elapsed = status, message, detail, time.monotonic() - t0
        self._emit(sr.name, status, message, detail, sr.elapsed)

    def _substep(self, event: StepEvent) -> None:
        """Sub-step events from a step's own code: kept on the step's result, then passed on."""
        sr = self.result.step(event.step)
        if sr is not None and event.substep is not None and event.status != "running":
            sub = event.substep
            sr.substeps = [s for s in sr.substeps if s.index != sub.index]
            sr.substeps.append(SubStepResult(sub.index, sub.total, sub.title, event.status, event.message,
                                             event.detail, event.elapsed))
            sr.substeps.sort(key=lambda s: s.index)
        self._outer_emit(event)

    # ------------------------------------------------------------ one step

    def _inspect_and_plan(self, step: Step) -> tuple[Any, Plan]:
        facts = step.inspect(self.ctx)
        plan = step.plan(self.ctx.answers, facts)
        self.ctx.outputs[step.name] = plan.output
        owed = self._owed()
        for change in plan.changes:
            if not isinstance(change, Restart):
                continue
            if change.service in self.ctx.deferred_restarts:
                earlier = f"the {self._deferred_by[change.service]} step changed its configuration"
                change.why = f"{change.why}; {earlier}" if change.needed and change.why else earlier
                change.needed = True
            elif change.needed:
                continue
            elif change.service in owed:
                # its configuration was changed by a run that stopped before restarting it
                change.needed, change.why = True, "an interrupted run changed its configuration and did not restart it"
        return facts, plan

    def _defer(self, sr: StepResult, to_make: list[Change]) -> list[Change]:
        """Leave a restart to the later step that restarts the same service (the docker step's to the cgroup
        step's): a service restarts once per run, after every change to its configuration. What the later
        step does not restart itself, the runner restarts when that step ends (`_settle`)."""
        later = self.names[self.names.index(sr.name) + 1:]
        if not any(isinstance(c, Restart) for c in to_make) or not later:
            return to_make
        kept: list[Change] = []
        for change in to_make:
            by = None
            if isinstance(change, Restart) and change.service not in self.ctx.deferred_restarts:
                by = next((n for n in later if change.service in self._restarts(n)), None)
            if by is None:
                kept.append(change)
                continue
            self.ctx.deferred_restarts[change.service] = by
            self._deferred_by[change.service] = sr.name
            self._deferred_change[change.service] = change
            self._note(sr, Note("ok", f"{change.service} restarts once, after the {by} step's changes",
                                f"{change.summary()}: left to the {by} step, which restarts {change.service} too"))
        return kept

    def _restarts(self, name: str) -> tuple[str, ...]:
        """The services step `name` may restart; none when that cannot be read (its own inspect says why).
        Read once per run: the cgroup step's answer reads kubelet's unit and flags, which no earlier step writes,
        and every earlier step with a restart asks it."""
        if name not in self._restart_sets:
            try:
                self._restart_sets[name] = steps.get(name).restarts(self.ctx)
            except (WizardError, OSError):
                self._restart_sets[name] = ()
        return self._restart_sets[name]

    def _live(self, step: str) -> bool:
        """Whether changes `step` made in this run are still on the node."""
        return any(e["state"] == "applied" for e, _c in self._applied.get(step, (None, []))[1])

    def _forget(self, step: str) -> None:
        """A step that changed nothing after all (it failed before its first change, or was rolled back):
        the restarts it left to a later step are not needed."""
        for service, by in self._deferred_by.items():
            if by == step and self.ctx.deferred_restarts.pop(service, None) is not None and self.journal is not None:
                with contextlib.suppress(WizardError, OSError):
                    self.journal.pay(service)

    def _fail_late(self, step: str, service: str, exc: BaseException) -> None:
        """The restart a step left to a later one failed: that step's configuration is what the service would
        not start with, so its changes are rolled back as if it had restarted the service itself."""
        what, fix = (exc.what, exc.fix) if isinstance(exc, WizardError) else (str(exc), "")
        sr, applied = self._applied.get(step, (None, []))
        if sr is None:
            self._emit(step, "failed", f"could not restart {service}: {what}", fix, kind="run")
            return
        live = [(e, c) for e, c in applied if e["state"] == "applied"]
        if live and not self._rollback(sr, live, [service]):
            fix = (fix + "; " if fix else "") + f"this step's {len(live)} change(s) were rolled back"
        sr.status, sr.message, sr.detail = "failed", f"could not restart {service}: {what}", fix
        self._emit(step, "failed", sr.message, fix, sr.elapsed)

    def _settle(self, after: str | None) -> int:
        """Make the restarts left to step `after` (all of them: None) that it did not make: it was skipped,
        stopped, or rolled back. The earlier step's configuration stays, so its service must restart."""
        due = [s for s, by in self.ctx.deferred_restarts.items() if after is None or by == after]
        if not due or self.ctx.dry_run:
            for service in due:
                self.ctx.deferred_restarts.pop(service, None)
            return EXIT_OK
        assert self.journal is not None
        code = EXIT_OK
        for service in self.journal.restart_order(due, dict(self._deferred_by)):
            step = self._deferred_by[service]
            self.ctx.deferred_restarts.pop(service, None)
            change = self._deferred_change[service]
            entry: dict[str, Any] | None = None
            try:
                entry = self.journal.begin(change, step)
                result = change.apply(self._apply_context(entry))
                self.journal.finish(entry, "applied", result.record, paid="" if result.restart_skipped else service,
                                    later=True)
            except (WizardError, OSError) as exc:
                if entry is not None:
                    with contextlib.suppress(WizardError, OSError):
                        self.journal.finish(entry, "failed", error=str(exc))
                self._fail_late(step, service, exc)
                code = EXIT_FAILED
                continue
            self.changed += 1
            if result.restart_skipped:
                self.ctx.skipped_restarts.add(result.restart_skipped)
            else:
                self.ctx.restarted.append(service)
            sr, applied = self._applied.get(step, (None, []))
            info = self._record(sr, change, entry, "applied") if sr is not None else None
            applied.append((entry, change))
            self._emit(step, "warn" if result.warning else "ok", result.message, result.warning, kind="change",
                       change=info)
        return code

    def _owed(self) -> list[str]:
        """Restarts the journal says an earlier run left unmade (read only; a plan reads them too)."""
        if self.journal is None or not self.journal.exists():
            return []
        return self.journal.owed()

    def _left_owed(self) -> None:
        left = self._owed()
        if left:
            self._emit("wizard", "warn", f"still to restart: {', '.join(left)}",
                       "an interrupted run changed their configuration; apply their steps again, or restart them "
                       f"by hand: systemctl restart {' '.join(left)}", kind="run")

    def _step(self, name: str) -> None:
        step, sr, t0 = self._begin(name)
        try:
            facts, plan = self._inspect_and_plan(step)
        except WizardError as exc:
            self._close(sr, "failed", exc.what, exc.fix, t0)
            raise StepStopped(EXIT_FAILED) from None
        for note in plan.notes:
            self._note(sr, note)
        if plan.failed:
            reason = next(n for n in plan.notes if n.status == "failed")
            if name == "preflight":
                if self.ctx.dry_run:
                    self._close(sr, "warn", "preflight errors above would stop a real apply", reason.detail, t0)
                    return
                self._close(sr, "failed", "preflight found errors; nothing was changed",
                            "fix them, or pass --ignore-preflight-errors NAME,.. (or all)", t0)
                raise StepStopped(EXIT_PREFLIGHT)
            fix = (reason.detail.rstrip("\n") + "\n" if reason.detail else "") + "nothing was changed"
            self._close(sr, "failed", reason.message, fix, t0)
            raise StepStopped(EXIT_FAILED)
        if plan.skipped:
            self._close(sr, "skipped", plan.notes[0].message, plan.notes[0].detail, t0)
            return
        warned = any(n.status == "warn" for n in plan.notes)
        to_make = self._defer(sr, plan.to_make)
        if self.ctx.dry_run:
            from wizard.changes import FileWrite

            for n, change in enumerate(to_make, start=1):
                info = change.info(f"{name}.{n}")
                sr.changes.append(info)
                self._emit(name, "pending", f"would {info.summary}", info.diff, kind="change", change=info)
                if isinstance(change, FileWrite) and change.new is not None:
                    self.ctx.planned_files[change.path] = change.new  # later steps plan on top of it
            count = len(to_make)
            summary = _summary(step, count, "change(s) planned", "nothing to change")
            self._close(sr, "warn" if warned else "ok", summary, "", t0)
            return
        applied = self._apply(sr, step, to_make, t0)
        self._applied[name] = (sr, applied)
        self.ctx.release = lambda: self._release(sr, applied)
        try:
            checks = step.verify(self.ctx, facts)
        except Interrupted:
            self._rollback(sr, applied)
            self._close(sr, "failed", "interrupted", "this step's changes were rolled back", t0)
            raise StepStopped(EXIT_INTERRUPTED) from None
        except WizardError as exc:
            checks = [Note("failed", exc.what, exc.fix)]
        finally:
            self.ctx.release = lambda: []
        for check in checks:
            self._note(sr, check, "check")
        failed = next((c for c in checks if c.status == "failed"), None)
        if failed is not None:
            self._fail(sr, applied, WizardError(failed.message, failed.detail), t0)
        warned = warned or any(c.status == "warn" for c in checks)
        made = sum(1 for c in sr.changes if c.state in ("applied", "rolled-back"))
        self._close(sr, "warn" if warned else "ok", _summary(step, made, "change(s)", "no changes"), "", t0)

    def _apply(self, sr: StepResult, step: Step, to_make: list[Change], t0: float) -> list[tuple[dict[str, Any], Change]]:
        assert self.journal is not None
        applied: list[tuple[dict[str, Any], Change]] = []
        raced = False
        index = 0
        try:
            # written before the first change: a run killed between a config write and its restart
            # leaves the restart owed, and the next apply or undo makes it
            self._step_owed = [c.service for c in to_make if isinstance(c, Restart)] + [
                s for s, by in self._deferred_by.items() if by == sr.name and s in self.ctx.deferred_restarts]
            self.journal.owe(self._step_owed, sr.name, later=True)
            self._room()
        except (WizardError, OSError) as exc:
            self._fail(sr, applied, exc, t0)
        while index < len(to_make):
            change = to_make[index]
            try:
                entry = self.journal.begin(change, sr.name)
            except (WizardError, OSError) as exc:
                self._fail(sr, applied, exc, t0)
            try:
                self._room()
            except WizardError as exc:
                with contextlib.suppress(WizardError, OSError):
                    self.journal.finish(entry, "failed", error="not started: the disk is full")
                self._fail(sr, applied, exc, t0)
            sub = getattr(change, "substep", None)
            if sub is not None:
                self._emit(sr.name, "running", f"{sub.index}/{sub.total} {sub.title}", kind="substep", substep=sub)
            started = time.monotonic()
            try:
                result = change.apply(self._apply_context(entry))
            except LostRace as exc:
                self.journal.finish(entry, "failed", error=str(exc))
                if raced:
                    self._fail(sr, applied, exc, t0)
                raced = True
                self._emit(sr.name, "warn", str(exc), "reading it again and going on as if it had been there",
                           kind="note")
                _facts, plan = self._inspect_and_plan(step)
                for note in plan.notes:
                    self._note(sr, note)
                if plan.failed:
                    self._fail(sr, applied, WizardError("stopped after reading the key again"), t0)
                to_make, index = plan.to_make, 0
                continue
            except Interrupted:
                self.journal.finish(entry, "failed", error="interrupted")
                self._record(sr, change, entry, "failed")
                self._rollback(sr, applied)
                self._close(sr, "failed", "interrupted", "this step's changes were rolled back", t0)
                raise StepStopped(EXIT_INTERRUPTED) from None
            except (WizardError, OSError) as exc:
                self.journal.finish(entry, "failed", error=str(exc))
                info = self._record(sr, change, entry, "failed")
                what, fix = (exc.what, exc.fix) if isinstance(exc, WizardError) else (str(exc), "")
                self._emit(sr.name, "failed", f"could not {info.summary}: {what}", fix, kind="change", change=info)
                if sub is not None:
                    self._substep(StepEvent(sr.name, "failed", f"{sub.index}/{sub.total} {sub.title}: {what}", fix,
                                            time.monotonic() - started, "substep", substep=sub))
                self._fail(sr, applied, exc, t0)
            paid = change.service if isinstance(change, Restart) and not result.restart_skipped else ""
            try:
                self.journal.finish(entry, "applied", result.record, paid=paid, later=True)
            except (WizardError, OSError) as exc:
                # made but not recorded as made: the entry on disk is still `applying` with its record,
                # which rollback (and a later undo) reverse like an applied one
                entry["state"], entry["record"] = "applied", result.record
                applied.append((entry, change))
                self._fail(sr, applied, exc, t0)
            applied.append((entry, change))
            self.changed += 1
            if isinstance(change, Restart):
                self.ctx.deferred_restarts.pop(change.service, None)
                if not result.restart_skipped:
                    self.ctx.restarted.append(change.service)
            if result.restart_skipped:
                self.ctx.skipped_restarts.add(result.restart_skipped)
            info = self._record(sr, change, entry, "applied")
            self._emit(sr.name, "warn" if result.warning else "ok", result.message, result.warning, kind="change",
                       change=info)
            if sub is not None:
                self._substep(StepEvent(sr.name, "ok", f"{sub.index}/{sub.total} {sub.title}: {result.message}", "",
                                        time.monotonic() - started, "substep", substep=sub))
            if self._interrupted.is_set():
                self._rollback(sr, applied)
                self._close(sr, "failed", "interrupted", "this step's changes were rolled back", t0)
                raise StepStopped(EXIT_INTERRUPTED)
            index += 1
        return applied

    def _flush(self) -> None:
        """The journal's last write of the run: the states kept in memory since each change's record."""
        assert self.journal is not None
        try:
            self.journal.flush()
        except (WizardError, OSError) as exc:
            # every change's record is on disk already; only its `applied` is not, which undo reads alike
            self._emit("wizard", "warn", "could not write the journal's last states", str(exc), kind="run")

    def _room(self) -> None:
        if self.journal is not None and self.journal.low_space:
            where = self.journal.files.path(self.journal.state_dir)
            raise WizardError(f"the file system of {where} is full: the journal used its reserve to record this much",
                              f"free some space (`df -h {where}`), then apply again or `flannel-wizard undo`")

    def _record(self, sr: StepResult, change: Change, entry: dict[str, Any], state: ChangeState) -> ChangeInfo:
        info = change.info(entry["id"], state)
        sr.changes = [c for c in sr.changes if c.id != info.id] + [info]
        return info

    def _mark(self, sr: StepResult, ids: set[str], state: ChangeState) -> None:
        sr.changes = [dataclasses.replace(c, state=state) if c.id in ids else c
                      for c in sr.changes]

    def _fail(self, sr: StepResult, applied: list[tuple[dict[str, Any], Change]], exc: BaseException, t0: float) -> None:
        what, fix = (exc.what, exc.fix) if isinstance(exc, WizardError) else (str(exc), "")
        live = [(e, c) for e, c in applied if e["state"] == "applied"]
        self._rollback(sr, live)
        if live:
            fix = (fix + "; " if fix else "") + f"this step's {len(live)} change(s) were rolled back"
        self._close(sr, "failed", what, fix, t0)
        raise StepStopped(EXIT_FAILED)

    def _rollback(self, sr: StepResult, applied: list[tuple[dict[str, Any], Change]],
                  owed: list[str] | None = None) -> int:
        """Reverse a step's applied changes; `owed`: the restarts it made necessary (the step in flight's)."""
        from wizard.undo import undo_entries

        assert self.journal is not None
        entries = [e for e, _c in applied if e["state"] == "applied"]
        if not entries:
            self._forget(sr.name)
            return 0
        self._emit(sr.name, "running", f"rolling back {len(entries)} change(s)", kind="note")
        failures = undo_entries(self.ctx.node, self.journal, list(reversed(entries)), self.ctx.emit,
                                lambda record: self.ctx.store(), "rolled-back")
        self._mark(sr, {e["id"] for e in entries if e["state"] == "rolled-back"}, "rolled-back")
        # a restart this step made for an earlier step too: reversing it restarted the service again, now with
        # the earlier step's configuration, which stays; the earlier step gets it as its own entry, so that
        # `undo` of its changes restarts the service (or, when that restart failed, `_settle` makes one)
        stood_in = {str(e["record"].get("service")): e for e in entries if e.get("kind") == "restart"
                    and self._deferred_by.get(str(e["record"].get("service")), sr.name) != sr.name
                    and self._live(self._deferred_by[str(e["record"].get("service"))])}
        not_restarted = {s for s, e in stood_in.items() if e["record"].get("skipped")}  # no systemd: stays owed
        for service, entry in stood_in.items():
            if entry["state"] == "rolled-back" and service not in not_restarted:
                self._restarted_for(service, sr.name)
        if failures:
            return failures
        # the step's configuration is back as it was (and restarted where it had been): nothing it owed
        # stands, except a restart an earlier step left to it that is still to make
        for service in self._step_owed if owed is None else owed:
            if self._deferred_by.get(service) == sr.name:
                self.ctx.deferred_restarts.pop(service, None)  # its own: back as it was, nothing to restart
            elif service in self.ctx.deferred_restarts or service in not_restarted:
                continue
            with contextlib.suppress(WizardError, OSError):
                self.journal.pay(service)
        return failures

    def _restarted_for(self, service: str, rolled_back: str) -> None:
        """Record the restart a rollback made of `service` as the restart of the earlier step that left it to
        the step rolled back (its configuration is what the service runs with now)."""
        assert self.journal is not None
        step = self._deferred_by[service]
        change = self._deferred_change[service]
        try:
            entry = self.journal.begin(change, step)
            self.journal.finish(entry, "applied", {"service": service}, paid=service)
        except (WizardError, OSError):
            self.ctx.deferred_restarts[service] = rolled_back  # not recorded: `_settle` makes one that is
            return
        sr, applied = self._applied.get(step, (None, []))
        info = self._record(sr, change, entry, "applied") if sr is not None else None
        applied.append((entry, change))
        self._emit(step, "ok", f"restarted {service} with this step's configuration (in the rollback above)",
                   kind="change", change=info)

    def _release(self, sr: StepResult, applied: list[tuple[dict[str, Any], Change]]) -> list[Note]:
        """Reverse the step's temporary changes (its test objects) through the journal, as undo would."""
        from wizard.undo import undo_entries

        assert self.journal is not None
        entries = [e for e, c in applied if c.temporary and e["state"] == "applied"]
        if not entries:
            return []
        notes: list[Note] = []

        def collect(event: StepEvent) -> None:
            notes.append(Note("ok" if event.status in ("ok", "running") else event.status,  # type: ignore[arg-type]
                              event.message, event.detail))

        undo_entries(self.ctx.node, self.journal, list(reversed(entries)), collect,
                     lambda record: self.ctx.store(), "rolled-back")
        self._mark(sr, {e["id"] for e in entries if e["state"] == "rolled-back"}, "rolled-back")
        return notes

    def _apply_context(self, entry: dict[str, Any]) -> ApplyContext:
        journal = self.journal
        assert journal is not None

        def prepare(record: dict[str, Any]) -> None:
            journal.finish(entry, "applying", record)
            self._room()  # this record took the disk's last room: what is left is for rolling back, not this change

        def store() -> Store:
            return self.ctx.store()

        return ApplyContext(
            node=self.ctx.node,
            backup=lambda data: journal.backup(entry, data),
            prepare=prepare,
            interrupted=self._interrupted.is_set,
            store=store,
            entry_id=entry["id"],
            emit=self._substep,
        )

    def _trap_sigint(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            if self._interrupted.is_set():
                raise KeyboardInterrupt  # a second Ctrl+C: the operator really means it
            self._interrupted.set()
            # said from another thread: the handler may have interrupted this one inside a write to the
            # same stream, and writing from here would be a reentrant call on its buffer
            threading.Thread(target=self._emit, daemon=True, name="interrupt-note",
                             args=("wizard", "warn", "interrupt: finishing the change in flight, then rolling "
                                   "back this step"), kwargs={"kind": "run"}).start()

        previous = signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)


def _summary(step: Step, count: int, counted: str, none: str) -> str:
    """A step's closing line: checking-only steps say so instead of counting."""
    if not step.makes_changes:
        return "checked"
    return f"{count} {counted}" if count else none
