"""The Welcome page as the first frame: drawn while the engine loads in a worker, so the wizard is on
screen in about the time Textual itself needs, and replaced by the real Welcome page (its checks, its
keys) as soon as the session is there. It needs nothing of the engine: importing the engine (the
answers model, the node) and building the session is most of what the wizard does before it can show
anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

from screens.widgets import DemoBanner, Sidebar

if TYPE_CHECKING:
    from textual.app import ComposeResult

HEADING = "Welcome — what will happen, and is this node ready?"
INTRO = (
    "Sets up this node's pod network: etcd → network → flanneld\n"
    "→ docker0 on flannel's subnet → one cgroup driver.\n"
    "Nothing changes before you confirm on Review; every change\n"
    "is journaled and can be undone."
)


def scenario_text(scenario: dict[str, Any]) -> Text:
    """What a demo scenario is and what it shows, from its YAML's `title:` and `shows:`."""
    out = Text("Demo scenario: ", style="bold")
    out.append(str(scenario.get("title") or scenario.get("name", "")))
    if scenario.get("shows"):
        out.append("\nShows: ", style="bold")
        out.append(str(scenario["shows"]).strip())
    return out


class StartingPage(Screen[None]):
    """The Welcome page's frame, text and layout (the same ids, so the same styles), without its checks
    and keys: what the operator reads first does not move when the real page takes its place."""

    def __init__(self, scenario: dict[str, Any] | None) -> None:
        super().__init__()
        self.scenario = scenario

    def compose(self) -> ComposeResult:
        if self.scenario is not None:
            yield DemoBanner(self.scenario)
        with Horizontal(id="frame"):
            yield Sidebar({}, "preflight")
            with Vertical(id="page"):
                yield Static(HEADING, id="heading")
                with VerticalScroll(id="body", can_focus=False):
                    yield Static(INTRO, id="intro")
                    if self.scenario is not None:
                        yield Static(scenario_text(self.scenario), id="scenario-about")
                    yield Static("starting…", id="preflight-status")
                with Horizontal(id="nav"):
                    yield Static("", id="nav-status")
                    yield Button("Back", id="back", disabled=True, compact=True)
                    yield Button("Next", id="next", variant="primary", compact=True, disabled=True)
        yield Footer()
