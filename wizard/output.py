"""Text and JSON renderings of StepEvents for the headless front end."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from wizard.events import StepEvent

TAGS = {
    "pending": "[    ]",
    "running": "[ .. ]",
    "ok": "[ ok ]",
    "warn": "[warn]",
    "failed": "[fail]",
    "skipped": "[skip]",
}


def render_text(event: StepEvent, verbose: bool = True) -> str:
    line = f"{TAGS[event.status]} {event.step}: {event.message}"
    if event.status in ("ok", "failed", "warn", "skipped") and event.kind in ("step", "run") and event.elapsed:
        line += f" ({event.elapsed:.2f}s)"
    if verbose and event.detail:
        line += "\n" + "\n".join("       " + d for d in event.detail.rstrip("\n").splitlines())
    return line


def render_json(event: StepEvent) -> str:
    return json.dumps(event.to_dict(), sort_keys=True)


class Printer:
    """Writes one line (or one JSON object) per event as it happens."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream or sys.stdout

    def __call__(self, event: StepEvent) -> None:
        text = render_json(event) if self.fmt == "json" else render_text(event)
        self.stream.write(text + "\n")
        self.stream.flush()
