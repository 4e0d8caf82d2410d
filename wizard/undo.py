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
    An entry that is not the shape the wizard writes (a journal edited by hand) is refused, not acted on.
    """
    failures = 0
    ctx = UndoContext(node, journal.read_backup, store_for)
    # restarts an interrupted run left owed come first, in their order, then this undo's own
    owed_before = journal.owed() if final_state == "undone" and journal.exists() else []
    for entry in entries:
        step = str(entry.get("step", "undo"))
        summary = str(entry.get("summary", "a change"))[:200]
        problem = journal.problem(entry)
        if problem:
            failures += 1
            emit(StepEvent(step if step in _steps() else "undo", "failed", f"refused to undo: {summary}",
                           f"the journal entry {str(entry.get('id'))[:40]} is not one the wizard wrote: {problem}; "
                           "reverse that change by hand", kind="change"))
            continue
        record = entry.get("record") or {}
        try:
            # an empty record: interrupted before it touched anything
            message = Change.of_kind(entry["kind"]).undo(record, ctx) if record else ""
        except (WizardError, OSError) as exc:
            failures += 1
            emit(StepEvent(step, "failed", f"could not undo: {summary}", str(exc), kind="change"))
            continue
        if ctx.restarts:
            _owe(journal, ctx.restarts, emit)  # a kill before the restarts below leaves them to the next undo
        _finish(journal, entry, final_state, emit)
        if message:
            emit(StepEvent(step, "ok", message, kind="change"))
    for service in journal.restart_order(list(dict.fromkeys(owed_before + ctx.restarts))):
        try:
            warning = systemctl(node, "restart", service)
        except WizardError as exc:
            # the files are back; a service that will not start with its old configuration is the
            # operator's to look at, not a reason to call the undo failed
            emit(StepEvent("undo", "warn", f"restored {service}'s configuration but it did not restart", str(exc), kind="change"))
            _pay(journal, service, emit)  # restarted as far as systemd goes: the failure is the service's
            continue
        if warning:
            emit(StepEvent("undo", "warn", f"did not restart {service}", f"systemd is not running here; run `systemctl restart {service}` once it is", kind="change"))
        else:
            emit(StepEvent("undo", "ok", f"restarted {service} with its restored configuration", kind="change"))
        _pay(journal, service, emit)
    return failures


def _steps() -> tuple[str, ...]:
    from wizard.steps import ORDER

    return ORDER


def _finish(journal: Journal, entry: dict[str, Any], state: str, emit: Callable[[StepEvent], None]) -> None:
    """Record a reversal; the node is already back, so a journal that cannot be written is a warning."""
    try:
        journal.finish(entry, state)
    except (WizardError, OSError) as exc:
        emit(StepEvent("undo", "warn", f"reversed {entry.get('summary', 'a change')} but could not record it",
                       f"{exc}; the next undo finds the node already restored", kind="change"))


def _owe(journal: Journal, services: list[str], emit: Callable[[StepEvent], None]) -> None:
    try:
        journal.owe(services)
    except (WizardError, OSError) as exc:
        emit(StepEvent("undo", "warn", "could not record the restarts still to make", str(exc), kind="change"))


def _pay(journal: Journal, service: str, emit: Callable[[StepEvent], None]) -> None:
    try:
        journal.pay(service)
    except (WizardError, OSError) as exc:
        emit(StepEvent("undo", "warn", f"restarted {service} but could not record it", str(exc), kind="change"))


def undo_all(node: NodeLike, journal: Journal, emit: Callable[[StepEvent], None]) -> int:
    """Reverse every live journal entry, newest first (`flannel-wizard undo`, the TUI's Roll back), and
    make the restarts an earlier run or undo left owed. One run at a time: it takes the node's lock.

    Returns how many could not be reversed.
    """
    from wizard.answers import Etcd, read_secret
    from wizard.lock import RunLock

    with RunLock(journal):
        entries = journal.live()
        owed = journal.owed()
        if not entries and not owed:
            emit(StepEvent("undo", "ok", "nothing to undo: every recorded change is already reversed"))
            return 0
        stores: dict[str, Store] = {}

        def store_for(record: dict[str, Any]) -> Store:
            settings = Etcd.model_validate(record["etcd"])
            key = repr(sorted(settings.model_dump().items()))
            if key not in stores:
                stores[key] = node.etcd(settings, read_secret(settings.password_env, settings.password_file))
            return stores[key]

        if entries:
            emit(StepEvent("undo", "running", f"reversing {len(entries)} recorded change(s), newest first"))
        if owed:
            emit(StepEvent("undo", "running", f"restarting what an interrupted run left owed: {', '.join(owed)}"))
        try:
            # with final state "undone", undo_entries also makes the restarts owed from before, in order
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
