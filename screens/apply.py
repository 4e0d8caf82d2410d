"""Apply: the engine runs in a worker; one line per step (spinner, then ✓ / ⚠ / ✗ and the time),
a sub-line per change, every event in the log; on failure the message, what to do, and
Retry / Roll back / Quit."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, RichLog, Static

from screens.base import StepScreen
from screens.pages import SPINNER
from screens.widgets import status_text
from wizard.steps import ORDER

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.events import RunResult, StepEvent
    from wizard.runner import Runner

ICON = {"ok": ("✓", "green"), "warn": ("⚠", "yellow"), "failed": ("✗", "bold red"), "skipped": ("–", "dim"),
        "pending": ("○", "dim")}


class ApplyPage(StepScreen):
    NAME = "apply"
    HEADING = "Apply — changing the node"
    BINDINGS: ClassVar[list[Binding]] = [
        *StepScreen.BINDINGS,
        Binding("ctrl+r", "retry", "Retry"),
        Binding("ctrl+b", "roll_back", "Roll back"),
    ]
    rolled = False  # the last failed apply was rolled back: the node is as it was

    running = False
    exit_code: int | None = None
    result: RunResult | None = None
    runner: Runner | None = None
    start_requested = False

    def body(self) -> ComposeResult:
        self.state: dict[str, dict[str, Any]] = {}
        yield Static("Confirm on the Review page to start.", id="apply-summary")
        # the reason and the choices come first: at any terminal size they are on screen when a step fails
        with Vertical(id="fail-panel"):
            yield Static("", id="fail-message")
            with Horizontal(id="fail-buttons"):
                yield Button("Retry (ctrl+r)", id="retry", variant="primary", compact=True)
                yield Button("Roll back (ctrl+b)", id="rollback", variant="warning", compact=True)
                yield Button("Quit", id="quit", variant="error", compact=True)
        for step in ORDER:
            yield Static(Text(f"○ {step}", style="dim"), id=f"line-{step}", classes="step-line")
            sub = Static("", id=f"sub-{step}", classes="step-sub")
            sub.display = False
            yield sub
        yield RichLog(id="log", wrap=True, markup=False, max_lines=2000)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#fail-panel").display = False
        self.set_interval(0.1, self.tick)
        self.frame = 0
        if self.start_requested:
            self.start()

    # ------------------------------------------------------------ running

    def start(self) -> None:
        if not self.ready:
            self.start_requested = True  # confirmed before this page was first drawn: start once it is
            return
        self.start_requested = False
        if self.running:
            return
        from wizard.answers import AnswersInvalid

        try:
            answers = self.session.answers()
        except AnswersInvalid:
            self.query_one("#apply-summary", Static).update(Text("the answers have problems: go back to Review", style="red"))
            return
        self.exit_code = None
        self.running = True
        self.rolled = False
        self.query_one("#rollback").display = True
        self.wizard.events = []
        self.wizard.mesh_checks, self.wizard.mesh_origin = [], "apply"
        self.wizard.mesh_event()
        self.state = {step: {"status": "pending", "t0": 0.0, "subs": []} for step in ORDER}
        for step in ORDER:
            self.query_one(f"#line-{step}", Static).update(Text(f"○ {step}", style="dim"))
            self.query_one(f"#sub-{step}", Static).update("")
            self.query_one(f"#sub-{step}", Static).display = False
        self.query_one("#fail-panel").display = False
        target = "the simulated node" if self.session.demo else "this node"
        self.query_one("#apply-summary", Static).update(f"applying to {target}…")
        self.wizard.mark(self.NAME, "running")
        self.run_engine(answers)

    def stop_after_current(self) -> None:
        if self.runner is not None:
            self.runner.interrupt()

    @work(thread=True, exclusive=True, group="apply")
    def run_engine(self, answers: object) -> None:
        runner = self.session.runner(answers, self._from_engine, dry_run=False)  # type: ignore[arg-type]
        self.runner = runner
        from wizard.errors import WizardError
        from wizard.events import RunResult, StepEvent

        try:
            result = runner.run()
        except WizardError as exc:  # refused before it began: another run holds the lock, an unsafe state dir
            self._from_engine(StepEvent("wizard", "failed", exc.what, exc.fix, kind="run"))
            result = RunResult(dry_run=False, code=exc.exit_code, status="failed", message=f"{exc.what} — {exc.fix}")
        except Exception as exc:  # an engine bug must not leave the screen spinning
            self._from_engine_event("wizard", "failed", f"internal error: {exc!r}")
            result = RunResult(dry_run=False, code=1, status="failed", message=f"internal error: {exc!r}")
        self.app.call_from_thread(self.finished, result)

    def _from_engine(self, event: StepEvent) -> None:
        self.app.call_from_thread(self.show_event, event)

    def _from_engine_event(self, step: str, status: Any, message: str) -> None:
        from wizard.events import StepEvent

        self._from_engine(StepEvent(step, status, message, kind="run"))

    def show_event(self, event: StepEvent) -> None:
        self.wizard.events.append(event)
        log = self.query_one("#log", RichLog)
        log.write(status_text(event.status, f"{event.step}: {event.message}", event.detail))
        state = self.state.get(event.step)
        if state is None:
            return
        if event.step == "smoke":
            self.wizard.smoke_event()
        if event.step == "mesh" and event.kind == "check" and self.wizard.mesh_origin == "apply":
            self.wizard.mesh_checks.append(event)  # the Mesh page follows the step's checks as they come
            self.wizard.mesh_event()
        if event.kind == "substep" and event.status == "running":
            state["message"] = event.message  # the spinner line follows the smoke test's sub-steps
            self.draw_line(event.step)
            return
        if event.kind in ("change", "check", "note", "substep"):
            if event.kind == "note" and event.status == "ok":
                return  # the log has it; sub-lines are for what changed and what went wrong
            state["subs"].append(status_text(event.status, event.message))
            sub = Text()
            for n, line in enumerate(state["subs"][-6:]):
                if n:
                    sub.append("\n")
                sub.append_text(line)
            box = self.query_one(f"#sub-{event.step}", Static)
            box.update(sub)
            box.display = True
            return
        if event.status == "running" and state["status"] == "pending":
            state["t0"] = time.monotonic()
        state["status"] = event.status
        state["message"] = event.message
        state["elapsed"] = event.elapsed
        self.draw_line(event.step)

    def draw_line(self, step: str) -> None:
        state = self.state[step]
        status = state["status"]
        if status == "running":
            icon, style = SPINNER[self.frame % len(SPINNER)], "bold"
            elapsed = time.monotonic() - state["t0"]
        else:
            icon, style = ICON.get(status, ("·", ""))
            elapsed = state.get("elapsed", 0.0)
        text = Text(f"{icon} {step:<10}", style=style)
        text.append(f" {state.get('message', '')}")
        if status not in ("pending",):
            text.append(f"  {elapsed:.1f}s", style="dim")
        self.query_one(f"#line-{step}", Static).update(text)

    def tick(self) -> None:
        self.frame += 1
        for step, state in self.state.items():
            if state["status"] == "running":
                self.draw_line(step)

    def finished(self, result: RunResult) -> None:
        self.running = False
        self.result = result
        self.exit_code = code = result.code
        self.refresh_bindings()
        self.refresh_status()  # a Retry that went through leaves no "did not finish" behind
        for step, state in self.state.items():
            if state["status"] == "running":
                state["status"] = "failed"
                self.draw_line(step)
        summary = self.query_one("#apply-summary", Static)
        self.mark_checking_steps()
        if code == 0:
            summary.update(Text(f"✓ {result.message or 'done'}", style="green"))
            self.wizard.mark(self.NAME, "ok")
            return
        failed = result.failed_step
        message = Text(f"✗ {result.message or 'stopped'}\n", style="bold red")
        if failed is not None:
            # the reasons: the step's failed notes, checks and changes, each with what to do
            reasons = [(n.message, n.detail) for n in failed.notes + failed.checks if n.status == "failed"]
            reasons += [(f"could not {c.summary}", "") for c in failed.changes if c.state == "failed"]
            for what, fix in reasons[:3]:
                if what not in result.message:
                    message.append(f"  {what}\n", style="red")
                if fix:
                    message.append(f"what to do: {fix.strip()}\n")
            if failed.detail and all(failed.detail != fix for _w, fix in reasons):
                message.append(f"what to do: {failed.detail.strip()}\n")
        message.append("Retry runs every step again (what is in place is left alone); Roll back reverses "
                       "every recorded change; Quit leaves the node as it is (`flannel-wizard undo` later).")
        self.query_one("#fail-message", Static).update(message)
        self.query_one("#fail-panel").display = True
        summary.update(Text("stopped", style="red"))
        self.wizard.mark(self.NAME, "failed")
        self.query_one("#retry", Button).focus()

    def mark_checking_steps(self) -> None:
        """The pages after Apply show how their step ended (not run: no mark), in the sidebar too."""
        for name in ("mesh", "smoke"):
            step = self.result.step(name) if self.result else None
            if step is not None and step.status not in ("ok", "warn", "failed", "skipped"):
                step = None  # still running when the run stopped: it has no result
            self.wizard.mark(name, step.status if step is not None else "")

    # ------------------------------------------------------------ failure choices

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "retry":
            event.stop()
            self.start()
        elif event.button.id == "rollback":
            event.stop()
            self.start_roll_back()  # the button is there only when rolling back is offered
        elif event.button.id == "quit":
            event.stop()
            self.app.exit(self.exit_code or 0)
        else:
            super().on_button_pressed(event)

    @work(thread=True, exclusive=True, group="apply")
    def roll_back(self) -> None:
        from wizard.errors import WizardError
        from wizard.events import StepEvent

        try:
            failures = self.session.undo(self._from_engine)
        except WizardError as exc:
            self._from_engine(StepEvent("undo", "failed", exc.what, exc.fix, kind="run"))
            failures = 1
        self.app.call_from_thread(self.rolled_back, failures)

    def rolled_back(self, failures: int) -> None:
        self.running = False
        summary = self.query_one("#apply-summary", Static)
        if failures:
            summary.update(Text(f"✗ {failures} change(s) could not be reversed; see the log", style="red"))
            self.query_one("#fail-panel").display = True
        else:
            summary.update(Text("↺ rolled back: the node is as it was before the wizard", style="yellow"))
            self.exit_code = 1
            self.rolled = True
            self.query_one("#fail-message", Static).update(Text(
                "Rolled back. Retry applies again (after a fix on an earlier page); Quit leaves; "
                "Next goes on to Finish.", style="yellow"))
            self.query_one("#rollback").display = False
            self.query_one("#fail-panel").display = True
            self.query_one("#retry", Button).focus()
        self.wizard.mark(self.NAME, "warn")
        self.refresh_status()
        self.refresh_bindings()

    # ------------------------------------------------------------ navigation

    def blocked(self) -> str:
        if self.running:
            return "still applying"
        if self.exit_code is None:
            return "nothing applied yet — confirm on the Review page"
        if self.exit_code != 0 and not self.rolled:
            return "the apply did not finish — Retry (ctrl+r), Roll back (ctrl+b) or Quit (ctrl+q)"
        return ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return not self.running and self.exit_code not in (None, 0)
        if action == "roll_back":
            return not self.running and self.exit_code not in (None, 0) and not self.rolled
        return super().check_action(action, parameters)

    def action_retry(self) -> None:
        if self.check_action("retry", ()):
            self.start()

    def action_roll_back(self) -> None:
        if self.check_action("roll_back", ()):
            self.start_roll_back()

    def start_roll_back(self) -> None:
        self.query_one("#fail-panel").display = False
        self.query_one("#apply-summary", Static).update("rolling back every recorded change…")
        self.running = True
        self.refresh_bindings()
        self.roll_back()

    def action_back(self) -> None:
        if self.running:
            self.query_one("#nav-status", Static).update("still applying — wait, or quit to stop after the change in flight")
            return
        super().action_back()


PAGE = ApplyPage
