"""Helpers for driving the wizard's Textual app with Pilot: a demo app on a simulated node, waiting
on a condition with a deadline, and reading what a widget shows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.pilot import Pilot

from screens.app import WizardApp
from wizard import scenarios
from wizard.node.simulated import SimulatedNode
from wizard.session import Session

FAST = 500.0  # simulated delays divided by this: the demo's pacing is not what these tests check


def demo_app(scenario: str | dict[str, Any] = "fresh-node", speed: float = FAST, answers: str | None = None,
             root: str | None = None, autoplay: bool = False) -> WizardApp:
    profile = scenarios.load(scenario) if isinstance(scenario, str) else scenario
    node = SimulatedNode(profile, speed=speed, root=root)
    session = Session.from_file(node, answers, scenario=profile) if answers else Session(node, scenario=profile)
    return WizardApp(session, autoplay=autoplay, speed=speed)


async def until(pilot: Pilot[Any], check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await pilot.pause(0.02)


def shown(app: WizardApp, selector: str) -> str:
    """The plain text a Static (or the first match) shows."""
    widget = app.screen.query_one(selector)
    content = getattr(widget, "content", "")
    return content.plain if isinstance(content, Text) else str(content)


def screen_text(app: WizardApp) -> str:
    """Every Static on the current page, joined: for asserting what a page says anywhere on it."""
    from textual.widgets import Static

    parts = []
    for widget in app.screen.query(Static):
        content = getattr(widget, "content", "")
        parts.append(content.plain if isinstance(content, Text) else str(content))
    return "\n".join(parts)


async def goto(pilot: Pilot[Any], app: WizardApp, name: str) -> None:
    app.go(name)
    await until(pilot, lambda: app.screen_name == name and app.screen.ready, what=f"page {name}")
    await pilot.pause()


async def next_page(pilot: Pilot[Any], app: WizardApp) -> str:
    before = app.screen_name
    await pilot.press("ctrl+n")
    await until(pilot, lambda: (app.screen_name != before and app.screen.ready) or app.screen.blocked(),
                what=f"leaving {before}")
    await pilot.pause()
    return app.screen_name


async def type_into(pilot: Pilot[Any], app: WizardApp, field_id: str, text: str) -> None:
    """Clear a field and type into it key by key, as an operator would."""
    widget = app.screen.query_one(f"#{field_id}")
    widget.focus()
    await pilot.pause()
    widget.value = ""  # type: ignore[attr-defined]
    if text:
        await pilot.press(*list(text))
    await pilot.pause()


async def confirm_apply(pilot: Pilot[Any], app: WizardApp, timeout: float = 30.0) -> int:
    """From Review: wait for the plan, confirm, wait for the apply to end; its exit code."""
    await until(pilot, lambda: app.screen.result is not None or app.screen.problems, what="the plan")  # type: ignore[attr-defined]
    await pilot.press("ctrl+n")
    await until(pilot, lambda: app.screen.query("#confirm-yes"), what="the confirmation")
    await press(pilot, app, "confirm-yes")
    page = app.get_screen("apply")
    await until(pilot, lambda: page.exit_code is not None and not page.running, timeout, "the apply")  # type: ignore[attr-defined]
    await pilot.pause()
    return page.exit_code  # type: ignore[attr-defined,no-any-return]


async def press(pilot: Pilot[Any], app: WizardApp, button_id: str) -> None:
    """Focus a button and press Enter on it, as a keyboard user would (it may be scrolled out of view)."""
    button = app.screen.query_one(f"#{button_id}")
    button.focus()
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
