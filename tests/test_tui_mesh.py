"""The mesh across nodes in the TUI, on the demo: Check this node on Welcome (the engine's check in a
worker, problems first), the Mesh page (one row per peer from the checks' subject and hop), and the
mesh-broken scenario played hands-free to its failure."""

from __future__ import annotations

from dataclasses import dataclass

from tests.tui import FAST, confirm_apply, demo_app, goto, next_page, run, shown, type_into, until
from wizard.steps import ORDER


@dataclass(frozen=True)
class Check:
    """A check with the fields the engine's NoteInfo and StepEvent carry (for feeding the page by hand)."""

    status: str
    message: str
    detail: str = ""
    subject: str = ""
    hop: str = ""


def texts(app: object, selector: str) -> list[str]:
    """What the Statics in a container show, one entry per widget."""
    from rich.text import Text

    box = app.screen.query_one(selector)  # type: ignore[attr-defined]
    return [w.content.plain if isinstance(w.content, Text) else str(w.content) for w in box.children]


def findings(app: object) -> list[str]:
    """Check this node's results as shown, one entry per widget: where, what, what to do."""
    return texts(app, "#check-findings")


def table_rows(app: object) -> list[list[str]]:
    table = app.screen.query_one("#mesh-table")  # type: ignore[attr-defined]
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


async def check_node(pilot: object, app: object) -> None:
    """Welcome's Check this node, by its key, until the result is on screen."""
    from screens.check import CheckScreen

    await goto(pilot, app, "preflight")  # type: ignore[arg-type]
    await until(pilot, lambda: app.screen.findings is not None, what="preflight")  # type: ignore[attr-defined]
    await pilot.press("c")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, CheckScreen) and app.screen.result is not None,  # type: ignore[attr-defined]
                timeout=30, what="the check")


def test_the_mesh_page_draws_rows_from_subject_and_hop_never_from_the_words() -> None:
    """Messages that say one thing and typed fields that say another: the page follows the fields."""
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "mesh")
            assert "nothing has run yet" in shown(app, "#mesh-summary")
            assert not app.screen.query_one("#mesh-table").display
            app.mesh_checks = [
                Check("ok", "the forward policy is DROP (port 8472 failed)", hop="forward policy"),
                Check("ok", "UDP 8472 blocked, path MTU broken", subject="10.0.0.1"),
                Check("failed", "everything is fine", "open it", subject="10.0.0.2", hop="bridge"),
                Check("warn", "lease", subject="10.0.0.3", hop="path MTU"),
                Check("failed", "second failure of 10.0.0.2", subject="10.0.0.2", hop="path MTU"),
            ]
            app.mesh_origin = "check"
            app.mesh_event()
            await pilot.pause()
            assert table_rows(app) == [["ok", "10.0.0.1", "—"], ["failed", "10.0.0.2", "bridge"],
                                       ["warning", "10.0.0.3", "path MTU"]]
            assert shown(app, "#mesh-summary") == "✗ 1 of 3 nodes not reached via the overlay · last check"
            # the page opens on the first failed node, with its checks in full
            assert texts(app, "#mesh-detail") == ["✗ bridge: everything is fine", "open it",
                                                  "✗ path MTU: second failure of 10.0.0.2"]
            assert "forward policy: the forward policy is DROP" in shown(app, "#mesh-node")
            table = app.screen.query_one("#mesh-table")
            table.focus()
            await pilot.press("down")
            await pilot.pause()
            assert texts(app, "#mesh-detail") == ["⚠ path MTU: lease"]
            # a redraw keeps the row the operator chose
            app.mesh_event()
            await pilot.pause()
            assert texts(app, "#mesh-detail") == ["⚠ path MTU: lease"]

    run(main())


