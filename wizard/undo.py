"""Reversing journal entries: used by a failing step's rollback and by `flannel-wizard undo`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wizard.changes import Change, UndoContext, systemctl
from wizard.errors import WizardError
from wizard.events import StepEvent

if TYPE_CHECKING:
    from collections.abc import Callable

    from wizard.journal import Journal
    from wizard.node import NodeLike
    from wizard.node.etcd import Store


def undo_entries(
    node: NodeLike,
    journal: Journal,
    entries: list[dict[str, Any]],
    emit: Callable[[StepEvent], None],
    store_for: Callable[[dict[str, Any]], Store],
    final_state: str,
) -> int:
    """Reverse `entries` (given newest first); restart what was restarted once files are back.

    Returns how many could not be reversed; each of those is left `applied` so a later undo retries it.
    """
    failures = 0
    ctx = UndoContext(node, journal.read_backup, store_for)
    for entry in entries:
        record = entry.get("record") or {}
        step = entry["step"]
        try:
            # an empty record: interrupted before it touched anything
            message = Change.of_kind(entry["kind"]).undo(record, ctx) if record else ""
        except (WizardError, OSError) as exc:
            failures += 1
            emit(StepEvent(step, "failed", f"could not undo: {entry['summary']}", str(exc), kind="change"))
            continue
        journal.finish(entry, final_state)
        if message:
            emit(StepEvent(step, "ok", message, kind="change"))
    for service in ctx.restarts:
        try:
            warning = systemctl(node, "restart", service)
        except WizardError as exc:
            # the files are back; a service that will not start with its old configuration is the
            # operator's to look at, not a reason to call the undo failed
            emit(StepEvent("undo", "warn", f"restored {service}'s configuration but it did not restart", str(exc), kind="change"))
            continue
        if warning:
            emit(StepEvent("undo", "warn", f"did not restart {service}", f"systemd is not running here; run `systemctl restart {service}` once it is", kind="change"))
        else:
            emit(StepEvent("undo", "ok", f"restarted {service} with its restored configuration", kind="change"))
    return failures


def undo_all(node: NodeLike, journal: Journal, emit: Callable[[StepEvent], None]) -> int:
    """Reverse every live journal entry, newest first (`flannel-wizard undo`, the TUI's Roll back).

    Returns how many could not be reversed.
    """
    from wizard.answers import Etcd, read_secret

    entries = journal.live()
    if not entries:
        emit(StepEvent("undo", "ok", "nothing to undo: every recorded change is already reversed"))
        return 0
    stores: dict[str, Store] = {}

    def store_for(record: dict[str, Any]) -> Store:
        settings = Etcd.model_validate(record["etcd"])
        key = repr(sorted(settings.model_dump().items()))
        if key not in stores:
            stores[key] = node.etcd(settings, read_secret(settings.password_env, settings.password_file))
        return stores[key]

    emit(StepEvent("undo", "running", f"reversing {len(entries)} recorded change(s), newest first"))
    try:
        failures = undo_entries(node, journal, entries, emit, store_for, "undone")
    finally:
        for store in stores.values():
            store.close()
    if failures:
        emit(StepEvent("undo", "failed", f"{failures} change(s) could not be reversed; they stay in the journal",
                       "fix the cause and run `flannel-wizard undo` again"))
    else:
        emit(StepEvent("undo", "ok", f"reversed {len(entries)} change(s)"))
    return failures
