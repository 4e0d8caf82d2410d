"""Run the engine in-process, the way the TUI will: events collected, an optional hook on each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wizard.answers import parse
from wizard.events import StepEvent
from wizard.journal import Journal
from wizard.node import Node
from wizard.runner import Runner
from wizard.steps import Context


def run_steps(text: str, root: Path, names: list[str], hook: Callable[[StepEvent], None] | None = None,
              dry_run: bool = False) -> tuple[int, list[StepEvent]]:
    answers = parse(text)
    node = Node(str(root))
    events: list[StepEvent] = []

    def emit(event: StepEvent) -> None:
        events.append(event)
        if hook:
            hook(event)

    ctx = Context(answers, node, dry_run=dry_run, emit=emit)
    try:
        code = Runner(ctx, None if dry_run else Journal(node.files, node_identity=node.identity()), names).run().code
    finally:
        node.close()
    return code, events


def messages(events: list[StepEvent], status: str | None = None) -> list[str]:
    return [e.message for e in events if status is None or e.status == status]
