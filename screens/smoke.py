"""Smoke test: the smoke step's results from the apply run, live while it runs. The step itself is
not built yet (it has its own issue), so this page shows its skip as the engine reports it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from screens.base import StepScreen
from screens.widgets import status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

ABOUT = ("The last step proves the node works: nginx pods behind a NodePort service, traffic to the "
         "cluster IP and the node port reaching the pods through kube-proxy's rules.")


class SmokePage(StepScreen):
    NAME = "smoke"
    HEADING = "Smoke test — does traffic reach the pods?"

    def body(self) -> ComposeResult:
        yield Static(ABOUT, id="smoke-about")
        yield Static("", id="smoke-results")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show()

    def show(self) -> None:
        events = [e for e in self.wizard.events if e.step == "smoke"]
        box = self.query_one("#smoke-results", Static)
        if not events:
            box.update(Text("It runs as the last step of Apply; nothing has run yet.", style="dim"))
            return
        out = Text()
        for event in events:
            if event.kind == "" and event.status == "running":
                continue
            out.append_text(status_text(event.status, event.message, event.detail))
            out.append("\n")
        box.update(out)

    def blocked(self) -> str:
        apply_page = self.wizard.get_screen("apply")
        if getattr(apply_page, "running", False):
            return "still applying"
        return ""


PAGE = SmokePage
