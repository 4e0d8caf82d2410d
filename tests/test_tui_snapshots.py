"""How each page looks at 80×24 on the demo's simulated node; baselines are committed under
tests/__snapshots__ (update them with `pytest --snapshot-update` after a deliberate change)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.tui import FAST, confirm_apply, demo_app, goto, until

ROOT = "/tmp/flannel-wizard-snapshots"  # fixed, because the Finish page shows it
SIZE = (80, 24)


@pytest.fixture(autouse=True)
def clean_root() -> Iterator[None]:
    shutil.rmtree(ROOT, ignore_errors=True)
    yield
    shutil.rmtree(ROOT, ignore_errors=True)


def app_for(scenario: str = "fresh-node") -> Any:
    app = demo_app(scenario, speed=FAST, root=ROOT)
    # the demo saves to the temp dir, which in a test run is the run's own scratch dir (a new name each
    # run): the path a machine without TMPDIR shows keeps the picture the same
    app.save_path = "/tmp/flannel-wizard-demo-answers.yaml"
    return app


def steady_apply(pilot: Any) -> None:
    """Elapsed times vary run to run; the look of the page is what is compared."""
    page = pilot.app.get_screen("apply")
    for step, state in page.state.items():
        state["elapsed"] = 0.0
        page.draw_line(step)


async def at(pilot: Any, name: str, ready: Any = None) -> None:
    await goto(pilot, pilot.app, name)
    if ready is not None:
        await until(pilot, lambda: ready(pilot.app.screen), what=name)
    await pilot.pause()


def test_preflight(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await until(pilot, lambda: pilot.app.screen.findings is not None)

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_etcd_with_an_invalid_endpoint(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "etcd")
        pilot.app.screen.query_one("#f-etcd-endpoints").value = "ftp://10.0.0.1:2379"
        await pilot.pause()

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_etcd_probe_of_an_existing_config(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "etcd")
        pilot.app.screen.action_test()
        await until(pilot, lambda: not pilot.app.screen.probing)
        pilot.app.screen.query_one("#probe").scroll_visible(animate=False)
        await pilot.pause()

    assert snap_compare(app_for("existing-config"), terminal_size=SIZE, run_before=before)


def test_network(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "network", lambda p: p.facts is not None)

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_flanneld(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "flanneld")

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_docker(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "docker", lambda p: p.facts is not None)

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_cgroup_mismatch(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "cgroup", lambda p: p.facts is not None)

    assert snap_compare(app_for("cgroup-mismatch"), terminal_size=SIZE, run_before=before)


def test_review(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "review", lambda p: p.result is not None)

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_apply_done(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "review")
        assert await confirm_apply(pilot, pilot.app) == 0
        steady_apply(pilot)
        await pilot.pause()

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_apply_failed_with_choices(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "review")
        assert await confirm_apply(pilot, pilot.app) == 1
        steady_apply(pilot)
        await pilot.pause()

    assert snap_compare(app_for("etcd-down"), terminal_size=SIZE, run_before=before)


def test_smoke_after_apply(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "review")
        assert await confirm_apply(pilot, pilot.app) == 0
        # sub-step times vary run to run (the endpoints poll); the look of the page is what is compared
        pilot.app.events[:] = [dataclasses.replace(e, elapsed=0.0) for e in pilot.app.events]
        await at(pilot, "smoke")

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_finish(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await at(pilot, "review")
        assert await confirm_apply(pilot, pilot.app) == 0
        await at(pilot, "finish")

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=before)


def test_mesh_broken_mesh_page(snap_compare: Any) -> None:
    """Apply stopped at the mesh step: one row per other node, the failing one selected with its hop (the
    vxlan port) and what to do."""
    async def before(pilot: Any) -> None:
        await at(pilot, "review")
        assert await confirm_apply(pilot, pilot.app) == 1
        await at(pilot, "mesh")

    assert snap_compare(app_for("mesh-broken"), terminal_size=SIZE, run_before=before)


def test_mesh_broken_check_this_node(snap_compare: Any) -> None:
    """Welcome's Check this node after that apply: the problems first, each with where, what and the fix."""
    from screens.check import CheckScreen

    async def before(pilot: Any) -> None:
        await at(pilot, "review")
        assert await confirm_apply(pilot, pilot.app) == 1
        await at(pilot, "preflight", lambda p: p.findings is not None)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(pilot.app.screen, CheckScreen) and pilot.app.screen.result is not None,
                    timeout=30, what="the check")
        await pilot.pause()

    assert snap_compare(app_for("mesh-broken"), terminal_size=SIZE, run_before=before)
