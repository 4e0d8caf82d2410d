"""Each page of the wizard driven with Pilot on the demo's simulated node: valid and invalid input,
errors where they belong, Back/Next keeping what was typed."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.tui import (
    confirm_apply,
    demo_app,
    goto,
    next_page,
    press,
    run,
    screen_text,
    shown,
    type_into,
    until,
)
from wizard import answers as answers_mod
from wizard import scenarios
from wizard.node import simsystemd


def test_preflight_error_blocks_next_until_ignored_by_name() -> None:
    profile = scenarios.load("fresh-node")
    profile["kernel"]["modules"] = ["br_netfilter"]  # no vxlan module on this node

    async def main() -> None:
        app = demo_app(profile)
        async with app.run_test(size=(80, 24)) as pilot:
            page = app.screen
            await until(pilot, lambda: page.findings is not None, what="preflight")
            assert "12 of 13 checks passed; 1 error(s) block Next" in shown(app, "#preflight-status")
            assert await next_page(pilot, app) == "preflight"
            assert "KernelModule-vxlan" in shown(app, "#nav-status")
            table = app.screen.query_one("#preflight-table")
            table.focus()
            table.move_cursor(row=[f.name for f in page.findings].index("KernelModule-vxlan"))
            await pilot.pause()
            assert shown(app, "#finding-detail") == "KernelModule-vxlan: kernel module vxlan is not loaded — modprobe vxlan"
            await pilot.press("i")
            assert app.session.ignore_preflight == {"KernelModule-vxlan"}
            assert "error (ignored)" in str(table.get_row("KernelModule-vxlan")[0])
            assert await next_page(pilot, app) == "etcd"
            # the ignored name reaches the engine exactly as --ignore-preflight-errors would
            ctx = app.session.context(app.session.answers(), lambda e: None, dry_run=True)
            assert ctx.ignore_preflight == frozenset({"kernelmodule-vxlan"})

    run(main())


def test_etcd_page_invalid_endpoint_is_shown_at_the_field_and_blocks_next() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            await type_into(pilot, app, "f-etcd-endpoints", "ftp://10.0.0.1:2379")
            error = shown(app, "#err-f-etcd-endpoints")
            assert "ftp://10.0.0.1:2379" in error and "http://" in error
            assert await next_page(pilot, app) == "etcd"
            assert "1 problem(s) on this page" in shown(app, "#nav-status")
            await type_into(pilot, app, "f-etcd-endpoints", "http://127.0.0.1:2379")
            assert shown(app, "#err-f-etcd-endpoints") == ""
            assert await next_page(pilot, app) == "network"

    run(main())


def test_etcd_password_is_masked_kept_in_memory_and_saved_by_reference(tmp_path: Path) -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            await type_into(pilot, app, "f-etcd-username", "flannel")
            await type_into(pilot, app, "f-etcd-password", "pw-typed-42")
            assert app.screen.query_one("#f-etcd-password").password is True
            assert app.session.answers().etcd_password() == "pw-typed-42"
            target = tmp_path / "saved.yaml"
            assert app.save_answers(str(target)) == str(target)
        text = target.read_text()
        assert "pw-typed-42" not in text
        saved = yaml.safe_load(text)["etcd"]
        assert saved["username"] == "flannel" and saved["password_env"] == "FLANNEL_ETCD_PASSWORD"
        assert "export FLANNEL_ETCD_PASSWORD" in text

    run(main())


def test_etcd_test_connection_shows_version_diff_and_leases() -> None:
    async def main() -> None:
        app = demo_app("existing-config")
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            await press(pilot, app, "test")
            await until(pilot, lambda: not app.screen.probing, what="the probe")
            probe = shown(app, "#probe")
            assert "✓ etcd 3.4.23 at http://127.0.0.1:2379" in probe
            assert '"Network": "10.1.0.0/16"' in probe
            assert '-  "Network": "10.1.0.0/16",' in probe and '+  "Network": "172.30.0.0/16",' in probe
            # the page counts the leases; ctrl+l lists them (tests/test_etcd_leases.py: thousands of them)
            assert "1 lease(s) taken" in probe and "ctrl+l lists them (1)" in probe
            assert "172.30.14.0/24 → 192.168.56.10" not in probe
            await pilot.press("ctrl+l")
            await until(pilot, lambda: app.screen.query("#items-lines"), what="the lease list")
            assert app.screen.query_one("#items-lines").lines == ["172.30.14.0/24 → 192.168.56.10"]

    run(main())


def test_etcd_test_connection_when_etcd_is_down() -> None:
    async def main() -> None:
        app = demo_app("etcd-down")
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            await pilot.press("ctrl+t")
            await until(pilot, lambda: not app.screen.probing, what="the probe")
            probe = shown(app, "#probe")
            assert "etcd at http://127.0.0.1:2379 refused the connection (connection refused)" in probe
            assert "check that etcd runs and listens there" in probe

    run(main())


def test_network_page_checks_as_you_type_in_flannels_words() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "network")
            await until(pilot, lambda: app.screen.facts is not None, what="node facts")
            checks = shown(app, "#checks")
            assert "172.30.0.0/16: 255 node subnets /24" in checks and "FLANNEL_MTU will be 1450" in checks
            await type_into(pilot, app, "f-network-subnet-len", "31")
            assert "SubnetLen must be less than /31 (flannel's rule)" in shown(app, "#err-f-network-subnet-len")
            await type_into(pilot, app, "f-network-subnet-len", "16")
            assert "network must be able to accommodate at least four subnets" in shown(app, "#err-f-network-subnet-len")
            await type_into(pilot, app, "f-network-subnet-len", "24")
            # a range that takes in this node's own network: the check names the device
            await type_into(pilot, app, "f-network-cidr", "192.168.0.0/16")
            assert "flannel network 192.168.0.0/16 overlaps 192.168.56.11/24 on eth0" in shown(app, "#checks")
            assert await next_page(pilot, app) == "network"
            assert "overlaps 192.168.56.11/24 on eth0" in shown(app, "#nav-status")
            await type_into(pilot, app, "f-network-cidr", "10.254.0.0/16")
            assert "overlaps the flannel network" in shown(app, "#err-f-network-service-cidr")
            await type_into(pilot, app, "f-network-cidr", "172.30.0.0/16")
            assert await next_page(pilot, app) == "flanneld"

    run(main())


def test_network_backend_shows_only_its_options_and_keeps_each_backends_values() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "network")
            await type_into(pilot, app, "f-vxlan-network-backend-vni", "4")
            select = app.screen.query_one("#f-network-backend-type")
            select.value = "udp"
            await pilot.pause()
            assert app.screen.query_one("#opts-udp").display and not app.screen.query_one("#opts-vxlan").display
            assert app.session.get(("network", "backend")) == {"type": "udp"}
            assert "FLANNEL_MTU will be 1472" in shown(app, "#checks")
            await type_into(pilot, app, "f-udp-network-backend-port", "8999")
            select.value = "vxlan"
            await pilot.pause()
            assert app.session.get(("network", "backend")) == {"type": "vxlan", "vni": 4}
            select.value = "udp"
            await pilot.pause()
            assert app.session.get(("network", "backend")) == {"type": "udp", "port": 8999}
            assert app.session.answers().network.flannel_config()["Backend"] == {"Type": "udp", "Port": 8999}

    run(main())


def test_back_and_next_keep_what_was_typed() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            await type_into(pilot, app, "f-etcd-prefix", "/coreos.com/network")
            assert await next_page(pilot, app) == "network"
            await type_into(pilot, app, "f-network-cidr", "10.244.0.0/16")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen_name == "etcd")
            assert app.screen.query_one("#f-etcd-prefix").value == "/coreos.com/network"
            assert await next_page(pilot, app) == "network"
            assert app.screen.query_one("#f-network-cidr").value == "10.244.0.0/16"
            answers = app.session.answers()
            assert answers.etcd.prefix == "/coreos.com/network" and answers.network.cidr == "10.244.0.0/16"

    run(main())


def test_flanneld_page_previews_the_env_file_lines() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "flanneld")
            await type_into(pilot, app, "f-flanneld-iface", "eth9")
            # an interface this node does not have is found here, not at the smoke test after every change
            await until(pilot, lambda: "flanneld.iface eth9 does not exist on this node" in shown(app, "#env-preview"),
                        what="the missing interface")
            assert "choose one of: eth0, docker0" in shown(app, "#env-preview")
            assert await next_page(pilot, app) == "flanneld"
            await type_into(pilot, app, "f-flanneld-iface", "eth0")
            app.screen.query_one("#f-flanneld-ip-masq").value = True
            await until(pilot, lambda: 'FLANNEL_OPTIONS="-iface=eth0 -ip-masq"' in shown(app, "#env-preview"),
                        what="the env file")
            await type_into(pilot, app, "f-flanneld-wait-s", "soon")
            assert "flanneld.wait_s must be a number — got 'soon'" in shown(app, "#err-f-flanneld-wait-s")
            assert await next_page(pilot, app) == "flanneld"

    run(main())


def test_docker_page_shows_bridge_now_and_after_and_the_exact_opts_file() -> None:
    # flanneld's unit without the package's ExecStartPost=: no file of flanneld's to follow, so every
    # docker.opts answer is the operator's (test_page_agreement covers the demo's unit, which has one)
    profile = scenarios.load("fresh-node")
    profile["units"] = {"flanneld.service": "\n".join(line for line in simsystemd.FLANNELD_UNIT.splitlines()
                                                      if not line.startswith("ExecStartPost="))}

    async def main() -> None:
        app = demo_app(profile)
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "docker")
            await until(pilot, lambda: app.screen.facts is not None, what="docker0")
            assert "172.17.0.1/16\nMTU 1500" in shown(app, "#bridge-now")
            # flanneld has no lease yet: the engine's plan says what is known, and shows the file for the first lease
            assert "the /24 flanneld leases in 172.30.0.0/16\nMTU 1450" in shown(app, "#bridge-then")
            preview = shown(app, "#opts-preview")
            assert "(for a lease of 172.30.1.1/24; the lease decides)" in preview
            assert ('DOCKER_OPT_BIP="--bip=172.30.1.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\n'
                    'DOCKER_OPT_MTU="--mtu=1450"\nDOCKER_OPTS=" --bip=172.30.1.1/24 --ip-masq=true --mtu=1450"\n') in preview
            app.screen.query_one("#f-docker-opts-individual").value = False
            await pilot.pause()
            assert "DOCKER_OPT_BIP" not in shown(app, "#opts-preview")
            app.screen.query_one("#f-docker-opts-combined").value = False
            await pilot.pause()
            assert "individual and combined are both false" in shown(app, "#err-f-docker-opts-combined")
            app.screen.query_one("#f-docker-opts-combined").value = True
            await type_into(pilot, app, "f-docker-opts-combined-key", "DOCKER NETWORK")
            assert "is not a shell variable name" in shown(app, "#err-f-docker-opts-combined-key")
            await type_into(pilot, app, "f-docker-opts-combined-key", "DOCKER_NETWORK_OPTIONS")
            assert 'DOCKER_NETWORK_OPTIONS=" --bip=172.30.1.1/24' in shown(app, "#opts-preview")
            app.screen.query_one("#f-docker-use-daemon-json").value = False
            await pilot.pause()
            assert app.session.get(("docker", "daemon_json")) is None
            assert await next_page(pilot, app) == "cgroup"

    run(main())


def test_cgroup_page_mismatch_banner_in_kubelets_words_and_the_choice() -> None:
    async def main() -> None:
        app = demo_app("cgroup-mismatch")
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "cgroup")
            await until(pilot, lambda: app.screen.facts is not None, what="drivers")
            assert shown(app, "#mismatch") == (
                'misconfiguration: kubelet cgroup driver: "cgroupfs" is different from docker cgroup driver: "systemd"')
            assert "systemd  (docker info)" in shown(app, "#runtime-driver")
            assert "cgroupfs  (cgroupDriver in /var/lib/kubelet/config.yaml)" in shown(app, "#kubelet-driver")
            assert "Both will use systemd. Changes: kubelet" in shown(app, "#recommendation")
            app.screen.query_one("#f-cgroup-driver").value = "cgroupfs"
            await pilot.pause()
            text = shown(app, "#recommendation")
            assert "Both will use cgroupfs. Changes: docker" in text and "differs from the recommendation" in text
            assert app.session.answers().cgroup.driver == "cgroupfs"

    run(main())


def test_review_lists_changes_by_step_with_their_diffs() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "review")
            await until(pilot, lambda: app.screen.result is not None, what="the plan")
            # every change apply makes, those that wait for flanneld's lease included (docker's four)
            assert "11 change(s) planned" in shown(app, "#review-summary")
            assert "3 of them depend on flanneld's lease" in shown(app, "#review-summary")
            text = screen_text(app)
            assert '+  "Network": "172.30.0.0/16",' in text  # the etcd value it creates
            assert '+FLANNEL_OPTIONS=""' in text
            assert '+    "native.cgroupdriver=systemd"' in text
            etcd = app.screen.query_one("#review-etcd")
            assert etcd.title == "✓ etcd — 1 change(s)"
            # nothing was touched by planning
            assert app.session.node.store.get("/kube-centos/network/config") is None

    run(main())


def test_review_refuses_answers_with_problems() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            app.session.set(("network", "cidr"), "172.30.0.1/16")
            await goto(pilot, app, "review")
            assert "network.cidr: '172.30.0.1/16' has host bits set" in shown(app, "#review-summary")
            assert await next_page(pilot, app) == "review"

    run(main())


def test_apply_failure_offers_retry_rollback_quit_and_retry_succeeds() -> None:
    async def main() -> None:
        app = demo_app("etcd-down")
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "review")
            assert await confirm_apply(pilot, app) == 1
            message = shown(app, "#fail-message")
            assert "✗ etcd: etcd at http://127.0.0.1:2379 refused the connection" in message
            assert "what to do: check that etcd runs" in message
            assert app.screen.query_one("#fail-panel").display
            assert "✗ etcd" in shown(app, "#line-etcd")
            assert await next_page(pilot, app) == "apply"
            app.session.node.store.down = False  # the operator starts etcd
            await press(pilot, app, "retry")
            page = app.screen
            await until(pilot, lambda: page.exit_code == 0, what="the retried apply")
            assert "done: 11 change(s)" in shown(app, "#apply-summary")
            assert app.session.node.store.get("/kube-centos/network/config") is not None

    run(main())


def test_apply_roll_back_reverses_every_recorded_change() -> None:
    profile = scenarios.load("fresh-node")

    async def main() -> None:
        app = demo_app(profile)
        files = app.session.node.files
        before = {p: files.read(p) for p in ("/etc/sysconfig/flanneld", "/etc/docker/daemon.json")}
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "review")
            assert await confirm_apply(pilot, app) == 0
            page = app.screen
            assert files.read("/etc/sysconfig/flanneld") != before["/etc/sysconfig/flanneld"]
            page.query_one("#fail-panel").display = True  # the same buttons an operator gets on failure
            await pilot.pause()
            await press(pilot, app, "rollback")
            await until(pilot, lambda: not page.running, what="the rollback")
            assert "rolled back" in shown(app, "#apply-summary")
        assert {p: files.read(p) for p in before} == before
        assert app.session.node.store.get("/kube-centos/network/config") is None
        assert app.session.node.links.link("docker0").ipv4 == ("172.17.0.1/16",)

    run(main())


def test_smoke_page_shows_the_skip_honestly_and_finish_saves_a_replayable_file(tmp_path: Path) -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "smoke")
            assert "nothing has run yet" in shown(app, "#smoke-results")
            await goto(pilot, app, "review")
            assert await confirm_apply(pilot, app) == 0
            assert await next_page(pilot, app) == "mesh"
            assert await next_page(pilot, app) == "smoke"
            assert "smoke test passed" in shown(app, "#smoke-results")
            assert await next_page(pilot, app) == "finish"
            summary = shown(app, "#finish-summary")
            root = app.session.node.root
            assert "done: 11 change(s)" in summary and f"Demo files (inspect them): {root}" in summary
            assert "var/lib/flannel-wizard/journal.json in that directory" in summary
            assert "flannel-wizard undo" not in summary  # the demo's journal is not for this machine
            assert "Nothing on this machine needs undoing" in summary
            target = tmp_path / "answers.yaml"
            await type_into(pilot, app, "save-path", str(target))
            await press(pilot, app, "save")
            await until(pilot, lambda: target.exists(), what="the saved file")
            assert f"✓ saved {target}" in shown(app, "#save-result")
        saved = answers_mod.load(str(target))
        assert saved == app.session.answers()

    run(main())


def test_palette_commands_jump_save_and_toggle_dark() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Jump to Network" in titles and "Save answers" in titles and "Toggle dark mode" in titles
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"jump to docker")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await until(pilot, lambda: app.screen_name == "docker", what="the jump")
            dark = app.current_theme.dark
            app.action_toggle_dark()
            assert app.current_theme.dark != dark

    run(main())


BROKEN = """\
version: 1
etcd:
  endpoints: ["ftp://10.0.0.1:2379"]
  prefix: /coreos.com/network
