"""The etcd step and adapter against real etcd servers: plain, TLS, auth, v2, down, silent."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path

import pytest

from tests import lab
from tests.conftest import run_wizard
from tests.engine import messages, run_steps
from wizard.answers import Etcd as EtcdSettings
from wizard.errors import EtcdError
from wizard.node.etcd import connect
from wizard.node.files import Files


def answers(endpoint: str, prefix: str, extra: str = "", network: str = "") -> str:
    return f"version: 1\netcd:\n  endpoints: [\"{endpoint}\"]\n  prefix: {prefix}\n{extra}" + (f"network:\n{network}" if network else "")


def fresh_prefix() -> str:
    return f"/fwtest-{uuid.uuid4().hex[:8]}/network"


def test_create_equal_then_differ(etcd: lab.Etcd, tmp_path: Path) -> None:
    prefix = fresh_prefix()
    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"])
    assert code == 0
    assert f"created {prefix}/config" in messages(events, "ok")
    assert json.loads(etcd.get(f"{prefix}/config")) == {"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}

    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"])
    assert code == 0 and f"{prefix}/config already holds this config" in messages(events)

    other = "  cidr: 10.10.0.0/16\n"
    code, events = run_steps(answers(etcd.endpoint, prefix, network=other), tmp_path, ["etcd"])
    failed = [e for e in events if e.status == "failed" and e.kind == "note"]
    assert code == 1 and "already exists and differs" in failed[0].message
    assert '-  "Network": "172.30.0.0/16"' in failed[0].detail and '+  "Network": "10.10.0.0/16"' in failed[0].detail

    code, events = run_steps(answers(etcd.endpoint, prefix, "  on_existing: keep\n", other), tmp_path, ["etcd"])
    assert code == 0 and json.loads(etcd.get(f"{prefix}/config"))["Network"] == "172.30.0.0/16"

    code, events = run_steps(answers(etcd.endpoint, prefix, "  on_existing: replace\n", other), tmp_path, ["etcd"])
    assert code == 0 and json.loads(etcd.get(f"{prefix}/config"))["Network"] == "10.10.0.0/16"


def test_a_node_that_loses_the_create_race_reads_again(etcd: lab.Etcd, tmp_path: Path) -> None:
    prefix = fresh_prefix()
    same = json.dumps({"Backend": {"Type": "vxlan", "VNI": 1}, "Network": "172.30.0.0/16", "SubnetLen": 24})

    def other_node_wins(event) -> None:
        if event.step == "etcd" and event.kind == "note" and event.message.startswith("etcd 3"):
            etcd.ctl("put", f"{prefix}/config", same)  # between our read and our write

    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"], hook=other_node_wins)
    assert code == 0, messages(events)
    assert any("was created by someone else" in m for m in messages(events, "warn"))
    assert f"{prefix}/config already holds this config" in messages(events)
    assert etcd.get(f"{prefix}/config") == same  # theirs, untouched


def test_v2_api_writes_where_old_flanneld_reads(etcd: lab.Etcd, tmp_path: Path) -> None:
    import urllib.request

    prefix = fresh_prefix()
    code, _ = run_steps(answers(etcd.endpoint, prefix, "  api: v2\n"), tmp_path, ["etcd"])
    assert code == 0
    with urllib.request.urlopen(f"{etcd.endpoint}/v2/keys{prefix}/config", timeout=3) as resp:
        assert json.loads(json.loads(resp.read())["node"]["value"])["Network"] == "172.30.0.0/16"
    assert etcd.get(f"{prefix}/config") is None  # invisible to the v3 API, as flannel's docs warn


def settings(endpoint: str, **kw) -> EtcdSettings:
    return EtcdSettings(endpoints=[endpoint], timeout_s=kw.pop("timeout_s", 3), **kw)


def test_tls_with_client_certificate(etcd_tls: lab.Etcd, tls_files: dict[str, str]) -> None:
    store = connect(settings(etcd_tls.endpoint, ca_file=tls_files["ca"], cert_file=tls_files["client_cert"],
                             key_file=tls_files["client_key"]), None, Files("/"))
    assert store.version().startswith("3.")
    store.close()


@pytest.mark.parametrize("case", ["unknown-ca", "untrusted-client"])
def test_tls_rejected_is_said_as_such(etcd_tls: lab.Etcd, tls_files: dict[str, str], case: str) -> None:
    if case == "unknown-ca":
        kw = dict(ca_file=tls_files["other_ca"], cert_file=tls_files["client_cert"], key_file=tls_files["client_key"])
    else:
        kw = dict(ca_file=tls_files["ca"], cert_file=tls_files["stranger_cert"], key_file=tls_files["stranger_key"])
    with pytest.raises(EtcdError) as caught:
        connect(settings(etcd_tls.endpoint, **kw), None, Files("/")).version()
    assert caught.value.kind == "tls", str(caught.value)
    assert "rejected the TLS handshake" in str(caught.value)


def test_tls_failure_prints_one_clear_line_and_no_grpc_noise(etcd_tls: lab.Etcd, tls_files: dict[str, str], tmp_path: Path) -> None:
    import shutil

    pki = tmp_path / "root/etc/etcd"  # TLS paths in the answers are node paths, under --root
    pki.mkdir(parents=True)
    for name in ("other_ca", "client_cert", "client_key"):
        shutil.copy(tls_files[name], pki / f"{name}.pem")
    text = answers(etcd_tls.endpoint, fresh_prefix(),
                   "  ca_file: /etc/etcd/other_ca.pem\n  cert_file: /etc/etcd/client_cert.pem\n  key_file: /etc/etcd/client_key.pem\n")
    (tmp_path / "a.yaml").write_text(text)
    result = run_wizard("apply", str(tmp_path / "a.yaml"), "--only", "etcd", "--yes", "--root", str(tmp_path / "root"))
    assert result.returncode == 1
    assert "rejected the TLS handshake" in result.stdout
    assert "ssl_transport_security" not in result.stderr and "SSLV3" not in result.stderr
    assert result.stderr == ""
    # nothing but the wizard's own state dir (its run lock) appeared under the root
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["etc", "var"]
    assert not (tmp_path / "root/var/lib/flannel-wizard/journal.json").exists()


def test_auth(etcd_auth: lab.Etcd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FW_TEST_ETCD_PW", "s3cret-pw")
    prefix = fresh_prefix()
    code, events = run_steps(answers(etcd_auth.endpoint, prefix, "  username: flannel\n  password_env: FW_TEST_ETCD_PW\n"),
                             tmp_path, ["etcd"])
    assert code == 0, messages(events)
    assert etcd_auth.get(f"{prefix}/config", user="flannel:s3cret-pw") is not None
    assert all("s3cret-pw" not in (e.message + e.detail) for e in events)
    assert "s3cret-pw" not in (tmp_path / "var/lib/flannel-wizard/journal.json").read_text()

    monkeypatch.setenv("FW_TEST_ETCD_PW", "wrong")
    with pytest.raises(EtcdError) as caught:
        connect(settings(etcd_auth.endpoint, username="flannel", password_env="FW_TEST_ETCD_PW"), "wrong", Files("/"))
    assert caught.value.kind == "auth"


def test_refused_is_quick_and_clear(tmp_path: Path) -> None:
    port = lab.free_port()
    started = time.monotonic()
    with pytest.raises(EtcdError) as caught:
        connect(settings(f"http://127.0.0.1:{port}"), None, Files("/"))
    assert caught.value.kind == "refused" and time.monotonic() - started < 1.5


def test_unanswering_endpoint_times_out_within_the_limit(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts TCP, never speaks HTTP/2
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        (tmp_path / "a.yaml").write_text(answers(endpoint, fresh_prefix(), "  timeout_s: 1\n"))
        (tmp_path / "root").mkdir()
        started = time.monotonic()
        result = run_wizard("apply", str(tmp_path / "a.yaml"), "--only", "etcd", "--yes", "--root", str(tmp_path / "root"))
        took = time.monotonic() - started
    assert result.returncode == 1
    assert "did not answer in time" in result.stdout, result.stdout
    assert took < 1 + 1 + 0.5  # timeout_s + 1 s, plus interpreter start
    assert not (tmp_path / "root/var/lib/flannel-wizard/journal.json").exists()  # nothing was recorded


def test_etcd_stopped_between_inspect_and_apply(tmp_path: Path) -> None:
    server = lab.Etcd()
    try:
        prefix = fresh_prefix()
        code, _ = run_steps(answers(server.endpoint, prefix), tmp_path, ["etcd"])
        assert code == 0

        def stop_after_inspect(event) -> None:
            if event.step == "etcd" and event.kind == "note" and event.message.startswith("etcd 3"):
                server.stop()

        other = answers(server.endpoint, prefix, "  on_existing: replace\n  timeout_s: 1\n", "  cidr: 10.10.0.0/16\n")
        code, events = run_steps(other, tmp_path, ["etcd"], hook=stop_after_inspect)
        assert code == 1
        assert any("refused" in e.message or "did not answer" in e.message for e in events if e.status == "failed")
        journal = json.loads((tmp_path / "var/lib/flannel-wizard/journal.json").read_text())
        assert [e["state"] for e in journal["entries"]] == ["applied", "failed"]

        server.start()
        result = run_wizard("undo", "--root", str(tmp_path))
        assert result.returncode == 0, result.stdout
        assert server.get(f"{prefix}/config") is None
    finally:
        server.close()
