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


INDENT = "       "


def render_text(event: StepEvent, verbose: bool = False) -> str:
    """The event's line, its detail indented under it, and its items (a note's whole listing, such as
    16 000 leases) only when `verbose`: by default one line says how to see them."""
    line = f"{TAGS[event.status]} {event.step}: {event.message}"
    if event.status in ("ok", "failed", "warn", "skipped") and event.kind in ("step", "run") and event.elapsed:
        line += f" ({event.elapsed:.2f}s)"
    if event.detail:
        line += "\n" + "\n".join(INDENT + d for d in event.detail.rstrip("\n").splitlines())
    if event.items:
        if verbose:
            line += "\n" + "\n".join(INDENT + item for item in event.items)
        else:
            line += f"\n{INDENT}({len(event.items)} listed with --verbose)"
    return line


def render_json(event: StepEvent) -> str:
    return json.dumps(event.to_dict(), sort_keys=True)


class Printer:
    """Writes one line (or one JSON object) per event as it happens."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None, verbose: bool = False) -> None:
        self.fmt = fmt
        self.stream = stream or sys.stdout
        self.verbose = verbose  # text: each note's items too (json always has them)

    def __call__(self, event: StepEvent) -> None:
        text = render_json(event) if self.fmt == "json" else render_text(event, self.verbose)
        self.stream.write(text + "\n")
        self.stream.flush()