network:
  cidr: 172.30.0.0/33
  backend: {type: vxlan, vni: 7}
docker:
  bridge: docker0
"""


def test_answers_file_with_problems_prefills_and_shows_each_on_its_page(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)

    async def main() -> None:
        app = demo_app(answers=str(path))
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.screen.ready)
            assert f"{path}: 2 problem(s), each shown on its page" in shown(app, "#file-problems")
            await goto(pilot, app, "etcd")
            assert app.screen.query_one("#f-etcd-prefix").value == "/coreos.com/network"
            assert "'ftp://10.0.0.1:2379'" in shown(app, "#err-f-etcd-endpoints")
            await goto(pilot, app, "network")
            assert app.screen.query_one("#f-vxlan-network-backend-vni").value == "7"
            assert "172.30.0.0/33" in shown(app, "#err-f-network-cidr")
            await type_into(pilot, app, "f-network-cidr", "172.30.0.0/16")
            assert shown(app, "#err-f-network-cidr") == ""
            await goto(pilot, app, "review")
            assert "etcd.endpoints.0" in shown(app, "#review-summary")

    run(main())


def test_answers_file_that_is_not_yaml_is_shown_on_the_welcome_page(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\netcd: [unclosed\n")

    async def main() -> None:
        app = demo_app(answers=str(path))
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.screen.ready)
            text = shown(app, "#file-problems")
            assert f"{path}: 1 problem(s)" in text and "✗ line 3:" in text and "fix the YAML here" in text
            # the pages hold defaults now; the unreadable file does not block them
            await goto(pilot, app, "review")
            await until(pilot, lambda: app.screen.result is not None, what="the plan")
            assert "11 change(s) planned" in shown(app, "#review-summary")

    run(main())


def test_quit_during_apply_stops_after_the_change_in_flight() -> None:
    async def main() -> None:
        app = demo_app(speed=2.0)  # restarts take 0.4 s: time to press a key in between
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "review")
            await until(pilot, lambda: app.screen.result is not None, what="the plan")
            await pilot.press("ctrl+n")
            await until(pilot, lambda: app.screen.query("#confirm-yes"))
            await press(pilot, app, "confirm-yes")
            page = app.get_screen("apply")
            await until(pilot, lambda: page.state.get("flanneld", {}).get("status") == "running", what="flanneld")
            await pilot.press("ctrl+q")
            assert app.is_running  # the first ctrl+q asks the run to stop; it does not leave mid-change
            await until(pilot, lambda: page.exit_code is not None, timeout=20, what="the stop")
            assert page.exit_code == 130
            assert "interrupted: the step in flight was rolled back" in shown(app, "#fail-message")
            assert page.state["docker"]["status"] == "pending"  # nothing after the interrupted step ran
        assert app.session.node.files.read("/run/docker_opts.env") is None

    run(main())


def test_paths_read_while_typed_never_crash_the_page() -> None:
    # a node without a kubelet unit: only then does kubelet's driver come from the answers' files
    profile = scenarios.load("fresh-node")
    profile["units"] = {"kubelet.service": None}

    async def main() -> None:
        app = demo_app(profile)
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "cgroup")
            await until(pilot, lambda: app.screen.facts is not None, what="drivers")
            # on the way to /var/lib/kubelet/config.yaml the field holds /var, a directory
            await type_into(pilot, app, "f-cgroup-kubelet-config", "/var")
            await until(pilot, lambda: "kubelet's default" in shown(app, "#kubelet-driver"), what="the re-read")
            await type_into(pilot, app, "f-cgroup-kubelet-config", "/var/lib/kubelet/config.yaml")
            await until(pilot, lambda: "cgroupDriver in" in shown(app, "#kubelet-driver"), what="the re-read")
            assert app.is_running

    run(main())


def test_a_typed_key_is_taken_while_it_is_handled_and_a_stale_message_undoes_nothing() -> None:
    """The page takes a key typed into a field as the field handles it (its problem line is drawn in the
    same frame as the character); the field's Changed message, and any older one still queued, change
    nothing after that."""
    from textual.widgets import Input

    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "network")
            field = app.screen.query_one("#f-network-cidr", Input)
            field.focus()
            await pilot.pause()
            field.value = "10.0.0.0/"  # a focused field: taken now, before any message is handled
            assert app.session.get(("network", "cidr")) == "10.0.0.0/"
            assert shown(app, "#err-f-network-cidr")  # the problem line is already there
            field.value = "10.0.0.0/8"
            app.screen.post_message(Input.Changed(field, "10.0.0.0/"))  # an older value's message, late
            await pilot.pause()
            assert app.session.get(("network", "cidr")) == "10.0.0.0/8"
            assert not shown(app, "#err-f-network-cidr")

    run(main())