def test_check_this_node_on_fresh_node_is_healthy_once_applied_and_back_to_the_wizard() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            await type_into(pilot, app, "f-etcd-endpoints", "http://127.0.0.1:2379")
            await goto(pilot, app, "review")
            assert await confirm_apply(pilot, app) == 0
            await check_node(pilot, app)
            status = shown(app, "#check-status")
            assert status.startswith("✓ healthy:"), status
            steps = shown(app, "#check-steps")
            for name in ORDER:
                assert name in steps
            found = findings(app)
            # both peers, by their PublicIP, through the overlay
            assert "✓ mesh · 192.168.56.10" in found and "✓ mesh · 192.168.56.12" in found
            assert not [line for line in found if line.startswith(("✗", "⚠"))]
            # and the smoke test, which check leaves alone, says so
            assert found[found.index("– smoke") + 1] == "skipped: it deploys test objects, and check changes nothing"
            # the Mesh page shows this check now
            assert app.mesh_origin == "check" and app.statuses["mesh"] == "ok"
            await pilot.press("escape")
            await until(pilot, lambda: app.screen_name == "preflight", what="back on Welcome")
            assert app.session.get(("etcd", "endpoints")) == ["http://127.0.0.1:2379"]  # what was typed stays
            await goto(pilot, app, "mesh")
            assert table_rows(app) == [["ok", "192.168.56.10", "—"], ["ok", "192.168.56.12", "—"]]
            assert shown(app, "#mesh-summary") == "✓ 2 nodes reached via the overlay · last check"

    run(main())


def test_mesh_broken_apply_stops_at_the_mesh_step_and_the_page_and_the_check_name_the_port() -> None:
    async def main() -> None:
        app = demo_app("mesh-broken")
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "review")
            assert await confirm_apply(pilot, app) == 1
            result = app.get_screen("apply").result
            assert result.failed_step.name == "mesh"
            assert result.step("smoke") is None  # the run stops at the failed verify, as at any step
            assert app.statuses["mesh"] == "failed"
            assert await next_page(pilot, app) == "apply"  # blocked: Retry, Roll back or Quit first
            await goto(pilot, app, "mesh")
            assert table_rows(app) == [["ok", "192.168.56.10", "—"], ["ok", "192.168.56.12", "—"],
                                       ["failed", "192.168.56.13", "port"]]
            assert shown(app, "#mesh-summary") == "✗ 1 of 3 nodes not reached via the overlay · last Apply"
            what, fix = texts(app, "#mesh-detail")
            assert what.startswith("✗ port: 192.168.56.13 (172.30.40.0/24): ") and "(UDP 8472) are dropped" in what
            assert fix.startswith("open UDP 8472 between the nodes")

            await check_node(pilot, app)
            found = findings(app)
            # problems first: the step's own count, then the peer with the hop where it breaks
            assert found[:2] == ["✗ mesh", "2 of 3 other node(s) reached over the overlay"]
            at = found.index("✗ mesh · 192.168.56.13 · port")
            assert at < found.index("✓ preflight")
            assert "vxlan packets (UDP 8472) are dropped" in found[at + 1]
            assert found[at + 2].startswith("open UDP 8472 between the nodes")
            assert shown(app, "#check-status").startswith("✗ 2 problem(s)")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen_name == "preflight", what="back on Welcome")

    run(main())


def test_mesh_broken_autoplays_to_the_failed_mesh_step() -> None:
    """`flannel-wizard demo --scenario mesh-broken --autoplay`: hands-free to the end, which is the
    mesh step's failure, left on screen for the presenter."""
    async def main() -> None:
        app = demo_app("mesh-broken", autoplay=True, speed=FAST)
        async with app.run_test(size=(80, 24)) as pilot:
            page = app.get_screen("apply")
            await until(pilot, lambda: page.exit_code is not None and not page.running and not app.autoplay,
                        timeout=60, what="autoplay to end")
            assert page.exit_code == 1 and page.result.failed_step.name == "mesh"
            assert app.screen_name == "apply" and app.screen.query_one("#fail-panel").display
            assert shown(app, "#line-mesh").startswith("✗ mesh")
            assert app.statuses["mesh"] == "failed" and app.statuses["apply"] == "failed"

    run(main())


def test_check_this_node_with_answers_that_do_not_validate_says_so_and_changes_nothing() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            await type_into(pilot, app, "f-etcd-endpoints", "ftp://10.0.0.1:2379")
            before = sorted(app.session.node.store.list(""))
            await check_node(pilot, app)
            status = shown(app, "#check-status")
            assert status.startswith("✗ the check could not run: ") and "etcd.endpoints" in status, status
            assert findings(app) == []
            assert sorted(app.session.node.store.list("")) == before
            # a jump to a page (the palette's) leaves the check as Esc does: no Welcome left under the page
            app.go("etcd")
            await until(pilot, lambda: app.screen_name == "etcd", what="the etcd page")
            assert [getattr(s, "NAME", "") for s in app.screen_stack] == ["", "etcd"]

    run(main())
