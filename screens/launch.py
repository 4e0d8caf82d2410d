"""Start the Textual app for a session and return its exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from wizard.session import Session


def run(session: Session | Callable[[], Session], autoplay: bool = False, speed: float = 1.0,
        scenario: dict[str, Any] | None = None) -> int:
    """Run the wizard on `session`, or on what `session()` makes: then the first frame is drawn before it
    is made (the engine's imports are most of a start), and what it raises is raised here, after the
    terminal is restored, for the CLI to report as it would have before the wizard opened."""
    import gc

    # What a start allocates lives as long as the process (modules, classes, the first screen): a
    # collection during it frees nearly nothing and took ~10 ms of the first frame. The app collects
    # again, and keeps what it has loaded out of later collections, once that frame is out (settle_heap).
    gc.disable()
    from screens.app import WizardApp

    app = WizardApp(session, autoplay=autoplay, speed=speed, scenario=scenario, settle_heap=True)
    try:
        code = app.run()
    finally:
        gc.enable()  # an app that ended before its first frame had not started it again
    if app.load_error is not None:
        raise app.load_error
    return int(code or 0)
