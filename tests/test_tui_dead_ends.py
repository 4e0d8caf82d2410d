"""No dead ends, no stale status, no check that comes too late (issue 10): every problem the wizard
shows says how to get past it, every mark and count is recomputed from the answers and results as they
are now, and what can be checked against this node is checked before anything changes."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.tui import confirm_apply, demo_app, goto, shown, until


def run(coro: Any) -> None:
    asyncio.run(coro)


async def next_page(pilot: Any, app: Any) -> str:
    await pilot.press("ctrl+n")
    await pilot.pause()
    return str(app.screen_name)


def sidebar(app: Any) -> str:
    return "\n".join(str(o.prompt) for o in app.screen.query_one("#sidebar").options)


def test_an_unknown_key_from_the_file_can_be_dropped_and_is_not_saved(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("version: 1\netcd:\n  endponts: ['http://127.0.0.1:2379']\n")

    async def main() -> None:
        app = demo_app(answers=str(answers))
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await until(pilot, lambda: app.screen.ready)
                assert "✗ etcd" in sidebar(app)  # marked where the file's problem is, from the start
                await goto(pilot, app, "etcd")
                problems = shown(app, "#section-problems")
                assert "unknown key 'etcd.endponts'" in problems and "ctrl+d drops it from the answers" in problems
                assert await next_page(pilot, app) == "etcd"
                assert "ctrl+d drops the unknown key(s)" in shown(app, "#nav-status")
                await pilot.press("ctrl+d")
                await pilot.pause()
                assert "endponts" not in shown(app, "#section-problems")
                assert shown(app, "#nav-status") == ""  # the old verdict is gone with its cause
                assert "✗ etcd" not in sidebar(app)
                saved = app.save_answers(str(tmp_path / "saved.yaml"))
                assert saved is not None and "endponts" not in Path(saved).read_text()
                assert await next_page(pilot, app) == "network"
        finally:
            shutil.rmtree(app.session.root, ignore_errors=True)

    run(main())


def test_a_fixed_page_loses_its_mark_and_its_message() -> None:
    async def main() -> None:
        app = demo_app()
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await goto(pilot, app, "network")
                field = app.screen.query_one("#f-network-cidr")
                field.value = "10.0.0.1/16"
                await pilot.pause()
                assert await next_page(pilot, app) == "network"
                assert "✗ Network" in sidebar(app) and "problem(s) on this page" in shown(app, "#nav-status")
                field.value = "10.0.0.0/16"
                await pilot.pause()
                assert "✗ Network" not in sidebar(app)
                assert shown(app, "#nav-status") == ""
        finally:
            shutil.rmtree(app.session.root, ignore_errors=True)

    run(main())


def test_after_roll_back_the_way_on_is_visible_and_named(tmp_path: Path) -> None:
    async def main() -> None:
        app = demo_app("etcd-down")
        try:
            async with app.run_test(size=(100, 30)) as pilot:
                await goto(pilot, app, "review")
                assert await confirm_apply(pilot, app) == 1
                page = app.screen
                panel = page.query_one("#fail-panel")
                # the reason and the buttons are on screen at 100x30, not below the fold
                assert panel.display and panel.region.y + panel.region.height <= 30
                assert page.check_action("roll_back", ()) and page.check_action("retry", ())
                await pilot.press("ctrl+b")
                await until(pilot, lambda: page.rolled, what="the roll back")
                assert "Rolled back. Retry applies again" in shown(app, "#fail-message")
                assert not page.query_one("#rollback").display
                assert page.blocked() == ""  # Next goes on; nothing claims the apply must be retried
                assert not page.check_action("roll_back", ())  # not offered (nor in the footer) once done
                assert await next_page(pilot, app) == "mesh"  # the pages after Apply: it did not run
                assert "nothing has run yet" in shown(app, "#mesh-summary")
                # and a Retry that goes through leaves no stale "did not finish"
                app.session.node.store.down = False
                await goto(pilot, app, "apply")
                await pilot.press("ctrl+r")
                await until(pilot, lambda: page.exit_code == 0 and not page.running, 30, "the retried apply")
                assert shown(app, "#nav-status") == "" and page.blocked() == ""
        finally:
            shutil.rmtree(app.session.root, ignore_errors=True)

    run(main())


def test_an_interface_the_node_does_not_have_stops_the_plan_before_any_change() -> None:
    from wizard import scenarios
    from wizard.node.simulated import SimulatedNode
    from wizard.session import Session

    scenario = scenarios.load("fresh-node")
    node = SimulatedNode(scenario, speed=100)
    try:
        session = Session(node, scenario=scenario)
        session.set(("flanneld", "iface"), "eth9")
        plan = session.plan_all(session.answers())
        preflight = plan.step("preflight")
        assert preflight is not None and preflight.status == "warn"  # would stop a real apply, before etcd
        assert any(n.message == "[ERROR Interface-eth9]: flanneld.iface eth9 does not exist on this node"
                   for n in preflight.notes)
        flanneld = plan.step("flanneld")
        assert flanneld is not None and flanneld.status == "failed"
        result = session.runner(session.answers(), lambda e: None, dry_run=False).run()
        assert result.code == 3 and result.applied == 0
        assert node.store.get("/kube-centos/network/config") is None
    finally:
        shutil.rmtree(node.root, ignore_errors=True)


def test_validate_names_the_missing_interface_key_only_on_the_node(tmp_path: Path) -> None:
    """validate knows no node: an interface is a well-formed name there, and plan is where it is checked."""
    from wizard.answers import parse

    answers = parse(yaml.safe_dump({"version": 1, "flanneld": {"iface": "eth9"}}))
    assert answers.flanneld.iface == "eth9"


def test_ctrl_d_still_deletes_in_a_field_where_there_is_no_unknown_key() -> None:
    async def main() -> None:
        app = demo_app()
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await goto(pilot, app, "etcd")
                field = app.screen.query_one("#f-etcd-prefix")
                field.focus()
                await pilot.press("home")  # focusing selects the whole value; start from its first character
                await pilot.press("ctrl+d")
                await pilot.pause()
                assert field.value == "kube-centos/network"
        finally:
            shutil.rmtree(app.session.root, ignore_errors=True)

    run(main())
