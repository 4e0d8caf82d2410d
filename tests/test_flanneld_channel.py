"""flanneld's settings go through the channel its unit really reads, proved end to end: the wizard writes,
the systemctl stand-in starts flanneld from the unit under the root as systemd would, and the flanneld
stand-in (which reads flags, else FLANNELD_* variables, as upstream main.go does) takes its lease in the
real etcd. Plans for the conflicts are checked as pure functions."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import lab, unitfixtures
from tests.conftest import run_wizard
from wizard.answers import parse
from wizard.changes import FileWrite
from wizard.node.files import FileState
from wizard.steps import flanneld

UPSTREAM_UNIT = """\
[Unit]
Description=flannel (upstream binary, hand-written unit)

[Service]
Type=notify
EnvironmentFile=-/etc/default/flanneld
ExecStart=/usr/local/bin/flanneld {args}

[Install]
WantedBy=multi-user.target
"""


def fresh_prefix() -> str:
    return f"/fwtest-{uuid.uuid4().hex[:8]}/network"


def write_answers(tmp_path: Path, endpoint: str, prefix: str, extra: str = "", etcd_extra: str = "") -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(f'version: 1\netcd:\n  endpoints: ["{endpoint}"]\n  prefix: {prefix}\n{etcd_extra}'
                    f"flanneld:\n  wait_s: 10\n{extra}")
    return path


def apply(answers: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return run_wizard("apply", str(answers), "--only", "etcd,flanneld", "--root", env["FW_TEST_ROOT"], "--yes",
                      *extra, env=env)


def upstream_unit(root: Path, args: str = "") -> None:
    unit = root / "etc/systemd/system/flanneld.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(UPSTREAM_UNIT.format(args=args))


def lease_of(etcd: lab.Etcd, prefix: str, subnet_env: str) -> dict[str, object]:
    subnet = next(line.split("=", 1)[1] for line in subnet_env.splitlines() if line.startswith("FLANNEL_SUBNET="))
    return json.loads(etcd.get(f"{prefix}/subnets/{subnet.replace('.1/', '.0-')}") or "{}")


def test_the_centos_wrapper_gets_flannel_etcd_and_flannel_options(etcd: lab.Etcd, standin_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    root = Path(standin_env["FW_TEST_ROOT"])
    unitfixtures.install(root, "centos7-flannel")
    prefix = fresh_prefix()
    result = apply(write_answers(tmp_path, etcd.endpoint, prefix, "  ip_masq: true\n"), standin_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("flanneld.service runs the flanneld-start wrapper (/usr/lib/systemd/system/flanneld.service): writing "
            "FLANNEL_ETCD_ENDPOINTS, FLANNEL_ETCD_PREFIX and FLANNEL_OPTIONS in /etc/sysconfig/flanneld") in result.stdout
    env = (root / "etc/sysconfig/flanneld").read_text()
    assert f'FLANNEL_ETCD_ENDPOINTS="{etcd.endpoint}"' in env and f'FLANNEL_ETCD_PREFIX="{prefix}"' in env
    assert 'FLANNEL_OPTIONS="-ip-masq"' in env and "FLANNELD_" not in env
    subnet_env = (root / "run/flannel/subnet.env").read_text()
    assert "FLANNEL_IPMASQ=true" in subnet_env  # -ip-masq reached flanneld through the wrapper
    assert lease_of(etcd, prefix, subnet_env)["PublicIP"] == "127.0.0.1"
    assert not (root / "etc/systemd/system/flanneld.service.d").exists()  # the unit reads the env file already


def test_the_upstream_binary_gets_its_own_flanneld_variables_and_a_drop_in(etcd: lab.Etcd, standin_env: dict[str, str],
                                                                         tmp_path: Path) -> None:
    root = Path(standin_env["FW_TEST_ROOT"])
    upstream_unit(root)
    prefix = fresh_prefix()
    answers = write_answers(tmp_path, etcd.endpoint, prefix, "  ip_masq: true\n  subnet_file: /run/flannel/lab.env\n")
    result = apply(answers, standin_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "runs the flanneld binary itself (/etc/systemd/system/flanneld.service)" in result.stdout
    env = (root / "etc/sysconfig/flanneld").read_text()
    assert f'FLANNELD_ETCD_ENDPOINTS="{etcd.endpoint}"\nFLANNELD_ETCD_PREFIX="{prefix}"\nFLANNELD_IFACE=""\n' in env
    assert 'FLANNELD_IP_MASQ="true"\nFLANNELD_SUBNET_FILE="/run/flannel/lab.env"\n' in env
    assert "FLANNEL_ETCD" not in env and "FLANNEL_OPTIONS" not in env
    # the unit read /etc/default/flanneld only: a drop-in makes it read the answers' env file
    dropin = root / "etc/systemd/system/flanneld.service.d/90-flannel-wizard-env.conf"
    assert dropin.read_text() == "[Service]\nEnvironmentFile=/etc/sysconfig/flanneld\n"
    subnet_env = (root / "run/flannel/lab.env").read_text()  # FLANNELD_SUBNET_FILE was read
    assert "FLANNEL_IPMASQ=true" in subnet_env and lease_of(etcd, prefix, subnet_env)["PublicIP"] == "127.0.0.1"

    assert "created /etc/systemd/system/flanneld.service.d/90-flannel-wizard-env.conf" in result.stdout
    again = apply(answers, standin_env)  # the unit now reads the env file through the drop-in: nothing to write
    assert again.returncode == 0, again.stdout
    assert "created" not in again.stdout and "updated" not in again.stdout and "restarted" not in again.stdout


def test_what_the_wizard_wrote_before_would_be_ignored_by_the_upstream_binary(etcd: lab.Etcd,
                                                                            standin_env: dict[str, str]) -> None:
    """The divergence itself: FLANNEL_ETCD_* in a file the binary's unit reads does not reach it."""
    root = Path(standin_env["FW_TEST_ROOT"])
    upstream_unit(root)
    prefix = fresh_prefix()
    etcd.ctl("put", f"{prefix}/config", '{"Network": "172.30.0.0/16", "Backend": {"Type": "vxlan"}}')
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/default/flanneld").write_text(f'FLANNEL_ETCD_ENDPOINTS="{etcd.endpoint}"\nFLANNEL_ETCD_PREFIX="{prefix}"\n')
    started = subprocess.run([sys.executable, "-S", str(lab.STANDINS / "systemctl.py"), "restart", "flanneld"],
                             env=standin_env, capture_output=True, text=True, timeout=30)
    assert started.returncode == 1  # flanneld went to its defaults, http://127.0.0.1:2379 and /coreos.com/network
    assert not (root / "run/flannel/subnet.env").exists()


