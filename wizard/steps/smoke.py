"""smoke: the service smoke test. Not built yet; it says so instead of pretending."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wizard.steps import Plan

if TYPE_CHECKING:
    from wizard.steps import Check, Context

NAME = "smoke"
TITLE = "service smoke test"


def inspect(ctx: Context) -> None:
    return None


def plan(ctx: Context, facts: None) -> Plan:
    result = Plan()
    if not ctx.answers.smoke_test.enabled:
        result.note("skipped", "skipped: smoke_test.enabled is false")
    else:
        result.note("skipped", "skipped: not built yet — the service smoke test comes in a later release; "
                    "test by hand with seed-procedure §4 (kubectl run / expose / curl the cluster IP)")
    return result


def verify(ctx: Context) -> list[Check]:
    return []
