"""The wizard's Textual app: pages installed once (so what was typed stays), navigation, the
command palette, saving answers, and the hands-free autoplay of the demo."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App, SystemCommand

from screens.pages import PAGES, TITLES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from textual.screen import Screen

    from wizard.events import StepEvent
    from wizard.session import Session


def _screen_class(name: str) -> type[Screen[Any]]:
    module = importlib.import_module(f"screens.{name}")
    return module.PAGE  # type: ignore[no-any-return]


class WizardApp(App[int]):
    CSS_PATH = "wizard.tcss"
    TITLE = "flannel-wizard"

    def __init__(self, session: Session, autoplay: bool = False, speed: float = 1.0) -> None:
        super().__init__()
        self.session = session
        self.statuses: dict[str, str] = {}
        self.events: list[StepEvent] = []  # everything the last apply emitted, for the later pages
        self.autoplay = autoplay
        self.speed = speed
        self.save_path = self._default_save_path()

    def _default_save_path(self) -> str:
        if self.session.demo:
            return os.path.join(self.session.root, "answers.yaml")
        return os.path.abspath("flannel-wizard-answers.yaml")

    def on_mount(self) -> None:
        for name in PAGES:
            page = _screen_class(name)()
            self.install_screen(page, name)
            section = getattr(page, "SECTION", None)
            if section and self.session.problems_under(section):
                self.statuses[name] = "failed"  # an answers file's problems, marked where they are
        self.push_screen(PAGES[0])
        if self.autoplay:
            from screens.autoplay import autoplay

            self.run_worker(autoplay(self), name="autoplay", exclusive=True, group="autoplay")

    # ------------------------------------------------------------ navigation

    def go(self, name: str) -> None:
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

    def smoke_event(self) -> None:
        """The smoke test's sub-steps arrive during Apply: the Smoke page follows them live."""
        page = self.get_screen("smoke")
        if getattr(page, "ready", False):
            page.show()  # type: ignore[attr-defined]

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
        for name in PAGES:
            yield SystemCommand(f"Jump to {TITLES[name]}", f"go to the {TITLES[name]} page", lambda n=name: self.go(n))
        yield SystemCommand("Save answers", f"write the answers to {self.save_path}", self.save_answers)
        yield SystemCommand("Toggle dark mode", "switch between the dark and the light theme", self.action_toggle_dark)
        yield from super().get_system_commands(screen)

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    # ------------------------------------------------------------ autoplay

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and self.autoplay:
            # any key takes over from the autoplay; the key itself still does what it does
            self.autoplay = False
            self.workers.cancel_group(self, "autoplay")
            self.notify("autoplay stopped — you have the keyboard")
        await super().on_event(event)

    # ------------------------------------------------------------ leaving

    def action_quit(self) -> None:  # type: ignore[override]
        apply_page = self.get_screen("apply")
        if getattr(apply_page, "running", False):
            apply_page.stop_after_current()  # type: ignore[attr-defined]
            self.notify("stopping after the change in flight; this step is then rolled back")
            return
        self.exit(getattr(apply_page, "exit_code", 0))
