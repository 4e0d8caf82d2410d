"""Broken answer files: exit 2, every problem with its line and column, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_wizard

CASES = {
    "syntax": ("version: 1\netcd:\n  endpoints: [http://a:2379\n", ["f.yaml:4:1: YAML syntax error"]),
    "unknown-key": ("version: 1\netcd:\n  endponts: [http://a:2379]\n", ["f.yaml:3:3: unknown key 'etcd.endponts' — did you mean 'endpoints'?"]),
    "unknown-section": ("version: 1\nnetwrk: {}\n", ["f.yaml:2:1: unknown key 'netwrk' — did you mean 'network'?"]),
    "missing-version": ("etcd: {}\n", ["missing 'version'"]),
    "wrong-type": ("version: 1\netcd:\n  timeout_s: soon\n", ["f.yaml:3:14: etcd.timeout_s must be a number"]),
    "bad-url": ("version: 1\netcd:\n  endpoints: [\"etcd:2379\"]\n", ["f.yaml:3:15: etcd.endpoints.0:", "not an http:// or https:// URL"]),
    "bad-cidr": ("version: 1\nnetwork:\n  cidr: 172.300.0.0/16\n", ["f.yaml:3:9: network.cidr: '172.300.0.0/16' is not an IPv4 CIDR"]),
    "host-bits": ("version: 1\nnetwork:\n  cidr: 172.30.5.0/16\n", ["did you mean 172.30.0.0/16?"]),
    "subnetlen-31": ("version: 1\nnetwork:\n  subnet_len: 31\n", ["f.yaml:3:15: SubnetLen must be less than /31"]),
    "subnetlen-small": ("version: 1\nnetwork:\n  cidr: 10.0.0.0/16\n  subnet_len: 17\n", ["f.yaml:4:15: network must be able to accommodate at least four subnets"]),
    "service-overlap": ("version: 1\nnetwork:\n  cidr: 10.0.0.0/8\n  service_cidr: 10.254.0.0/16\n", ["f.yaml:4:17: service CIDR 10.254.0.0/16 overlaps the flannel network 10.0.0.0/8"]),
    "foreign-backend-option": ("version: 1\nnetwork:\n  backend:\n    type: host-gw\n    vni: 4\n", ["f.yaml:5:5: backend host-gw has no option 'vni' (it is a vxlan option)"]),
    "unknown-backend": ("version: 1\nnetwork:\n  backend: {type: flannel-magic}\n", ["network.backend.type must be one of vxlan, host-gw, udp, ipip, wireguard"]),
    "missing-secret": ("version: 1\netcd:\n  username: flannel\n  password_env: FW_TEST_SURELY_UNSET\n", ["f.yaml:4:17: environment variable FW_TEST_SURELY_UNSET is not set"]),
    "out-of-range": ("version: 1\nsmoke_test:\n  replicas: 0\nnetwork:\n  backend: {type: vxlan, vni: -1}\n", ["f.yaml:3:13: smoke_test.replicas is out of range", "f.yaml:5:31: network.backend.vni is out of range"]),
    "bad-enum": ("version: 1\ncgroup:\n  driver: systemd-ish\n", ["f.yaml:3:11: cgroup.driver must be 'auto', 'systemd' or 'cgroupfs'"]),
    "https-without-keys": ("version: 1\netcd:\n  endpoints: [\"https://10.0.0.5:2379\"]\n", ["https endpoints need cert_file and key_file"]),
    "duplicate-key": ("version: 1\nnetwork:\n  cidr: 10.0.0.0/16\n  cidr: 10.1.0.0/16\n", ["f.yaml:4:3: duplicate key 'network.cidr'"]),
    "not-a-mapping": ("- version: 1\n", ["f.yaml:1:1: the file must be a mapping"]),
    "prefix-with-config": ("version: 1\netcd:\n  prefix: /coreos.com/network/config\n", ["ends in /config"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_answers_are_reported_with_positions(name: str, tmp_path: Path) -> None:
    text, expected = CASES[name]
    (tmp_path / "f.yaml").write_text(text)
    result = run_wizard("validate", "f.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    for piece in expected:
        assert piece in result.stderr, f"{piece!r} not in:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    for line in result.stderr.strip().splitlines():
        assert line.startswith("f.yaml:"), line


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "version: 1\n"
        "etcd:\n  endponts: [x]\n  on_existing: overwrite\n"
        "network:\n  cidr: 10.0.0.0/8\n  service_cidr: 10.254.0.0/16\n"
        "docker:\n  bridge: this-name-is-far-too-long\n"
    )
    (tmp_path / "f.yaml").write_text(text)
    result = run_wizard("validate", str(tmp_path / "f.yaml"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[1] for line in lines] == ["3", "4", "7", "9"], result.stderr


def test_invalid_answers_touch_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for name, (text, _) in CASES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        result = run_wizard("apply", str(path), "--root", str(root), "--yes")
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr
    assert list(root.iterdir()) == []


def test_the_example_is_valid_and_plans_anywhere(tmp_path: Path) -> None:
    assert run_wizard("validate", "config.example.yaml").returncode == 0
    result = run_wizard("apply", "config.example.yaml", "--dry-run", "--root", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would create /kube-centos/network/config" in result.stdout
    assert list(tmp_path.iterdir()) == []
