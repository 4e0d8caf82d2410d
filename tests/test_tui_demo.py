"""The demo walkthrough, scenario by scenario: Next through every page on the simulated node, and what
each page shows; autoplay runs hands-free and gives way to the first key."""

from __future__ import annotations

import json

import pytest

from tests.tui import FAST, confirm_apply, demo_app, goto, next_page, run, screen_text, shown, until
from wizard import scenarios

READY = {
    "preflight": lambda p: p.findings is not None,
    "network": lambda p: p.facts is not None,
    "docker": lambda p: p.facts is not None,
    "cgroup": lambda p: p.facts is not None,
}
# what each scenario must show, page by page, before Apply
SHOWS = {
    "fresh-node": {
        "preflight": ["DEMO — simulated node · scenario fresh-node", "13 of 13 checks passed"],
        "network": ["172.30.0.0/16: 255 node subnets /24", "FLANNEL_MTU will be 1450"],
        "docker": ["172.17.0.1/16\nMTU 1500", "the /24 flanneld leases in 172.30.0.0/16\nMTU 1450"],
        "cgroup": ["kubelet and docker agree: cgroupfs", "Both will use systemd. Changes: docker, kubelet"],
        "review": ["11 change(s) planned"],
    },
    "cgroup-mismatch": {
        "cgroup": ['misconfiguration: kubelet cgroup driver: "cgroupfs" is different from docker cgroup driver: "systemd"',
                   "Both will use systemd. Changes: kubelet"],
        "review": ["10 change(s) planned"],
    },
    "existing-config": {
        "review": ["✗ etcd: /kube-centos/network/config already exists and differs from the answers — apply would stop there",
                   '-  "Network": "10.1.0.0/16",'],
    },
    "etcd-down": {
        "review": ["cannot reach etcd: etcd at http://127.0.0.1:2379 refused the connection"],
    },
    "smoke-fails": {
        "review": ["11 change(s) planned"],
    },
    "old-flanneld": {
        "review": ["11 change(s) planned", "(v2 keys API)", "only in the v3 API store"],
    },
    "mesh-broken": {
        "review": ["11 change(s) planned"],
    },
}
# how Apply ends, and what the Smoke test page then says
OUTCOME = {
    "fresh-node": (0, "done: 11 change(s)"),
    "cgroup-mismatch": (0, "done: 10 change(s)"),
    # a plan that cannot succeed cannot be confirmed: Review says where it would stop
    "existing-config": (None, "apply would stop at etcd: /kube-centos/network/config already exists"),
    "etcd-down": (1, "✗ etcd: etcd at http://127.0.0.1:2379 refused the connection (connection refused)"),
    "smoke-fails": (1, "✗ smoke: 7/8 traffic: no answer through the service (12 tries)"),
    "old-flanneld": (0, "done: 11 change(s)"),
    # every change made, then the overlay fails to one of the three other nodes: the run stops there
    "mesh-broken": (1, "✗ mesh: 2 of 3 other node(s) reached over the overlay"),
}


def test_every_scenario_has_an_expectation() -> None:
    assert sorted(SHOWS) == scenarios.names() == sorted(OUTCOME)


