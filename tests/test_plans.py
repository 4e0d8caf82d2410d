"""Plans as pure functions: facts built here, `plan(answers, facts)` called, the changes asserted.

No node, no subprocess, no root: this is what a page's preview, `plan` and `apply` all compute.
"""

from __future__ import annotations

import json

from wizard import flannel, runtimes
from wizard.answers import Answers, parse
from wizard.changes import BridgeAddress, EtcdWrite, FileWrite, KubeObjects, Restart
from wizard.node.files import FileState
from wizard.node.linkinfo import LinkInfo
from wizard.steps import cgroup, docker, etcd, flanneld, preflight, smoke
from wizard.steps import get as step

ABSENT = FileState(None)
DOCKER0 = LinkInfo("docker0", 3, 1500, "bridge", ("172.17.0.1/16",))
ENV = {"FLANNEL_NETWORK": "172.30.0.0/16", "FLANNEL_SUBNET": "172.30.38.1/24", "FLANNEL_MTU": "1450",
       "FLANNEL_IPMASQ": "false"}


def answers(text: str = "") -> Answers:
    return parse("version: 1\n" + text)


def docker_facts(**kw: object) -> docker.Facts:
    a = answers()
    base = dict(subnet_env=dict(ENV), files={"/etc/docker/daemon.json": FileState(b'{"log-driver": "journald"}\n', 0o644)},
                bridge=DOCKER0, routes=[], iface_mtu=1500, lease="known",
                config=a.network.flannel_config(secrets=False))
    base.update(kw)
    return docker.Facts(**base)  # type: ignore[arg-type]


def kinds(plan: object) -> list[str]:
    return [type(c).__name__ for c in plan.to_make]  # type: ignore[attr-defined]


def test_every_step_is_one_typed_object_in_one_list() -> None:
    from wizard.steps import ORDER

    names = [step(n).name for n in ORDER]
    assert names == list(ORDER)
    assert step("docker").needs == ("network", "etcd", "flanneld")
    assert not step("preflight").makes_changes and step("smoke").makes_changes


def test_docker_with_the_lease_known_writes_the_opts_file_merges_daemon_json_moves_the_bridge() -> None:
    plan = docker.plan(answers(), docker_facts())
    assert kinds(plan) == ["FileWrite", "FileWrite", "BridgeAddress", "Restart"]
    opts, daemon, bridge, restart = plan.to_make
    assert isinstance(opts, FileWrite) and opts.new == (
        b'DOCKER_OPT_BIP="--bip=172.30.38.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1450"\n'
        b'DOCKER_OPTS=" --bip=172.30.38.1/24 --ip-masq=true --mtu=1450"\n')
    assert isinstance(daemon, FileWrite) and json.loads(daemon.new or b"") == {
        "log-driver": "journald", "bip": "172.30.38.1/24", "mtu": 1450}
    assert isinstance(bridge, BridgeAddress) and (bridge.address, bridge.mtu) == ("172.30.38.1/24", 1450)
    assert isinstance(restart, Restart) and restart.needed


def test_docker_before_flanneld_has_its_lease_lists_every_change_as_pending() -> None:
    """On a fresh node the plan shows the four changes apply will make, not 'nothing to change'."""
    plan = docker.plan(answers(), docker_facts(subnet_env=None, lease="pending", iface_mtu=1500))
    assert kinds(plan) == ["FileWrite", "FileWrite", "BridgeAddress", "Restart"]
    opts, daemon, bridge, _restart = plan.to_make
    assert [c.pending_on for c in plan.to_make] == ["flanneld's lease"] * 3 + [""]
    assert bridge.summary() == "set docker0 to the /24 flanneld leases in 172.30.0.0/16 mtu 1450"
    assert isinstance(opts, FileWrite) and opts.new is None and b"--bip=172.30.1.1/24" in (opts.example or b"")
    assert "for a lease of 172.30.1.1/24 it would be" in opts.detail()
    assert isinstance(daemon, FileWrite) and not daemon.in_place()


