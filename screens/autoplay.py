"""Hands-free walkthrough for presenters: each form is filled from the answers at a readable pace,
then Next; the apply runs; any key takes over (the app cancels this worker). While it plays, the demo
banner says so; when it ends by itself it says where, and the banner goes back to one line."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual.widgets import Input

from screens.pages import PAGES, TITLES

if TYPE_CHECKING:
    from screens.app import WizardApp
    from screens.base import StepScreen


async def _until(check: object, timeout: float = 60.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _type_fields(app: WizardApp, page: StepScreen) -> None:
    pace = 0.03 / app.speed
    for spec in page.FIELDS:
        found = page.query(f"#{spec.id}")
        if not found or spec.password:
            continue
        widget = found.first()
        if not isinstance(widget, Input) or not widget.display or not widget.parent or not widget.parent.display:
            continue
        text = spec.to_text(app.session.get(spec.path))
        if not text:
            continue
        widget.focus()
        widget.value = ""
        for n in range(1, len(text) + 1):
            widget.value = text[:n]
            await asyncio.sleep(pace)
        # the page takes the value from the Input's Changed message: wait until it has
        await _until(lambda s=spec, t=text: s.to_text(app.session.get(s.path)) == t, timeout=5)


async def autoplay(app: WizardApp) -> None:
    ended = await _play(app)  # a key that takes over cancels it here, and says so itself
    if app.autoplay:
        app.autoplay = False
        app.show_banners()
        app.notify(f"autoplay ended {ended} — you have the keyboard")


async def _play(app: WizardApp) -> str:
    """Play page by page; where it stopped, in words."""
    pause = 1.2 / app.speed
    while True:
        await asyncio.sleep(pause)
        page: StepScreen = app.screen  # type: ignore[assignment]
        name = getattr(page, "NAME", "")
        if name not in PAGES:
            continue
        if not await _until(lambda p=page: p.ready, timeout=10):
            continue
        if name == "preflight":
            # a presenter's walkthrough: errors of the demo machine are ignored the way an operator would
            await _until(lambda p=page: getattr(p, "findings", None) is not None)
            for name_ in page.errors():  # type: ignore[attr-defined]
                app.session.ignore_preflight.add(name_)
        elif name == "etcd":
            await _type_fields(app, page)
            page.action_test()  # type: ignore[attr-defined]
            await _until(lambda p=page: not getattr(p, "probing", False))
            await asyncio.sleep(pause)
        elif name in ("network", "flanneld", "docker", "cgroup"):
            await _type_fields(app, page)
        elif name == "review":
            await _until(lambda p=page: getattr(p, "result", None) is not None or getattr(p, "problems", None))
            await asyncio.sleep(pause)
            if page.blocked():
                return f"on Review: {page.blocked()}"
            apply_page = app.get_screen("apply")
            app.go("apply")
            apply_page.start()  # type: ignore[attr-defined]
            continue
        elif name == "apply":
            await _until(lambda p=page: not getattr(p, "running", False) and getattr(p, "exit_code", None) is not None,
                         timeout=600)
            if getattr(page, "exit_code", 1) != 0:
                return "at the failure, left on screen"  # for the presenter to talk through
        elif name == "finish":
            return "at Finish"
        if page.blocked():
            return f"on {TITLES[name]}: {page.blocked()}"
        page.action_next()
