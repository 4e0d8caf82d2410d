"""The mesh step's probes on real links: two namespaces on a veth pair, real ICMP and UDP from a raw socket
and connected sockets, sent from inside one namespace (the probes act on the namespace they run in)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests import lab

SEND = (
    "import json, sys\n"
    "from wizard.node.probes import send\n"
    "from wizard.node.meshinfo import Probe\n"
    "probes = [Probe(**p) for p in json.loads(sys.argv[1])]\n"
    "print(json.dumps([[r.outcome, r.detail] for r in send(probes, float(sys.argv[2]))]))\n"
)


@pytest.fixture
def pair() -> Iterator[tuple[lab.Netns, lab.Netns]]:
    a, b = lab.Netns(), lab.Netns()
    try:
        lab.run("ip", "link", "add", "fwp-a", "netns", a.name, "type", "veth", "peer", "name", "fwp-b", "netns", b.name)
        a.ip("addr", "add", "10.77.0.1/24", "dev", "fwp-a")
        b.ip("addr", "add", "10.77.0.2/24", "dev", "fwp-b")
        a.ip("link", "set", "fwp-a", "up")
        b.ip("link", "set", "fwp-b", "up")
        yield a, b
    finally:
        a.delete()
        b.delete()


def send(ns: lab.Netns, probes: list[dict], timeout: float = 1.0) -> list[list[str]]:
    done = subprocess.run(ns.prefix() + [sys.executable, "-c", SEND, json.dumps(probes), str(timeout)],
                          capture_output=True, text=True, timeout=30, cwd=lab.REPO, env={"PYTHONPATH": str(lab.REPO)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_each_outcome_as_the_kernel_gives_it(pair: tuple[lab.Netns, lab.Netns]) -> None:
    a, b = pair
    b.ip("link", "set", "fwp-b", "mtu", "1400")  # frames above 1400 die at b: a black hole, not an error
    got = send(a, [
        {"kind": "icmp", "address": "10.77.0.2"},
        {"kind": "udp", "address": "10.77.0.2", "port": 8472},
        {"kind": "icmp", "address": "10.77.0.2", "size": 1372, "df": True},
        {"kind": "icmp", "address": "10.77.0.2", "size": 1472, "df": True},
        {"kind": "icmp", "address": "10.77.0.2", "size": 1600, "df": True},
        {"kind": "icmp", "address": "192.0.2.1"},
    ])
    assert [o for o, _ in got] == ["answered", "refused", "answered", "silent", "too-big", "unreachable"]


def test_a_dropped_port_is_silent_not_refused(pair: tuple[lab.Netns, lab.Netns]) -> None:
    a, b = pair
    b.exec("iptables", "-A", "INPUT", "-p", "udp", "--dport", "8472", "-j", "DROP")
    assert send(a, [{"kind": "udp", "address": "10.77.0.2", "port": 8472}], 0.5)[0][0] == "silent"


def test_many_probes_share_one_deadline(pair: tuple[lab.Netns, lab.Netns]) -> None:
    a, _b = pair
    silent = [{"kind": "icmp", "address": f"10.77.0.{n}"} for n in range(100, 150)]
    started = time.monotonic()
    got = send(a, silent + [{"kind": "icmp", "address": "10.77.0.2"}], 1.0)
    took = time.monotonic() - started
    assert got[-1][0] == "answered"
    assert {o for o, _ in got[:-1]} <= {"silent", "unreachable"}
    assert took < 5, took  # one deadline for all fifty, not a second each (process start included)
