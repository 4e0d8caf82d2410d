"""Check this node (from Welcome): the engine's `check` — every step's inspect, plan and verify, no
change, no journal, no lock — run in a thread worker with a live line per step, then every check the
steps made, problems first, each with where it is (step · node · hop), what was found and what to do.
Esc goes back to the wizard, r checks again. On the demo it checks the simulated node."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

from screens.pages import SPINNER
from screens.widgets import demo_marker, diff_text
from wizard.steps import ORDER

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from screens.app import WizardApp
    from wizard.events import NoteInfo, RunResult, StepEvent

ICON = {"ok": ("✓", "green"), "warn": ("⚠", "yellow"), "failed": ("✗", "bold red"), "skipped": ("–", "dim"),
        "pending": ("○", "dim")}
RANK = {"failed": 0, "warn": 1, "skipped": 2, "ok": 3}  # problems first


def where(step: str, note: NoteInfo) -> str:
    """step · node · hop: where a check belongs, from its typed fields."""
    return " · ".join(part for part in (step, note.subject, note.hop) if part)


def findings(result: RunResult) -> list[tuple[str, NoteInfo]]:
    """Every note and check of every step, problems first (failed, warned, skipped, then ok), each group
    in the steps' order. A step that stopped without a failed note of its own (it could not read the
    node) gets its closing line as one."""
    from wizard.events import NoteInfo

    out: list[tuple[str, NoteInfo]] = []
    for step in result.steps:
        notes = [*step.notes, *step.checks]
        out += [(step.name, n) for n in notes]
        if step.status in ("failed", "skipped") and not any(n.status == step.status for n in notes):
            # a step that could not read the node, or that check leaves alone (the smoke test): why
            out.append((step.name, NoteInfo(step.status, step.message, step.detail)))
    return sorted(out, key=lambda item: RANK.get(item[1].status, 4))  # stable: steps keep their order


def finding_widgets(step: str, note: NoteInfo) -> list[Static]:
    """Where (step · node · hop), then what was found and what to do, indented under it (wrapped lines
    too); a diff in the detail coloured as diffs are."""
    icon, style = ICON.get(note.status, ("·", ""))
    head = Text(f"{icon} ", style=style)
    head.append(where(step, note), style="bold")
    out = [Static(head, classes="finding-where"), Static(note.message, classes="finding-what")]
    if note.detail and note.status != "ok":
        detail = note.detail.strip("\n")
        fix = diff_text(detail) if "\n@@ " in detail else Text(detail, style="dim")
        out.append(Static(fix, classes="finding-fix"))
    return out


class CheckScreen(Screen[None]):
    """The results of Check this node, over the wizard's pages (which keep everything typed)."""

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("escape", "leave", "Back to the wizard"),
        Binding("r", "again", "Check again"),
    ]
    AUTO_FOCUS = "#check-results"

    running = False
    left = False  # dismissed: a worker still running delivers to nobody
    result: RunResult | None = None

    @property
    def wizard(self) -> WizardApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        session = self.wizard.session
        if session.scenario is not None:
            yield demo_marker(session.scenario, session.root)
        with Vertical(id="check"):
            yield Static("Check this node — inspect and verify every step; nothing is changed", id="heading")
            yield Static("", id="check-status")
            with VerticalScroll(id="check-results"):
                yield Static("", id="check-steps")
                yield Vertical(id="check-findings")
            with Horizontal(id="check-buttons"):
                yield Button("Back to the wizard", id="check-back", variant="primary", compact=True)
                yield Button("Check again", id="check-again", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}
        self.frame = 0
        self.set_interval(0.1, self.tick)
        self.start()

    # ------------------------------------------------------------ running

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self.result = None
        self.state = {}
        target = "the simulated node" if self.wizard.session.demo else "this node"
        self.query_one("#check-status", Static).update(f"checking {target}: reading only, nothing is changed…")
        self.query_one("#check-findings").remove_children()
        self.refresh_bindings()
        self.run_check()

    @work(thread=True, exclusive=True, group="check")
    def run_check(self) -> None:
        from wizard.answers import AnswersInvalid
        from wizard.errors import WizardError
        from wizard.events import RunResult

        def emit(event: StepEvent) -> None:
            self.app.call_from_thread(self.show_event, event)

        try:
            result = self.wizard.session.check(emit)
        except AnswersInvalid as exc:  # checked against answers that are not yet whole: where to fix them
            loc = [".".join(str(p) for p in q.loc) for q in exc.problems]
            # the answers model's messages name their key already ("etcd.endpoints.0: ...")
            where = "; ".join(q.message if q.message.startswith(k) else f"{k or 'answers'}: {q.message}"
                              for k, q in zip(loc, exc.problems, strict=True))
            result = RunResult(dry_run=True, mode="check", code=exc.exit_code, status="failed",
                               message=f"the answers have problems — fix them on their pages: {where}")
        except WizardError as exc:  # etcd's client refused the settings, ...
            result = RunResult(dry_run=True, mode="check", code=exc.exit_code, status="failed",
                               message=exc.what + (f" — {exc.fix}" if exc.fix else ""))
        except Exception as exc:  # an engine bug must not leave the screen spinning
            result = RunResult(dry_run=True, mode="check", code=1, status="failed", message=f"internal error: {exc!r}")
        self.app.call_from_thread(self.finished, result)

    def show_event(self, event: StepEvent) -> None:
        if self.left or event.kind != "step" or event.step not in ORDER:
            return  # the checks themselves are listed once the run ends, problems first
        state = self.state.setdefault(event.step, {"t0": time.monotonic()})
        state["status"], state["message"] = event.status, event.message
        self.draw_steps()

    def draw_steps(self) -> None:
        out = Text()
        for step in ORDER:
            state = self.state.get(step)
            if state is None:
                continue
            if state["status"] == "running":
                icon, style = SPINNER[self.frame % len(SPINNER)], "bold"
            else:
                icon, style = ICON.get(state["status"], ("·", ""))
            out.append(f"{icon} {step:<10}", style=style)
            out.append(f" {state['message']}\n")
        self.query_one("#check-steps", Static).update(out)

    def tick(self) -> None:
        self.frame += 1
        if any(s.get("status") == "running" for s in self.state.values()):
            self.draw_steps()

    def finished(self, result: RunResult) -> None:
        if self.left:
            return
        self.running = False
        self.result = result
        self.refresh_bindings()
        for state in self.state.values():
            if state["status"] == "running":
                state["status"] = "failed"  # the run ended under it
        for step in result.steps:
            # each step's line counts what it found, from the typed statuses; the list follows below
            state = self.state.setdefault(step.name, {})
            state["status"] = step.status
            bad = [n for n in (*step.notes, *step.checks) if n.status == step.status]
            if step.status in ("failed", "warn") and bad:
                word = "problem(s)" if step.status == "failed" else "warning(s)"
                state["message"] = f"{len(bad)} {word} — below"
            else:
                state["message"] = step.message
        self.draw_steps()
        found = findings(result)
        problems = [f for f in found if f[1].status in ("failed", "warn")]
        status = self.query_one("#check-status", Static)
        if not result.steps:
            status.update(Text(f"✗ the check could not run: {result.message}", style="bold red"))
        elif result.code == 0 and not problems:
            status.update(Text(f"✓ healthy: {len(found)} check(s) in {len(result.steps)} step(s), no problem",
                               style="green"))
        else:
            failed = sum(1 for _s, n in problems if n.status == "failed")
            status.update(Text(f"{'✗' if result.code else '⚠'} {failed} problem(s), {len(problems) - failed} "
                               f"warning(s) in {len(result.steps)} step(s) — problems first",
                               style="bold red" if result.code else "yellow"))
        box = self.query_one("#check-findings")
        box.remove_children()
        box.mount_all([w for step, note in found for w in finding_widgets(step, note)])
        mesh = result.step("mesh")
        if mesh is not None:  # the Mesh page shows the latest of Apply and this
            self.wizard.mesh_checks = list(mesh.checks)
            self.wizard.mesh_origin = "check"
            self.wizard.mark("mesh", mesh.status)
            self.wizard.mesh_event()

    # ------------------------------------------------------------ leaving

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "again":
            return not self.running
        return True

    def action_again(self) -> None:
        self.start()

    def action_leave(self) -> None:
        # a check still running goes on in its worker and its result is dropped with this screen
        self.left = True
        self.workers.cancel_group(self, "check")
        self.dismiss()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "check-back":
            event.stop()
            self.action_leave()
        elif event.button.id == "check-again" and not self.running:
            event.stop()
            self.start()
