"""Backends and dual-stack by the installed flanneld's release: the network step refuses, before etcd gets a
config, what `flanneld --version` says this flanneld does not have (the flanneld stand-in prints the
version as flanneld does; the releases are where flannel-io/flannel's tags first hold each backend)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.engine import run_steps
from wizard import flannel


@pytest.fixture
def flanneld_at(monkeypatch: pytest.MonkeyPatch, standins: Path):  # noqa: ANN201
    """The flanneld stand-in first on PATH, printing the version the test sets."""
    monkeypatch.setenv("PATH", f"{standins}:{os.environ['PATH']}")
    return lambda version: monkeypatch.setenv("FW_FLANNELD_VERSION", version)


def network_events(tmp_path: Path, network: str) -> tuple[int, list[tuple[str, str, str]]]:
    code, events = run_steps(f"version: 1\nnetwork:\n{network}", tmp_path, ["network"], dry_run=True)
    return code, [(e.status, e.message, e.detail or "") for e in events if e.step == "network"]


def test_wireguard_on_a_flanneld_before_v0_16_is_refused_in_flannel_s_words(tmp_path: Path, flanneld_at) -> None:  # noqa: ANN001
    flanneld_at("v0.15.1")
    code, found = network_events(tmp_path, "  backend: {type: wireguard}\n")
    failed = [f for f in found if f[0] == "failed"]
    # the runner repeats a step's failure as the step's end (with "nothing was changed"): one failure, said twice
    assert code == 1 and list(dict.fromkeys(f[1] for f in failed)) == [
        "unknown backend type: wireguard — that is what flanneld v0.15.1 would say: the wireguard backend came in v0.16.0"]
    assert failed[0][2] == ("choose a backend this flanneld has (udp, vxlan, host-gw, ipip, ipsec, tencent-vpc), or "
                            "install flanneld v0.16.0 or later")
    flanneld_at("v0.16.0")
    code, found = network_events(tmp_path, "  backend: {type: wireguard}\n")
    assert code == 0 and not [f for f in found if f[0] == "failed"]


def test_dual_stack_on_a_flanneld_before_v0_15_is_refused(tmp_path: Path, flanneld_at) -> None:  # noqa: ANN001
    ipv6 = "  enable_ipv6: true\n  ipv6_cidr: fc00::/48\n"
    flanneld_at("0.14.0")
    code, found = network_events(tmp_path, ipv6)
    assert code == 1 and [f[1:] for f in found if f[0] == "failed"][0] == (
        "flanneld v0.14.0 ignores EnableIPv6 (dual-stack came in v0.15.0): this node would get no IPv6 subnet",
        "set network.enable_ipv6: false, or install flanneld v0.15.0 or later")
    assert len({f[1] for f in found if f[0] == "failed"}) == 1
    flanneld_at("v0.15.0")
    assert network_events(tmp_path, ipv6)[0] == 0


def test_the_article_s_flanneld_0_7_1_runs_vxlan(tmp_path: Path, flanneld_at) -> None:  # noqa: ANN001
    flanneld_at("0.7.1")
    code, found = network_events(tmp_path, "  backend: {type: vxlan}\n")
    assert code == 0 and not [f for f in found if f[0] == "failed"]


@pytest.mark.parametrize(("kind", "first"), sorted(flannel.BACKEND_SINCE.items()))
def test_each_backend_is_refused_just_before_its_release_only(kind: str, first: tuple[int, int, int]) -> None:
    config = {"Network": "172.30.0.0/16", "Backend": {"Type": kind}}
    before = (first[0], first[1] - 1, 0) if first[2] == 0 else (first[0], first[1], first[2] - 1)
    assert flannel.not_in_release(config, first) == []
    (what, _fix), = flannel.not_in_release(config, before)
    assert what.startswith(f"unknown backend type: {kind} — ")
