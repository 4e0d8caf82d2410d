"""Each page shows what the engine plans for the same answers and node: its facts come from the step's
inspect and its preview from the step's plan, the same functions Review and apply use."""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any

from tests.tui import demo_app, goto, press, shown, until
from wizard import scenarios


def run(coro: Any) -> None:
    asyncio.run(coro)


def review(app: Any) -> dict[str, Any]:
    """The engine's plan for the answers on the pages: what Review and `plan` show."""
    result = app.session.plan_all(app.session.answers())
    return {s.name: s for s in result.steps}


def test_etcd_page_says_what_the_engine_says_of_a_config_that_spells_out_flannels_defaults() -> None:
    """A stored config with "VNI": 1 is the same config to flanneld: the page must not call it different."""
    profile = scenarios.load("fresh-node")
    stored = {"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan", "VNI": 1}}
    profile["etcd"]["keys"]["/kube-centos/network/config"] = json.dumps(stored)

    async def main() -> None:
        app = demo_app(profile)
        try:
            async with app.run_test(size=(100, 40)) as pilot:
                await goto(pilot, app, "etcd")
                await press(pilot, app, "test")
                await until(pilot, lambda: app.screen.facts is not None, what="the probe")
                probe = shown(app, "#probe")
                assert "/kube-centos/network/config already holds this config" in probe
                assert "will create" not in probe and "will replace" not in probe
                etcd = review(app)["etcd"]
                assert etcd.planned == [] and any(n.message.endswith("already holds this config") for n in etcd.notes)
                # on_existing is honoured the same way: a different stored config fails, as apply would
                app.session.node.store.put("/kube-centos/network/config", '{"Network": "10.1.0.0/16"}')
                await pilot.press("ctrl+t")
                await until(pilot, lambda: app.screen.facts is not None, what="the second probe")
                assert "already exists and differs from the answers" in shown(app, "#probe")
                assert review(app)["etcd"].status == "failed"
                app.screen.query_one("#f-etcd-on-existing").value = "replace"
                await pilot.pause()
                probe = shown(app, "#probe")
                assert "will replace /kube-centos/network/config in etcd" in probe
                assert '-  "Network": "10.1.0.0/16"' in probe
                assert [c.summary for c in review(app)["etcd"].planned] == ["replace /kube-centos/network/config in etcd"]
        finally:
            shutil.rmtree(app.session.root, ignore_errors=True)

    run(main())


def test_docker_page_shows_the_engines_planned_files_and_bridge() -> None:
    async def main() -> None:
        app = demo_app()
        try:
            async with app.run_test(size=(100, 40)) as pilot:
                await goto(pilot, app, "docker")
                await until(pilot, lambda: app.screen.facts is not None, what="docker0")
                docker = review(app)["docker"]
                bridge = next(c for c in docker.planned if c.kind == "link")
                assert bridge.pending_on == "flanneld's lease"
                assert bridge.summary == "set docker0 to the /24 flanneld leases in 172.30.0.0/16 mtu 1450"
                assert "the /24 flanneld leases in 172.30.0.0/16\nMTU 1450" in shown(app, "#bridge-then")
                # the file flanneld's ExecStartPost= writes (the demo's flannel package unit): auto follows it
                opts = next(c for c in docker.planned if c.summary.startswith("create /run/flannel/docker"))
                added = [line[1:] for line in opts.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
                preview = shown(app, "#opts-preview")
                assert added and all(line in preview for line in added)
        finally:
            shutil.rmtree(app.session.root, ignore_errors=True)

    run(main())


def test_cgroup_page_shows_the_engines_target_and_the_files_it_changes() -> None:
    async def main() -> None:
        app = demo_app("cgroup-mismatch")
        try:
            async with app.run_test(size=(100, 40)) as pilot:
                await goto(pilot, app, "cgroup")
                await until(pilot, lambda: app.screen.facts is not None, what="the drivers")
                cgroup = review(app)["cgroup"]
                writes = [c.summary for c in cgroup.planned if c.kind == "file"]
                text = shown(app, "#recommendation")
                assert writes and all(f"will {w}" in text for w in writes)
                mismatch = next(n for n in cgroup.notes if n.status == "warn")
                assert mismatch.message in shown(app, "#mismatch")
                app.screen.query_one("#f-cgroup-driver").value = "cgroupfs"
                await pilot.pause()
                writes = [c.summary for c in review(app)["cgroup"].planned if c.kind == "file"]
                text = shown(app, "#recommendation")
                assert "Both will use cgroupfs." in text and all(f"will {w}" in text for w in writes)
        finally:
            shutil.rmtree(app.session.root, ignore_errors=True)

    run(main())


def test_flanneld_page_shows_the_env_file_diff_the_engine_writes() -> None:
    async def main() -> None:
        app = demo_app()
        try:
            async with app.run_test(size=(100, 40)) as pilot:
                await goto(pilot, app, "flanneld")
                await until(pilot, lambda: app.screen.facts is not None, what="flanneld's files")
                flanneld = review(app)["flanneld"]
                env = next(c for c in flanneld.planned if c.kind == "file")
                preview = shown(app, "#env-preview")
                assert f"will {env.summary}" in preview
                assert all(line in preview for line in env.diff.splitlines() if line.startswith(("+", "-")))
        finally:
            shutil.rmtree(app.session.root, ignore_errors=True)

    run(main())
