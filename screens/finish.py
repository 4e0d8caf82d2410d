"""Finish: save the answers to a file that replays (secrets named, never written), where the journal
really is, and how to undo — on the demo, that there is nothing on this machine to undo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Static

from screens.base import StepScreen

if TYPE_CHECKING:
    from textual.app import ComposeResult



class FinishPage(StepScreen):
    NAME = "finish"
    HEADING = "Finish — save the answers, know how to undo"

    def body(self) -> ComposeResult:
        yield Static("", id="finish-summary")
        with Horizontal(classes="field-line"):
            yield Label("Save to", classes="field-label")
            yield Input(self.wizard.save_path, id="save-path", compact=True)
        with Horizontal(id="finish-buttons"):
            yield Button("Save answers", id="save", variant="primary", compact=True)
            yield Button("Quit", id="quit-finish", compact=True)
        yield Static("", id="save-result")

    def next_label(self) -> str:
        return "Quit"

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.summarize()

    def summarize(self) -> None:
        session = self.session
        out = Text()
        apply_page = self.wizard.get_screen("apply")
        result = getattr(apply_page, "result", None)
        if result is None:
            out.append("Nothing was applied in this session.\n", style="dim")
        else:
            out.append(f"{'✓' if result.code == 0 else '✗'} {result.message}\n",
                       style="green" if result.code == 0 else "red")
        for label, text in session.undo_advice():
            if label:
                out.append(f"{label}: ", style="bold")
            out.append(f"{text}\n")
        self.query_one("#finish-summary", Static).update(out)

    def save(self) -> None:
        from wizard.answers import Answers
        from wizard.savefile import secrets_needed

        path = self.query_one("#save-path", Input).value.strip()
        box = self.query_one("#save-result", Static)
        if not path:
            box.update(Text("give a path to save to", style="red"))
            return
        saved = self.wizard.save_answers(path)
        if saved is None:
            box.update(Text("not saved — see the message", style="red"))
            return
        answers: Answers = self.session.answers()
        out = Text(f"✓ saved {saved}\nreplay on the next node: flannel-wizard apply {saved}\n", style="green")
        for need in secrets_needed(answers):
            out.append(f"before replaying: {need}\n", style="yellow")
        box.update(out)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "save-path":
            self.save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            event.stop()
            self.save()
        elif event.button.id == "quit-finish":
            event.stop()
            self.app.exit(getattr(self.wizard.get_screen("apply"), "exit_code", None) or 0)
        else:
            super().on_button_pressed(event)

    def action_next(self) -> None:
        self.app.exit(getattr(self.wizard.get_screen("apply"), "exit_code", None) or 0)


PAGE = FinishPage
