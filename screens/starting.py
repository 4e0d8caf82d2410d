"""The Welcome page as the first frame: drawn while the engine loads in a worker, so the wizard is on
screen in about the time Textual itself needs, and replaced by the real Welcome page (its checks, its
keys) as soon as the session is there. It needs nothing of the engine: importing the engine (the
answers model, the node) and building the session is most of what the wizard does before it can show
anything.

It is drawn with plain Statics only. The real page's sidebar (an OptionList), Back/Next (Buttons) and
Footer cost 34, 14 and 13 ms of the first frame (importing them, parsing their default CSS, composing
a FooterKey per key), against about 190 ms for a whole minimal Textual app; here they are painted
lookalikes, styled in wizard.tcss with the same theme variables, so that the real page replaces them
cell for cell (tests/test_tui_cli.py compares the two)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from screens.pages import ICONS, PAGES, TITLES

if TYPE_CHECKING:
    from rich.style import Style
    from textual.app import ComposeResult

HEADING = "Welcome — what will happen, and is this node ready?"
INTRO = (
    "Sets up this node's pod network: etcd → network → flanneld\n"
    "→ docker0 on flannel's subnet → one cgroup driver.\n"
    "Nothing changes before you confirm on Review; every change\n"
    "is journaled and can be undone."
)
# what the Footer shows while no page is up: the app's own keys, and the palette's last
KEYS = (("^q", "Quit"), ("f1", "Help"))
PALETTE = ("^p", "palette")


def scenario_text(scenario: dict[str, Any]) -> Text:
    """What a demo scenario is and what it shows, from its YAML's `title:` and `shows:`."""
    out = Text("Demo scenario: ", style="bold")
    out.append(str(scenario.get("title") or scenario.get("name", "")))
    if scenario.get("shows"):
        out.append("\nShows: ", style="bold")
        out.append(str(scenario["shows"]).strip())
    return out


# here, not in screens.widgets, which imports the form controls (Input, Select, Switch, OptionList, Button):
# the first frame needs only this banner, and importing those took 6 ms of it
class DemoBanner(Static):
    """The demo's marker on every page; while autoplay plays, a second line says so and that any key
    takes over (the app redraws every banner when it stops)."""

    def __init__(self, scenario: dict[str, Any]) -> None:
        self.scenario = scenario
        super().__init__(self.text(False), id="demo-banner")

    def text(self, playing: bool) -> Text:
        text = Text(f"DEMO — simulated node · scenario {self.scenario['name']} · nothing on this machine changes")
        if playing:
            text.append("\n▶ AUTOPLAY — the demo plays by itself; press any key to take over", style="reverse")
        return text

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        self.update(self.text(bool(getattr(self.app, "autoplay", False))))


class StartingSidebar(Static):
    """The sidebar's steps, the Welcome page's highlighted as the focused OptionList highlights it."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"starting-sidebar--current"}

    def render(self) -> Text:
        width = self.content_region.width
        current = self.get_component_rich_style("starting-sidebar--current")
        out = Text(no_wrap=True, overflow="crop")
        for n, name in enumerate(PAGES):
            line = f"{ICONS['current' if n == 0 else '']} {TITLES[name]}".ljust(width)
            out.append(line + ("\n" if n < len(PAGES) - 1 else ""), style=current if n == 0 else "")
        return out


class StartingKeys(Static):
    """The Footer's keys, as Textual's compact footer draws them (key, a space, description)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"starting-keys--key", "starting-keys--description"}

    def __init__(self, keys: tuple[tuple[str, str], ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keys = keys

    def render(self) -> Text:
        key: Style = self.get_component_rich_style("starting-keys--key")
        description: Style = self.get_component_rich_style("starting-keys--description")
        out = Text(no_wrap=True, overflow="crop")
        for n, (name, what) in enumerate(self.keys):
            out.append(name, style=key)
            out.append(f" {what}", style=description)
            if n < len(self.keys) - 1:
                out.append(" ")
        return out


class StartingPage(Screen[None]):
    """The Welcome page's frame, text and layout (the same ids, so the same styles), without its checks
    and keys: what the operator reads first does not move when the real page takes its place."""

    AUTO_FOCUS = None  # nothing here takes keys

    def __init__(self, scenario: dict[str, Any] | None) -> None:
        super().__init__()
        self.scenario = scenario

    def compose(self) -> ComposeResult:
        if self.scenario is not None:
            yield DemoBanner(self.scenario)
        with Horizontal(id="frame"):
            yield StartingSidebar(id="sidebar")
            with Vertical(id="page"):
                yield Static(HEADING, id="heading")
                with Vertical(id="body"):
                    yield Static(INTRO, id="intro")
                    if self.scenario is not None:
                        yield Static(scenario_text(self.scenario), id="scenario-about")
                    yield Static("starting…", id="preflight-status")
                with Horizontal(id="nav"):
                    yield Static("", id="nav-status")
                    yield Static("Back", classes="starting-button", disabled=True)
                    yield Static("Next", classes="starting-button -primary", disabled=True)
        with Horizontal(id="starting-footer"):
            yield StartingKeys(KEYS)
            yield StartingKeys((PALETTE,), id="starting-palette")
