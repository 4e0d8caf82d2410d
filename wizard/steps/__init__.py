"""Steps: each module has NAME, inspect(ctx) -> facts, plan(ctx, facts) -> Plan, verify(ctx) -> [Check]."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from wizard.answers import Answers
    from wizard.changes import Change
    from wizard.events import StepEvent
    from wizard.node import Node
    from wizard.node.etcd import Store

ORDER = ("preflight", "network", "etcd", "flanneld", "docker", "cgroup", "smoke")


@dataclass
class Note:
    """Something a step found while inspecting or planning; `failed` stops the step before any change."""

    status: Literal["ok", "warn", "failed", "skipped"]
    message: str
    detail: str = ""


Check = Note  # what verify returns has the same shape


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def note(self, status: Literal["ok", "warn", "failed", "skipped"], message: str, detail: str = "") -> None:
        self.notes.append(Note(status, message, detail))

    @property
    def failed(self) -> bool:
        return any(n.status == "failed" for n in self.notes)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if not c.in_place()]


@dataclass
class Context:
    answers: Answers
    node: Node
    dry_run: bool = False
    emit: Callable[[StepEvent], None] = lambda e: None
    ignore_preflight: frozenset[str] = frozenset()
    shared: dict[str, Any] = field(default_factory=dict)
    _store: Store | None = None

    def store(self) -> Store:
        """The etcd connection, made once per run."""
        if self._store is None:
            self._store = self.node.etcd(self.answers.etcd, self.answers.etcd_password())
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def restart_skipped(self) -> set[str]:
        return self.shared.setdefault("restart_skipped", set())


def load(name: str) -> ModuleType:
    return importlib.import_module(f"wizard.steps.{name}")