def test_docker_pending_mtu_follows_the_backend_and_the_interface() -> None:
    a = answers("network:\n  backend: {type: host-gw}\n")
    facts = docker_facts(subnet_env=None, lease="pending", iface_mtu=9000, config=a.network.flannel_config())
    bridge = next(c for c in docker.plan(a, facts).to_make if isinstance(c, BridgeAddress))
    assert bridge.mtu == 9000


def test_docker_waits_when_flanneld_could_not_be_restarted_and_fails_when_nothing_will_write_the_lease() -> None:
    skipped = docker.plan(answers(), docker_facts(subnet_env=None, lease="restart-skipped"))
    assert skipped.skipped is False and not skipped.to_make
    assert [n.status for n in skipped.notes] == ["warn", "skipped"]
    missing = docker.plan(answers(), docker_facts(subnet_env=None, lease="missing"))
    assert missing.failed and "does not exist" in missing.notes[0].message


def test_docker_refuses_only_the_route_mk_docker_opts_refuses() -> None:
    """The script greps `ip route show` for the lease itself and `via`: a wider route through a gateway
    passes, the lease through a gateway is refused with the script's words."""
    import ipaddress

    from wizard.node.linkinfo import Route

    wider = Route(ipaddress.IPv4Network("172.30.0.0/16"), "192.168.56.1", "eth0")
    assert not docker.plan(answers(), docker_facts(routes=[wider])).failed
    exact = Route(ipaddress.IPv4Network("172.30.38.0/24"), "192.168.56.1", "eth0")
    plan = docker.plan(answers(), docker_facts(routes=[wider, exact]))
    assert plan.failed and plan.notes[-1].message == (
        "Your routing table already contains the subnet: 172.30.38.0/24 via 192.168.56.1 dev eth0")
    assert plan.to_make == []


def etcd_facts(current: str | None) -> etcd.Facts:
    return etcd.Facts(True, "3.5.9", "http://127.0.0.1:2379", (current, 7) if current is not None else None, [])


def test_etcd_creates_an_absent_config() -> None:
    plan = etcd.plan(answers(), etcd_facts(None))
    (change,) = plan.to_make
    assert isinstance(change, EtcdWrite) and change.old is None
    assert '+  "Network": "172.30.0.0/16",' in change.detail()
    assert plan.output.config_in_force["Network"] == "172.30.0.0/16"


def test_etcd_compares_configs_as_flannel_reads_them() -> None:
    """A stored config that spells out flannel's defaults ("VNI": 1) is the same config."""
    stored = '{"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan", "VNI": 1}}'
    plan = etcd.plan(answers(), etcd_facts(stored))
    assert plan.to_make == [] and not plan.failed
    assert "/kube-centos/network/config already holds this config" in [n.message for n in plan.notes]


def test_etcd_on_existing_decides_fail_keep_or_replace() -> None:
    other = '{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}}'
    failed = etcd.plan(answers(), etcd_facts(other))
    assert failed.failed and "set etcd.on_existing to keep or replace" in failed.notes[1].detail
    kept = etcd.plan(answers("etcd: {on_existing: keep}\n"), etcd_facts(other))
    assert not kept.failed and kept.to_make == [] and kept.output.config_in_force["Network"] == "10.1.0.0/16"
    replaced = etcd.plan(answers("etcd: {on_existing: replace}\n"), etcd_facts(other))
    (change,) = replaced.to_make
    assert isinstance(change, EtcdWrite) and (change.old, change.revision) == (other, 7)


def test_etcd_unreachable_still_plans_the_create_with_a_warning() -> None:
    from wizard.errors import EtcdError

    plan = etcd.plan(answers(), etcd.Facts(False, error=EtcdError("refused", "start etcd", "refused")))
    assert [n.status for n in plan.notes] == ["warn"] and kinds(plan) == ["EtcdWrite"]


