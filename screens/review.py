"""Review: every change the engine planned, grouped by step, each expandable to its diff; nothing is
touched until the operator confirms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.containers import Vertical
from textual.widgets import Collapsible, Static

from screens.base import StepScreen
from screens.widgets import ConfirmModal, diff_text, status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.events import RunResult


class ReviewPage(StepScreen):
    NAME = "review"
    HEADING = "Review — every change, before anything is touched"

    result: RunResult | None = None
    problems: list[str] | None = None
    planned_for: str = ""  # the answers the plan on screen was made for

    def body(self) -> ComposeResult:
        yield Static("planning…", id="review-summary")
        yield Vertical(id="review-steps")

    def next_label(self) -> str:
        return "Apply…"

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        # coming back from the confirmation, or with the same answers: the plan on screen stands
        if self.state_key() != self.planned_for:
            self.replan()

    def state_key(self) -> str:
        import json

        return json.dumps([self.session.draft, sorted(self.session.ignore_preflight),
                           [p.message for p in self.session.file_problems]], sort_keys=True, default=str)

    def replan(self) -> None:
        from wizard.answers import AnswersInvalid

        self.planned_for = self.state_key()
        self.result = None
        self.query_one("#review-steps").remove_children()
        try:
            answers = self.session.answers()
        except AnswersInvalid as exc:
            self.problems = [f"{'.'.join(str(p) for p in q.loc) or 'answers'}: {q.message}" for q in exc.problems]
            self.query_one("#review-summary", Static).update(
                Text("The answers have problems; fix them on their pages:\n" + "\n".join(f"✗ {p}" for p in self.problems),
                     style="red"))
            return
        self.problems = []
        self.query_one("#review-summary", Static).update("planning: inspecting the node, nothing is touched…")
        self.plan(answers)

    @work(thread=True, exclusive=True, group="review-plan")
    def plan(self, answers: object) -> None:
        result = self.session.plan_all(answers)  # type: ignore[arg-type]
        self.app.call_from_thread(self.show_plan, result)

    async def show_plan(self, result: RunResult) -> None:
        box = self.query_one("#review-steps")
        await box.remove_children()
        icons = {"ok": "✓", "warn": "⚠", "failed": "✗", "skipped": "–"}
        for step in result.steps:
            changes = step.planned
            warned = [n for n in step.notes if n.status in ("warn", "failed", "skipped")]
            title = f"{icons.get(step.status, '·')} {step.name} — "
            title += f"{len(changes)} change(s)" if changes else step.message
            items: list[Collapsible | Static] = []
            for note in step.notes:
                items.append(Static(status_text(note.status, note.message, note.detail), classes="review-note"))
            for change in changes:
                # a short title that fits a row at 80 columns; the reason and what it waits for inside
                body = Text(change.summary + "\n", style="bold")
                if change.pending_on:
                    body.append(f"its value is known once {change.pending_on} is taken\n", style="yellow")
                body.append_text(diff_text(change.diff) if change.diff else Text("(nothing to diff)", style="dim"))
                label = ("⧗ " if change.pending_on else "") + (change.title or change.summary)
                items.append(Collapsible(Static(body), title=label, collapsed=True, classes="review-change"))
            await box.mount(Collapsible(*items, title=title, collapsed=not (changes or warned), id=f"review-{step.name}"))
        summary = Text(f"{result.planned} change(s) planned. Expand a change (Enter) to see its diff.")
        pending = sum(1 for s in result.steps for c in s.planned if c.pending_on)
        if pending:
            summary.append(f"\n{pending} of them depend on flanneld's lease: their values are known once it is taken.",
                           style="dim")
        failed = result.failed_step
        if failed is not None:
            summary.append(f"\n✗ {failed.name}: {failed.message} — apply would stop there", style="red")
        self.query_one("#review-summary", Static).update(summary)
        self.result = result

    def blocked(self) -> str:
        if self.problems:
            return "the answers have problems — see the list above"
        if self.result is None:
            return "still planning"
        failed = self.result.failed_step
        if failed is not None:
            return f"apply would stop at {failed.name}: {failed.message} — fix it on its page first"
        return ""

    def action_next(self) -> None:
        reason = self.blocked()
        if reason:
            self.query_one("#nav-status", Static).update(reason)
            return
        changed = self.result.planned if self.result else 0
        where = "the simulated node" if self.session.demo else "this node"

        def answer(yes: bool | None) -> None:
            if yes:
                self.wizard.mark(self.NAME, "ok")
                self.wizard.go("apply")
                self.wizard.get_screen("apply").start()  # type: ignore[attr-defined]

        self.app.push_screen(ConfirmModal(f"Apply {changed} change(s) to {where}?\n"
                                          "Each is journaled; `flannel-wizard undo` reverses them.",
                                          f"Apply {changed} change(s)"), answer)


PAGE = ReviewPage
