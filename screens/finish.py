"""Finish: how the run ended and the next steps, as kubeadm ends with them — the command that replays
these answers on the next node, how to check, how to undo (the session's own advice: where the journal
really is; on the demo, that there is nothing on this machine to undo) — and saving the answers to a
file that replays (secrets named, never written). On the demo the commands are labelled as what they
would be on a real node."""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Static

from screens.base import StepScreen

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.session import Session


def node_flags(session: Session) -> list[str]:
    """--root / --state-dir as this session used them, only where they are not the defaults; none on
    the demo, whose commands are what they would be on a real node."""
    from wizard.session import DEFAULT_STATE_DIR

    if session.demo:
        return []
    flags = []
    if session.root != "/":
        flags += ["--root", session.root]
    if session.state_dir.rstrip("/") != DEFAULT_STATE_DIR:
        flags += ["--state-dir", session.state_dir]
    return flags


def command(argv: list[str], width: int = 52) -> str:
    """A command to paste; a long one is broken before its file with a backslash, so that it stays
    one command when pasted and never wraps mid-path on a narrow page."""
    line = shlex.join(argv)
    if len(line) <= width or len(argv) < 3:
        return f"  {line}\n"
    parts = [shlex.join(argv[:2]), shlex.quote(argv[2])]
    rest = argv[3:]
    while rest:  # flags with their values, one pair a line
        take = 2 if rest[0].startswith("--") and len(rest) > 1 and not rest[1].startswith("-") else 1
        parts.append(shlex.join(rest[:take]))
        rest = rest[take:]
    return "  " + " \\\n      ".join(parts) + "\n"


def next_steps(session: Session, path: str, saved: bool) -> Text:
    """What to run next: replay on the next node, check, undo."""
    flags = node_flags(session)
    out = Text()
    out.append("Next steps on a real node" if session.demo else "Next steps", style="bold")
    if session.demo:
        out.append(" (demo: only shown)", style="yellow")
    out.append("\n")

    out.append("On the next node, replay these answers:\n")
    out.append(command(["flannel-wizard", "apply", path, *flags]), style="cyan")
    if not saved:
        out.append("    (Save answers above writes the file)\n", style="dim")
    if session.ignore_preflight:
        names = ",".join(sorted(session.ignore_preflight))
        out.append(f"    this node went past preflight errors; add\n"
                   f"    --ignore-preflight-errors {names}\n"
                   "    only if the next node has them too\n", style="dim")

    out.append("Check:\n")
    out.append(command(["flannel-wizard", "plan", path, *flags]), style="cyan")
    out.append("    0 changes: the node is as the answers say\n", style="dim")
    smoke = session.partial().smoke_test
    if smoke.enabled:
        trace = ["flannel-wizard", "explain-service", smoke.service]
        if smoke.namespace != "default":
            trace += ["-n", smoke.namespace]
        out.append(command(trace), style="cyan")
        out.append("    the smoke test's service, through kube-proxy\n", style="dim")
        if smoke.cleanup:
            out.append("    (smoke_test.cleanup: false keeps it after the test)\n", style="dim")

    out.append("Undo" + (" (this demo)" if session.demo else "") + ":\n")
    for label, text in session.undo_advice():
        out.append("  ")
        if label:
            out.append(f"{label}: ", style="bold")
        out.append(f"{text}\n")
    return out


class FinishPage(StepScreen):
    NAME = "finish"
    HEADING = "Finish — next steps: replay, check, undo"
    saved: str | None = None  # the file Save answers wrote

    def body(self) -> ComposeResult:
        # saving first (the field has the focus, so the page opens at its top), then how the run
        # ended and the next steps, which name the file saved here
        with Horizontal(classes="field-line"):
            yield Label("Save to", classes="field-label")
            yield Input(self.wizard.save_path, id="save-path", compact=True)
        with Horizontal(id="finish-buttons"):
            yield Button("Save answers", id="save", variant="primary", compact=True)
            yield Button("Quit", id="quit-finish", compact=True)
        result = Static("", id="save-result")
        result.display = False  # until there is something to say
        yield result
        yield Static("", id="finish-summary")

    def next_label(self) -> str:
        return "Quit"

    def on_mount(self) -> None:
        super().on_mount()
        self.summarize()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.summarize()

    def summarize(self) -> None:
        if not self.ready:
            return
        out = Text()
        apply_page = self.wizard.get_screen("apply")
        result = getattr(apply_page, "result", None)
        if result is None:
            out.append("Nothing was applied in this session.\n", style="dim")
        else:
            out.append(f"{'✓' if result.code == 0 else '✗'} {result.message}\n",
                       style="green" if result.code == 0 else "red")
        path = os.path.abspath(self.query_one("#save-path", Input).value.strip() or self.wizard.save_path)
        out.append("\n")
        out.append_text(next_steps(self.session, path, saved=path == self.saved))
        self.query_one("#finish-summary", Static).update(out)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "save-path":
            self.summarize()  # the commands name the file that will be saved

    def save(self) -> None:
        from wizard.answers import Answers
        from wizard.savefile import secrets_needed

        path = self.query_one("#save-path", Input).value.strip()
        box = self.query_one("#save-result", Static)
        box.display = True
        if not path:
            box.update(Text("give a path to save to", style="red"))
            return
        saved = self.wizard.save_answers(path)
        if saved is None:
            box.update(Text("not saved — see the message", style="red"))
            return
        self.saved = os.path.abspath(saved)
        answers: Answers = self.session.answers()
        out = Text(f"✓ saved {saved} — the next steps below replay it\n", style="green")
        for need in secrets_needed(answers):
            out.append(f"before replaying: {need}\n", style="yellow")
        box.update(out)
        self.summarize()

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