def test_flanneld_keeps_other_lines_and_restarts_when_anything_changed() -> None:
    env = FileState(b"# mine\nFLANNEL_ETCD_ENDPOINTS=\"http://old:2379\"\nOTHER=1\n", 0o644)
    plan = flanneld.plan(answers(), flanneld.Facts(env, None, None, subnet_file_exists=True))
    write, restart = plan.to_make
    assert isinstance(write, FileWrite) and b"OTHER=1\n" in (write.new or b"") and b"# mine\n" in (write.new or b"")
    assert isinstance(restart, Restart) and restart.wait_file == "/run/flannel/subnet.env"
    assert plan.output == flanneld.Output(True, "/run/flannel/subnet.env")


def test_flanneld_puts_the_password_in_a_root_only_file_and_never_in_the_plan_text(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ETCD_PW", "s3cret-pw")  # validation checks that the variable is set
    a = answers("etcd: {username: flannel, password_env: ETCD_PW}\n")
    facts = flanneld.Facts(ABSENT, ABSENT, ABSENT, subnet_file_exists=False, password="s3cret-pw")
    plan = flanneld.plan(a, facts)
    secret = next(c for c in plan.to_make if isinstance(c, FileWrite) and c.secret)
    assert secret.mode == 0o600 and secret.new == b'FLANNELD_ETCD_PASSWORD="s3cret-pw"\n'
    assert all("s3cret-pw" not in c.detail() and "s3cret-pw" not in c.summary() for c in plan.changes)
    assert "s3cret-pw" not in repr(facts) and "s3cret-pw" not in repr(plan)  # a traceback's locals show reprs


def test_cgroup_follows_pid_1_and_changes_both_sides() -> None:
    facts = cgroup.Facts("docker", runtimes.Driver("cgroupfs", "docker info"),
                         runtimes.Driver("cgroupfs", "kubelet's default"), True, "/etc/docker/daemon.json",
                         FileState(b"{}\n", 0o644), ABSENT, ABSENT)
    plan = cgroup.plan(answers(), facts)
    assert [c.path for c in plan.to_make if isinstance(c, FileWrite)] == ["/etc/docker/daemon.json",
                                                                         "/var/lib/kubelet/config.yaml"]
    assert [c.service for c in plan.to_make if isinstance(c, Restart)] == ["docker", "kubelet"]
    assert plan.output.target == "systemd" and plan.output.changing == ("docker", "kubelet")
    chosen = cgroup.plan(answers("cgroup: {driver: cgroupfs}\n"), facts)
    assert chosen.to_make == [] and chosen.output.why == "as the answers say"


def test_preflight_errors_block_unless_ignored_by_name() -> None:
    found = [preflight.Finding("Swap", "WARNING", False, "swap is on"),
             preflight.Finding("FileExisting-kubelet", "ERROR", False, "kubelet not found")]
    blocked = preflight.plan(answers(), preflight.Facts(found, frozenset()))
    assert blocked.failed and blocked.output.blocking == ["FileExisting-kubelet"]
    ignored = preflight.plan(answers(), preflight.Facts(found, frozenset({"fileexisting-kubelet"})))
    assert not ignored.failed and ignored.output.ignored == ["FileExisting-kubelet"]


def test_the_smoke_tests_cluster_objects_are_a_change() -> None:
    plan = smoke.plan(answers(), smoke.Facts(True, None, []))
    (change,) = plan.to_make
    assert isinstance(change, KubeObjects) and change.names() == ["deployment/nginx", "service/example-service"]
    assert change.temporary and change.substep is not None and change.substep.title == "deploy"
    kept = smoke.plan(answers("smoke_test: {cleanup: false}\n"), smoke.Facts(True, None, []))
    assert not kept.to_make[0].temporary  # type: ignore[attr-defined]
    foreign = {"kind": "Deployment", "metadata": {"name": "nginx", "labels": {"team": "web"}}}
    assert smoke.plan(answers(), smoke.Facts(True, None, [foreign])).failed
    assert smoke.plan(answers("smoke_test: {enabled: false}\n"), smoke.Facts(False)).skipped


def test_lease_subnet_of_a_lease_key() -> None:
    assert flannel.lease_subnet("172.30.38.0-24") == "172.30.38.0/24"