@pytest.mark.parametrize("name", sorted(SHOWS))
def test_walkthrough(name: str) -> None:
    async def main() -> None:
        app = demo_app(name)
        async with app.run_test(size=(80, 24)) as pilot:
            pages = []
            while app.screen_name != "review":
                page = app.screen
                await until(pilot, lambda p=page: READY.get(p.NAME, lambda _: True)(p), what=page.NAME)
                await pilot.pause()
                text = screen_text(app)
                assert "DEMO — simulated node" in text  # the marker, on every page
                for expected in SHOWS[name].get(page.NAME, []):
                    assert expected in text, f"{page.NAME}: {expected!r} not in\n{text}"
                pages.append(page.NAME)
                assert await next_page(pilot, app) != page.NAME, app.screen.blocked()
            assert pages == ["preflight", "etcd", "network", "flanneld", "docker", "cgroup"]
            await until(pilot, lambda: app.screen.result is not None, what="the plan")
            text = screen_text(app)
            for expected in SHOWS[name]["review"]:
                assert expected in text, f"review: {expected!r} not in\n{text}"
            code, said = OUTCOME[name]
            if code is None:
                assert await next_page(pilot, app) == "review"
                assert said in shown(app, "#nav-status")
                assert not app.screen.query("#confirm-yes")
                return
            assert await confirm_apply(pilot, app) == code
            text = screen_text(app)
            assert said in text, text
            assert "DEMO — simulated node" in text
            if code:
                assert app.screen.query_one("#fail-panel").display
                if name == "smoke-fails":  # the Smoke page tells the story: traffic died after a good path
                    await goto(pilot, app, "smoke")
                    steps = shown(app, "#smoke-steps")
                    assert "✓ 6/8 kube-proxy rules: kube-proxy routes default/example-service to 2 endpoint(s)" in steps
                    assert "✗ 7/8 traffic: no answer through the service (12 tries)" in steps
                    assert "✓ 8/8 cleanup" in steps
                    assert app.screen.query_one("#smoke-tree").display
                if name == "mesh-broken":  # the Mesh page: the one node not reached, and where
                    await goto(pilot, app, "mesh")
                    assert shown(app, "#mesh-summary") == "✗ 1 of 3 nodes not reached via the overlay · last Apply"
                    table = app.screen.query_one("#mesh-table")
                    assert [str(c) for c in table.get_row_at(2)] == ["failed", "192.168.56.13", "port"]
                return
            assert await next_page(pilot, app) == "mesh"
            assert shown(app, "#mesh-summary") == "✓ 2 nodes reached via the overlay · last Apply"
            assert await next_page(pilot, app) == "smoke"
            assert "✓ smoke test passed: the service answered through kube-proxy" in shown(app, "#smoke-results")
            steps = shown(app, "#smoke-steps")
            assert "✓ 4/8 endpoints ready: 2/2 ready: 172.30.1.2:80, 172.30.14.2:80" in steps
            assert "✓ 7/8 traffic: 12 of 12 requests answered by 2 endpoint(s)" in steps
            tree = app.screen.query_one("#smoke-tree")
            assert tree.display and str(tree.root.label) == "default/example-service"
            labels = [str(n.label) for n in tree.root.children]
            assert labels[0].startswith("cluster IP 10.254.124.145:8080/tcp") and labels[1].startswith("node port 30554/tcp")
            assert await next_page(pilot, app) == "finish"
            root = app.session.node.root
            assert f"Demo files (inspect them): {root}" in shown(app, "#finish-summary")
        # the files went to the temporary root, where they can be inspected
        daemon = json.loads((app.session.node.files.path("/etc/docker/daemon.json")).read_text())
        assert daemon["bip"] == "172.30.1.1/24" and daemon["exec-opts"] == ["native.cgroupdriver=systemd"]

    run(main())


def test_existing_config_replaced_after_choosing_replace_on_the_etcd_page() -> None:
    async def main() -> None:
        app = demo_app("existing-config")
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            app.screen.query_one("#f-etcd-on-existing").value = "replace"
            await pilot.pause()
            await goto(pilot, app, "review")
            assert await confirm_apply(pilot, app) == 0
        value = json.loads(app.session.node.store.get("/kube-centos/network/config")[0])
        assert value == {"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}

    run(main())


def test_autoplay_walks_through_hands_free() -> None:
    async def main() -> None:
        app = demo_app(autoplay=True, speed=FAST)
        async with app.run_test(size=(80, 24)) as pilot:
            # ready too: a test that ends the app while Finish is still mounting sees its on_mount fail
            await until(pilot, lambda: app.screen_name == "finish" and app.screen.ready, timeout=60,
                        what="autoplay to reach Finish")
            assert app.get_screen("apply").exit_code == 0
            assert app.statuses["etcd"] == "ok" and app.statuses["apply"] == "ok"

    run(main())


def test_any_key_takes_over_from_autoplay() -> None:
    async def main() -> None:
        app = demo_app(autoplay=True, speed=1.0)  # a presenter's pace: 1.2 s per page
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.screen_name == "preflight" and app.screen.findings is not None)
            await pilot.press("down")
            assert app.autoplay is False
            await pilot.pause(1.5)  # longer than autoplay's pause: it would have moved on by now
            assert app.screen_name == "preflight"

    run(main())
