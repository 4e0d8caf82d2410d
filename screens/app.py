"""The wizard's Textual app: pages made on their first visit and kept (so what was typed stays),
navigation, the command palette, saving answers, and the hands-free autoplay of the demo."""

from __future__ import annotations

import gc
import importlib
import os
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.system_commands import SystemCommandsProvider

from screens.pages import PAGES, TITLES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from textual.screen import Screen

    from wizard.events import StepEvent
    from wizard.session import Loc, Session


def _screen_class(name: str) -> type[Screen[Any]]:
    module = importlib.import_module(f"screens.{name}")
    return module.PAGE  # type: ignore[no-any-return]


def _freeze_heap() -> None:
    gc.freeze()
    gc.enable()


class PageOrderCommands(SystemCommandsProvider):
    """The palette's commands as `get_system_commands` orders them (the pages in wizard order first),
    not sorted by name: Textual shows an empty query's discovery hits in the order they come."""

    async def discover(self) -> Any:
        from textual.command import DiscoveryHit

        for name, help_text, callback, discover in self.app.get_system_commands(self.screen):
            if discover:
                yield DiscoveryHit(name, callback, help=help_text)


class WizardApp(App[int]):
    CSS_PATH = "wizard.tcss"
    TITLE = "flannel-wizard"
    COMMANDS = {PageOrderCommands}  # type: ignore[assignment]
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        # the app's bindings come after a page's in the footer: Help and Quit close it on every page
        Binding("f1", "help", "Help", tooltip="what this page does, its keys, and each field's answers key"),
        # not priority: a text field takes "?" as a character, F1 works there
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="leave the wizard"),
    ]

    def __init__(self, session: Session | Callable[[], Session], autoplay: bool = False, speed: float = 1.0,
                 scenario: dict[str, Any] | None = None, settle_heap: bool = False) -> None:
        """`session`, or what makes it: then the first frame is drawn before it is made (in a worker), and
        `scenario` (the demo's, when there is one) marks that frame as the demo's. `settle_heap`: this app
        is the process (launch.run), and may freeze its heap (see settle_heap)."""
        super().__init__()
        self._settle_heap = settle_heap
        self.pages: dict[str, Screen[Any]] = {}  # the pages made so far (each on its first visit)
        self.load_error: BaseException | None = None  # what making the session raised: the CLI reports it
        self._make_session: Callable[[], Session] | None = None
        self.first_scenario = scenario
        if callable(session):
            self._make_session = session
        else:
            self.session = session
        self.statuses: dict[str, str] = {}
        self.events: list[StepEvent] = []  # everything the last apply emitted, for the later pages
        # the mesh step's checks from the last Apply (its events, live) or Check this node (its result),
        # whichever came last: the Mesh page renders them
        self.mesh_checks: list[Any] = []
        self.mesh_origin = ""  # "apply" | "check"
        self.autoplay = autoplay
        self.speed = speed
        self.save_path = self._default_save_path() if self._make_session is None else ""
        self._check_key: tuple[str, int] | None = None
        self._check: tuple[dict[Loc, list[str]], dict[str, Any]] = ({}, {})

    def _default_save_path(self) -> str:
        if self.session.demo:
            # not inside the demo's directory, which the demo removes when it ends
            import tempfile

            return os.path.join(tempfile.gettempdir(), "flannel-wizard-demo-answers.yaml")
        return os.path.abspath("flannel-wizard-answers.yaml")

    def get_default_screen(self) -> Screen[Any]:
        """The first frame's page as the app's own first screen, when the session is made after it: pushed
        over Textual's blank default screen instead, it cost that screen's layout and paint first."""
        if self._make_session is None:
            return super().get_default_screen()
        from screens.starting import StartingPage

        return StartingPage(self.first_scenario)

    def settle_heap(self) -> None:
        """Once what was just loaded is drawn: keep the objects alive now (the engine, a page's facts, the
        16 000 leases of a Test connection) out of the collector's later passes, and collect again if
        the start had stopped it. A full collection walks every object in the process: with the leases
        loaded it took 60-90 ms, and came while a key was typed. What is frozen is never collected as a
        cycle (freed by its count only): it is what the wizard keeps to its end. Not in tests, where the
        process is pytest's."""
        if self._settle_heap:
            self.call_after_refresh(_freeze_heap)

    def on_mount(self) -> None:
        self.settle_heap()  # the first frame is drawn with the collector stopped (launch.run)
        for name in PAGES:
            # made on the first visit: a page composes dozens of widgets, and most are not seen at once
            self.install_screen(lambda name=name: self._make_page(name), name)  # type: ignore[arg-type]
        if self._make_session is not None:
            # the worker starts once that frame is out: its imports would hold the GIL while it is drawn
            self.call_after_refresh(self.call_after_refresh, self._start_loading)
            return
        self._start()

    def _make_page(self, name: str) -> Screen[Any]:
        page = _screen_class(name)()
        self.pages[name] = page
        return page

    def _start_loading(self) -> None:
        self.run_worker(self._load, thread=True, name="session", group="session")

    def _load(self) -> None:
        """The session, made in a worker after the first frame (its imports are most of the start)."""
        assert self._make_session is not None
        try:
            session = self._make_session()
        except BaseException as exc:  # noqa: BLE001 - the CLI reports it once the terminal is back
            self.call_from_thread(self._load_failed, exc)
            return
        self.call_from_thread(self._loaded, session)

    def _load_failed(self, exc: BaseException) -> None:
        self.load_error = exc
        self.exit(2)

    def _loaded(self, session: Session) -> None:
        self.session = session
        self.settle_heap()
        self.save_path = self._default_save_path()
        self._start(replace=True)

    def _start(self, replace: bool = False) -> None:
        """The Welcome page, once there is a session; the pages an answers file has problems on marked."""
        for name in PAGES:
            section = getattr(_screen_class(name), "SECTION", None)
            if section and self.problems_under(section):
                self.statuses[name] = "failed"  # an answers file's problems, marked where they are
        if replace:
            # the first frame's page is the app's default screen, which cannot be switched away: it stays
            # under the pages, and what was opened over it (the palette) closes, as a switch closed it
            while len(self.screen_stack) > 1:
                self.pop_screen()
        self.push_screen(PAGES[0])
        if self.autoplay:
            from screens.autoplay import autoplay

            self.run_worker(autoplay(self), name="autoplay", exclusive=True, group="autoplay")

    # ------------------------------------------------------------ navigation

    def go(self, name: str) -> None:
        if not hasattr(self, "session"):
            return  # the first frame, still without a session: the pages have nothing to show yet
        from screens.check import CheckScreen

        if isinstance(self.screen, CheckScreen):
            # a jump from the palette over Check this node leaves it, as Esc would: switching would put
            # the page in its place and keep Welcome under it
            self.screen.action_leave()
        if self.screen.id == name or getattr(self.screen, "NAME", None) == name:
            return
        if self.statuses.get(self.screen_name, "") == "current":
            self.statuses[self.screen_name] = ""
        self.switch_screen(name)

    @property
    def screen_name(self) -> str:
        return str(getattr(self.screen, "NAME", ""))

    def mark(self, name: str, status: str) -> None:
        if status == "current" and self.statuses.get(name):
            return  # a page that already has a result keeps showing it
        self.statuses[name] = status
        from screens.widgets import Sidebar

        for sidebar in self.screen.query(Sidebar):
            sidebar.show(self.statuses)

    def mesh_event(self) -> None:
        """New mesh checks (from Apply live, or from Check this node): the Mesh page redraws."""
        page = self.get_screen("mesh")
        if getattr(page, "ready", False):
            page.show()  # type: ignore[attr-defined]

    def smoke_event(self) -> None:
        """The smoke test's sub-steps arrive during Apply: the Smoke page follows them live."""
        page = self.get_screen("smoke")
        if getattr(page, "ready", False):
            page.show()  # type: ignore[attr-defined]

    # ------------------------------------------------------------ the answers' problems

    def _checked(self) -> tuple[dict[Loc, list[str]], dict[str, Any]]:
        """The session's problems, validated once per state of the answers. A key asks for them several
        times (the field's error line, the page's status, whether Next may go on, the live checks) while
        the answers stay as they are; the state is the draft's repr (plain YAML data: equal repr, equal
        answers) and how many of the file's problems still stand (an edit answers them)."""
        session = self.session
        key = (repr(session.draft), len(session.file_problems))
        if self._check_key != key:
            self._check_key = key
            self._check = (session.problems(), {})
        return self._check

    def problems_under(self, prefix: Loc) -> list[tuple[Loc, str]]:
        """`Session.problems_under`, from the validation of the answers as they are now."""
        return [(loc, m) for loc, ms in self._checked()[0].items() for m in ms if tuple(loc[: len(prefix)]) == prefix]

    def unknown_keys(self, prefix: Loc = ()) -> list[Loc]:
        """`Session.unknown_keys`, asked once per state of the answers (and never while they have no problem:
        an unknown key is one)."""
        problems, memo = self._checked()
        if not problems:
            return []
        if "unknown" not in memo:
            memo["unknown"] = self.session.unknown_keys()
        return [loc for loc in memo["unknown"] if loc[: len(prefix)] == prefix]

    # ------------------------------------------------------------ answers out

    def save_answers(self, path: str | None = None) -> str | None:
        from wizard.answers import AnswersInvalid
        from wizard.errors import WizardError

        target = path or self.save_path
        try:
            self.session.save(target)
        except AnswersInvalid as exc:
            first = exc.problems[0]
            where = ".".join(str(p) for p in first.loc) or "the answers"
            self.notify(f"not saved: {len(exc.problems)} problem(s); first: {where}: {first.message}",
                        severity="error", timeout=8)
            return None
        except (OSError, WizardError) as exc:
            self.notify(f"not saved: {exc}", severity="error", timeout=8)
            return None
        self.save_path = target
        self.notify(f"answers saved to {target}")
        return target

    # ------------------------------------------------------------ palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for number, name in enumerate(PAGES, 1):
            yield SystemCommand(f"Jump to {TITLES[name]}", f"page {number} of {len(PAGES)}", lambda n=name: self.go(n))
        yield SystemCommand("Help for this page", "what it does, its keys, where each field's answer lives (F1)",
                            self.action_help)
        yield SystemCommand("Save answers", f"write the answers to {self.save_path}", self.save_answers)
        yield SystemCommand("Toggle dark mode", "switch between the dark and the light theme", self.action_toggle_dark)
        yield from super().get_system_commands(screen)

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    # ------------------------------------------------------------ help

    def action_help(self) -> None:
        """Help for the page under whatever is on top (a dialog, or this help itself: then it closes)."""
        from screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        page = next((s for s in reversed(self.screen_stack) if getattr(s, "NAME", "") in PAGES), None)
        if page is not None:
            self.push_screen(HelpScreen(page))

    # ------------------------------------------------------------ autoplay

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and self.autoplay:
            # any key takes over from the autoplay; the key itself still does what it does
            self.stop_autoplay()
            self.notify("autoplay stopped — you have the keyboard")
        await super().on_event(event)

    def stop_autoplay(self) -> None:
        self.autoplay = False
        self.workers.cancel_group(self, "autoplay")
        self.show_banners()

    def show_banners(self) -> None:
        """Every page's demo banner says again whether autoplay is playing."""
        from screens.widgets import DemoBanner

        for page in self.pages.values():  # a page not made yet shows the right banner when it is
            for banner in page.query(DemoBanner):
                banner.show()

    # ------------------------------------------------------------ leaving

    def action_quit(self) -> None:  # type: ignore[override]
        apply_page = self.get_screen("apply")
        if getattr(apply_page, "running", False):
            apply_page.stop_after_current()  # type: ignore[attr-defined]
            self.notify("stopping after the change in flight; this step is then rolled back")
            return
        self.exit(getattr(apply_page, "exit_code", 0))
