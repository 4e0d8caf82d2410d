"""`etcd.api: auto`: the API follows the installed flanneld's version, against a real etcd (v2 and v3
both enabled) and the flanneld stand-in, which prints its version as flanneld does and reads only the
store its version reads."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests import lab
from tests.engine import messages, run_steps
from wizard.answers import Etcd as EtcdSettings
from wizard.node.commands import Result
from wizard.node.etcd import api_of, choose_api, parse_flanneld_version
from wizard.steps.etcd import NOT_IN_V2, NOT_IN_V3


def answers(endpoint: str, prefix: str, extra: str = "") -> str:
    return f"version: 1\netcd:\n  endpoints: [\"{endpoint}\"]\n  prefix: {prefix}\n{extra}"


def fresh_prefix() -> str:
    return f"/fwtest-{uuid.uuid4().hex[:8]}/network"


def v2_get(etcd: lab.Etcd, key: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{etcd.endpoint}/v2/keys{key}", timeout=3) as resp:
            return json.loads(resp.read())["node"]["value"]
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return None


def v2_put(etcd: lab.Etcd, key: str, value: str) -> None:
    data = urllib.parse.urlencode({"value": value}).encode()
    req = urllib.request.Request(f"{etcd.endpoint}/v2/keys{key}", data, method="PUT")
    with urllib.request.urlopen(req, timeout=3):
        pass


@pytest.fixture
def flanneld_on_path(monkeypatch: pytest.MonkeyPatch, standins: Path):  # noqa: ANN201
    """The flanneld stand-in first on PATH, at the version the test sets."""
    import os

    monkeypatch.setenv("PATH", f"{standins}:{os.environ['PATH']}")

    def at(version: str) -> None:
        monkeypatch.setenv("FW_FLANNELD_VERSION", version)

    return at


CONFIG = json.dumps({"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}})


@pytest.mark.parametrize(("text", "version"), [
    ("0.7.1\n", (0, 7, 1)),                   # CentOS 7's flannel package
    ("v0.26.1\n", (0, 26, 1)),                # an upstream release
    ("v0.17.0-12-g3a4b5c6-dirty\n", (0, 17, 0)),  # git describe of a build between releases
    ("v0.18\n", (0, 18, 0)),
    ("was not built correctly\n", None),
    ("", None),
])
def test_versions_as_flanneld_prints_them(text: str, version: tuple[int, int, int] | None) -> None:
    assert parse_flanneld_version(text) == version


def test_the_api_changes_at_v0_18_0() -> None:
    assert api_of((0, 7, 1)) == "v2" and api_of((0, 17, 9)) == "v2"
    assert api_of((0, 18, 0)) == "v3" and api_of((1, 0, 0)) == "v3"


class FakeCommands:
    """`flanneld --version` answering as given: for the cases no stand-in needs a process for."""

    def __init__(self, result: Result | None) -> None:
        self.result = result
        self.timeouts: list[float] = []

    def which(self, name: str) -> str | None:
        return "/usr/bin/flanneld" if self.result is not None else None

    def run(self, *argv: str, timeout: float = 30, input: str | None = None) -> Result:
        assert self.result is not None and argv == ("flanneld", "--version")
        self.timeouts.append(timeout)
        return self.result


def test_auto_without_flanneld_is_v3_and_says_so_and_a_hung_flanneld_is_not_waited_for() -> None:
    auto = EtcdSettings()
    assert auto.api == "auto"  # the default
    choice = choose_api(FakeCommands(None), auto)
    assert (choice.api, choice.reads) == ("v3", "") and choice.why.startswith("flanneld is not installed; v3")
    hung = FakeCommands(Result(("flanneld", "--version"), -1, "", "flanneld did not answer within 5s", timed_out=True))
    choice = choose_api(hung, auto)
    assert choice.api == "v3" and "did not give a version" in choice.why and hung.timeouts == [5.0]
    forced = choose_api(FakeCommands(Result(("flanneld",), 0, "", "0.7.1\n")), EtcdSettings(api="v3"))
    assert (forced.api, forced.reads, forced.flanneld) == ("v3", "v2", "0.7.1")


def test_old_flanneld_gets_its_config_in_the_v2_store(etcd: lab.Etcd, tmp_path: Path, flanneld_on_path) -> None:  # noqa: ANN001
    flanneld_on_path("0.7.1")
    prefix = fresh_prefix()
    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"])
    assert code == 0, messages(events)
    said = next(e for e in events if e.message.startswith("etcd 3"))
    assert said.message.endswith("(v2 keys API)")
    assert said.detail == "flanneld 0.7.1 (older than v0.18.0) reads only the v2 keys API"
    assert json.loads(v2_get(etcd, f"{prefix}/config") or "{}")["Network"] == "172.30.0.0/16"
    assert etcd.get(f"{prefix}/config") is None


def test_new_flanneld_and_no_flanneld_get_v3(etcd: lab.Etcd, tmp_path: Path, flanneld_on_path) -> None:  # noqa: ANN001
    flanneld_on_path("v0.26.1")
    prefix = fresh_prefix()
    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"])
    assert code == 0 and etcd.get(f"{prefix}/config") is not None and v2_get(etcd, f"{prefix}/config") is None
    assert any(e.detail == "flanneld 0.26.1 (v0.18.0 or later) reads only the v3 API" for e in events)


def test_a_config_only_in_the_v3_store_is_named_with_old_flanneld_s_words(etcd: lab.Etcd, tmp_path: Path,
                                                                          flanneld_on_path) -> None:  # noqa: ANN001
    flanneld_on_path("0.7.1")
    prefix = fresh_prefix()
    etcd.ctl("put", f"{prefix}/config", CONFIG)  # `etcdctl put` speaks v3 since etcd 3.4: the classic trap
    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"])
    assert code == 0, messages(events)
    warned = next(e for e in events if e.status == "warn" and "only in the v3 API store" in e.message)
    assert f"it says `{NOT_IN_V2}`" in warned.message
    assert f"ETCDCTL_API=3 etcdctl del {prefix}/config" in warned.detail
    assert v2_get(etcd, f"{prefix}/config") is not None  # now also where flanneld 0.7.1 reads


def test_a_config_only_in_the_v2_store_is_named_with_new_flanneld_s_words(etcd: lab.Etcd, tmp_path: Path,
                                                                          flanneld_on_path) -> None:  # noqa: ANN001
    flanneld_on_path("v0.26.1")
    prefix = fresh_prefix()
    v2_put(etcd, f"{prefix}/config", CONFIG)
    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"], dry_run=True)
    assert code == 0
    warned = next(e for e in events if e.status == "warn" and "only in the v2 keys API store" in e.message)
    assert f"it says `{NOT_IN_V3}`" in warned.message and f"ETCDCTL_API=2 etcdctl rm {prefix}/config" in warned.detail


def test_an_api_forced_against_the_installed_flanneld_stops_before_writing(etcd: lab.Etcd, tmp_path: Path,
                                                                           flanneld_on_path) -> None:  # noqa: ANN001
    flanneld_on_path("0.7.1")
    prefix = fresh_prefix()
    code, events = run_steps(answers(etcd.endpoint, prefix, "  api: v3\n"), tmp_path, ["etcd"])
    assert code == 1
    failed = next(e for e in events if e.status == "failed")
    assert "etcd.api is v3 but flanneld 0.7.1 reads only the v2 keys API" in failed.message
    assert NOT_IN_V2 in failed.message and "set etcd.api: auto (or v2)" in failed.detail
    assert etcd.get(f"{prefix}/config") is None and v2_get(etcd, f"{prefix}/config") is None


def test_undo_removes_the_v2_key_it_wrote(etcd: lab.Etcd, tmp_path: Path, flanneld_on_path) -> None:  # noqa: ANN001
    from wizard.journal import Journal
    from wizard.node import Node
    from wizard.undo import undo_all

    flanneld_on_path("0.7.1")
    prefix = fresh_prefix()
    code, _ = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"])
    assert code == 0 and v2_get(etcd, f"{prefix}/config") is not None
    node = Node(str(tmp_path))
    journal = Journal(node.files, node_identity=node.identity())
    (entry,) = [e for e in journal.entries if e["kind"] == "etcd"]
    assert entry["record"]["etcd"]["api"] == "v2"  # the record names the API used, not `auto`
    assert undo_all(node, journal, lambda event: None) == 0
    assert v2_get(etcd, f"{prefix}/config") is None


def systemctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-S", str(lab.STANDINS / "systemctl.py"), *args], env=env,
                          capture_output=True, text=True, timeout=30)


def test_the_stand_in_reads_only_the_store_of_its_version(etcd: lab.Etcd, standin_env: dict[str, str]) -> None:
    prefix = fresh_prefix()
    root = Path(standin_env["FW_TEST_ROOT"])
    (root / "etc/sysconfig").mkdir(parents=True)
    (root / "etc/sysconfig/flanneld").write_text(f'FLANNEL_ETCD_ENDPOINTS="{etcd.endpoint}"\nFLANNEL_ETCD_PREFIX="{prefix}"\n')
    etcd.ctl("put", f"{prefix}/config", CONFIG)
    old = systemctl({**standin_env, "FW_FLANNELD_VERSION": "0.7.1"}, "restart", "flanneld")
    assert old.returncode == 1 and NOT_IN_V2 in old.stderr
    new = systemctl({**standin_env, "FW_FLANNELD_VERSION": "v0.26.1"}, "restart", "flanneld")
    assert new.returncode == 0, new.stderr
    assert (root / "run/flannel/subnet.env").read_text().startswith("FLANNEL_NETWORK=172.30.0.0/16\n")
    version = subprocess.run([sys.executable, "-S", str(lab.STANDINS / "flanneld.py"), "--version"], capture_output=True,
                             text=True, timeout=10, env={**standin_env, "FW_FLANNELD_VERSION": "0.7.1"})
    assert (version.stdout, version.stderr) == ("", "0.7.1\n")  # flanneld prints its version to stderr