def test_a_flag_in_execstart_that_disagrees_stops_before_writing(etcd: lab.Etcd, standin_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    root = Path(standin_env["FW_TEST_ROOT"])
    upstream_unit(root, "-etcd-prefix=/coreos.com/network -ip-masq")
    prefix = fresh_prefix()
    result = apply(write_answers(tmp_path, etcd.endpoint, prefix), standin_env)
    assert result.returncode == 1
    assert (f"flanneld.service passes -etcd-prefix=/coreos.com/network on flanneld's command line "
            f"(/etc/systemd/system/flanneld.service): a flag beats what /etc/sysconfig/flanneld says, so the "
            f"answers' value (etcd.prefix: {prefix}) would be ignored") in result.stdout
    assert ("remove -etcd-prefix from ExecStart= in /etc/systemd/system/flanneld.service (or override ExecStart= in "
            "a drop-in), or set etcd.prefix to /coreos.com/network") in result.stdout
    assert "passes -ip-masq=true" in result.stdout and "or set flanneld.ip_masq to true" in result.stdout
    assert not (root / "etc/sysconfig/flanneld").exists()
    assert not (root / "etc/systemd/system/flanneld.service.d").exists()


@pytest.mark.parametrize("layout", ["wrapper", "binary"])
def test_the_password_reaches_flanneld_from_its_root_only_file(etcd_auth: lab.Etcd, standin_env: dict[str, str],
                                                               tmp_path: Path, layout: str) -> None:
    """Both read FLANNELD_ETCD_PASSWORD: the binary itself, and the wrapper, which execs flanneld with its environment."""
    root = Path(standin_env["FW_TEST_ROOT"])
    if layout == "wrapper":
        unitfixtures.install(root, "centos7-flannel")
    else:
        upstream_unit(root)
    prefix = fresh_prefix()
    (tmp_path / "pw").write_text("s3cret-pw\n")
    answers = write_answers(tmp_path, etcd_auth.endpoint, prefix,
                            etcd_extra=f"  username: flannel\n  password_file: {tmp_path / 'pw'}\n")
    (root / tmp_path.relative_to("/")).mkdir(parents=True)  # password_file is a node path, under --root
    (root / tmp_path.relative_to("/") / "pw").write_text("s3cret-pw\n")
    result = apply(answers, standin_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    env = (root / "etc/sysconfig/flanneld").read_text()
    wanted = 'FLANNEL_OPTIONS="-etcd-username=flannel"' if layout == "wrapper" else 'FLANNELD_ETCD_USERNAME="flannel"'
    assert wanted in env and "s3cret-pw" not in env
    secret = root / "etc/sysconfig/flanneld.etcd-password"
    assert secret.read_text() == 'FLANNELD_ETCD_PASSWORD="s3cret-pw"\n' and secret.stat().st_mode & 0o777 == 0o600
    assert (root / "run/flannel/subnet.env").exists()  # flanneld authenticated with it


# ---------------------------------------------------------------- plans, as pure functions

ABSENT = FileState(None)


def unit_facts(program: str = "flanneld", **kw: object) -> flanneld.UnitFacts:
    base: dict[str, object] = dict(name="flanneld.service", files=("/etc/systemd/system/flanneld.service",),
                                   program=program, exec_from="/etc/systemd/system/flanneld.service",
                                   reads_env_file=True, uses_options=False)
    base.update(kw)
    return flanneld.UnitFacts(**base)  # type: ignore[arg-type]


def plan_for(text: str, unit: flanneld.UnitFacts | None) -> flanneld.Plan:
    facts = flanneld.Facts(ABSENT, None, None, subnet_file_exists=False, unit=unit, env_dropin=ABSENT)
    return flanneld.plan(parse("version: 1\n" + text), facts)


def test_no_unit_means_the_articles_layout_and_the_plan_says_so() -> None:
    plan = plan_for("", None)
    (note,) = plan.notes
    assert note.status == "warn" and note.message.startswith("no flanneld.service unit found: writing the CentOS "
                                                             "flannel package's layout (the article's)")
    write = plan.to_make[0]
    assert isinstance(write, FileWrite) and b'FLANNEL_ETCD_PREFIX="/kube-centos/network"' in (write.new or b"")


def test_a_later_environment_file_that_overrides_the_answers_is_a_conflict() -> None:
    unit = unit_facts(later=(("FLANNELD_IFACE", "eth0", "/etc/sysconfig/flanneld-site"),))
    plan = plan_for("flanneld: {iface: eth1}\n", unit)
    failed = [n for n in plan.notes if n.status == "failed"]
    assert failed and failed[0].message.startswith("/etc/sysconfig/flanneld-site sets FLANNELD_IFACE again after "
                                                   "/etc/sysconfig/flanneld")
    assert plan.changes == []
    assert not plan_for("flanneld: {iface: eth0}\n", unit).failed  # it agrees: nothing is ignored


def test_kube_subnet_mgr_and_a_password_flag_are_refused_without_showing_the_password(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ETCD_PW", "s3cret-pw")
    unit = unit_facts(given=(("kube-subnet-mgr", "true", ""), ("etcd-password", "(set)", "")))
    plan = plan_for("etcd: {username: flannel, password_env: ETCD_PW}\n", unit)
    messages = [n.message for n in plan.notes if n.status == "failed"]
    assert any("-kube-subnet-mgr" in m and "never reads etcd" in m for m in messages)
    assert any("passes -etcd-password on flanneld's command line" in m for m in messages)
    assert "s3cret-pw" not in repr(plan.notes)


def test_a_wrapper_without_flannel_options_gets_the_rest_as_flanneld_variables() -> None:
    plan = plan_for("flanneld: {iface: eth1}\n", unit_facts("flanneld-start", uses_options=False))
    write = plan.to_make[0]
    assert isinstance(write, FileWrite)
    text = (write.new or b"").decode()
    assert 'FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:2379"' in text and 'FLANNELD_IFACE="eth1"' in text
    assert "FLANNEL_OPTIONS" not in text


def test_every_variable_name_is_the_flag_as_flagutil_spells_it() -> None:
    assert [flanneld.env_name(f) for f in flanneld.flag_values(parse("version: 1\n"))] == [
        "FLANNELD_ETCD_ENDPOINTS", "FLANNELD_ETCD_PREFIX", "FLANNELD_IFACE", "FLANNELD_IP_MASQ",
        "FLANNELD_SUBNET_FILE", "FLANNELD_ETCD_CAFILE", "FLANNELD_ETCD_CERTFILE", "FLANNELD_ETCD_KEYFILE",
        "FLANNELD_ETCD_USERNAME"]


def test_a_binary_run_with_flannel_options_gets_every_flag_there() -> None:
    plan = plan_for("flanneld: {iface: eth1}\n", unit_facts("flanneld", uses_options=True))
    write = plan.to_make[0]
    assert isinstance(write, FileWrite)
    assert (write.new or b"").decode() == ('FLANNEL_OPTIONS="-etcd-endpoints=http://127.0.0.1:2379 '
                                           '-etcd-prefix=/kube-centos/network -iface=eth1"\n')
    assert "with $FLANNEL_OPTIONS" in plan.notes[0].message


def test_the_operators_own_flags_in_flannel_options_are_kept(etcd: lab.Etcd, standin_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    """-public-ip has no answers key (it is the fix for two nodes on one address): rewriting FLANNEL_OPTIONS
    keeps it, and flanneld leases with it; a flag the answers own (-iface) follows the answers."""
    root = Path(standin_env["FW_TEST_ROOT"])
    unitfixtures.install(root, "centos7-flannel")
    sysconfig = root / "etc/sysconfig/flanneld"
    sysconfig.write_text(sysconfig.read_text() + 'FLANNEL_OPTIONS="-public-ip=127.0.0.5 -iface=eth9 -iface-regex eth.*"\n')
    prefix = fresh_prefix()
    result = apply(write_answers(tmp_path, etcd.endpoint, prefix), standin_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("keeping -public-ip=127.0.0.5 -iface-regex eth.* in FLANNEL_OPTIONS of /etc/sysconfig/flanneld: flags "
            "the answers have no key for stay as you wrote them") in result.stdout
    assert 'FLANNEL_OPTIONS="-public-ip=127.0.0.5 -iface-regex eth.*"' in sysconfig.read_text()
    subnet_env = (root / "run/flannel/subnet.env").read_text()
    assert lease_of(etcd, prefix, subnet_env)["PublicIP"] == "127.0.0.5"
