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
from wizard.steps import ORDER

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.events import StepEvent


class ReviewPage(StepScreen):
    NAME = "review"
    HEADING = "Review — every change, before anything is touched"

    events: list[StepEvent] | None = None
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
        self.events = None
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
        from wizard.runner import Runner

        events: list[StepEvent] = []
        ctx = self.session.context(answers, events.append, dry_run=True)  # type: ignore[arg-type]
        runner = Runner(ctx, None, list(ORDER))
        try:
            runner.plan()
        finally:
            ctx.close()
        self.app.call_from_thread(self.show_plan, events, runner.changed)

    async def show_plan(self, events: list[StepEvent], changed: int) -> None:
        box = self.query_one("#review-steps")
        await box.remove_children()
        failed = [e for e in events if e.status == "failed" and e.kind == "note"] + \
                 [e for e in events if e.status == "failed" and e.kind == "" and e.step != "wizard"]
        for step in ORDER:
            mine = [e for e in events if e.step == step]
            changes = [e for e in mine if e.kind == "change"]
            notes = [e for e in mine if e.kind == "note"]
            warned = [e for e in notes if e.status in ("warn", "failed", "skipped")]
            last = next((e for e in reversed(mine) if e.kind == ""), None)
            status = "failed" if any(e.status == "failed" for e in mine) else "warn" if warned else "ok"
            icon = {"ok": "✓", "warn": "⚠", "failed": "✗"}[status]
            title = f"{icon} {step} — {len(changes)} change(s)" if changes else f"{icon} {step} — {last.message if last else ''}"
            items: list[Collapsible | Static] = []
            for note in notes:
                items.append(Static(status_text(note.status, note.message, note.detail), classes="review-note"))
            for change in changes:
                body = diff_text(change.detail) if change.detail else Text("(nothing to diff)", style="dim")
                items.append(Collapsible(Static(body), title=change.message.removeprefix("would "), collapsed=True,
                                         classes="review-change"))
            await box.mount(Collapsible(*items, title=title, collapsed=not (changes or warned), id=f"review-{step}"))
        summary = Text(f"{changed} change(s) planned. Expand a change (Enter) to see its diff.")
        if failed:
            summary.append(f"\n✗ {failed[0].step}: {failed[0].message} — apply would stop there", style="red")
        self.query_one("#review-summary", Static).update(summary)
        self.events = events

    def blocked(self) -> str:
        if self.problems:
            return "the answers have problems — see the list above"
        if self.events is None:
            return "still planning"
        return ""

    def action_next(self) -> None:
        reason = self.blocked()
        if reason:
            self.query_one("#nav-status", Static).update(reason)
            return
        changed = sum(1 for e in self.events or [] if e.kind == "change")
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
