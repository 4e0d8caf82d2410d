"""The floor for the TUI figures in bench/tui.py: the smallest Textual app that paints one screen.

    python bench/floor/minimal_textual.py

One heading and one focused text field, nothing else: its first frame is what importing Textual and
painting costs on this machine, and a key typed into its field is what Textual itself needs to draw
a character. bench/tui.py runs it on the same pseudo-terminal, in the same run, as the wizard, and
prints each of the wizard's figures next to this one as a ratio. ctrl+q quits (Textual's default).
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Input, Static


class Minimal(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("Welcome")
        yield Input(compact=True)


if __name__ == "__main__":
    Minimal().run()
