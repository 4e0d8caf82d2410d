"""Start the Textual app for a session and return its exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wizard.session import Session


def run(session: Session, autoplay: bool = False, speed: float = 1.0) -> int:
    from screens.app import WizardApp

    app = WizardApp(session, autoplay=autoplay, speed=speed)
    code = app.run()
    return int(code or 0)
