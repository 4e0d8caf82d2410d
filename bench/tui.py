"""Benchmark: the wizard's speed as an operator feels it, on a real pseudo-terminal, each figure next to
its floor measured in the same run.

    .venv/bin/python bench/tui.py [--runs 7] [--keys 20] [--leases 16000] [--typed 300]

- `flannel-wizard demo` to the first frame of the Welcome page, and to the Welcome page usable (the
  preflight table filled), against bench/floor/minimal_textual.py (one heading and one field) to its
  first frame; the two start alternately, so both see the same machine;
- on the demo's etcd form, a key press to the next frame and to the frame that shows the character;
- the real wizard (not the demo) against a real etcd holding `--leases` leases in flanneld's format:
  the etcd page's Test connection reads them all (they stay in the process, as they would for an
  operator), then on the Network page a CIDR is typed and erased over and over, and each key is
  timed to its first frame and to its last (the terminal then stays quiet for QUIET seconds):
  p50/p99/max against 30 ms, next to the same keys typed into the floor app's field.
The real wizard runs as root (a real etcd on loopback, a --root in a temporary directory: it reads
this machine's links and routes and writes nothing, as it never gets past the Network page).
Not a test: it prints numbers against the targets from issue 14.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ptyterm import Terminal  # noqa: E402

DEMO = [sys.executable, "-m", "wizard", "demo"]
FLOOR = [sys.executable, str(REPO / "bench" / "floor" / "minimal_textual.py")]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
QUIET = 0.06  # no output for this long after a key: that key's frames are all drawn
PREFIX = "/coreos.com/network"
CONFIG = '{"Network": "10.0.0.0/8", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}'
# what is typed into the Network field, over and over: valid and invalid states in turn, so both
# the problems path and the checks-against-this-node path are timed
TYPED = ["10.0.0.0/8", "10.244.0.0/16", "172.30.0.0/16"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def against_floor(name: str, samples: list[float], floor: list[float], goal: float | None) -> None:
    """A median next to its floor's median, the ratio, and the issue's goal for that ratio (if it sets one)."""
    mine, base = statistics.median(samples), statistics.median(floor)
    ratio = mine / base
    line = f"{name:<46} {ms(mine)}  floor {ms(base)}  ratio {ratio:4.2f}"
    if goal is not None:
        line += f"  goal ≤ {goal:.1f}×  {'ok' if ratio <= goal else 'OVER'}"
    print(line)


def spread(name: str, samples: list[float], floor: list[float] | None, target: float) -> None:
    """p50 / p99 / max of key timings against an absolute target (and the floor's p99, when there is one)."""
    p99 = percentile(samples, 99)
    verdict = "ok" if p99 <= target else "OVER"
    line = (f"{name:<46} p50 {ms(percentile(samples, 50))}  p99 {ms(p99)}  max {ms(max(samples))}  "
            f"n={len(samples)}  target p99 ≤ {target * 1000:.0f} ms  {verdict}")
    if floor:
        fp99 = percentile(floor, 99)
        line += f"\n{'':<46} floor p50 {ms(percentile(floor, 50))}  p99 {ms(fp99)}  p99 ratio {p99 / fp99:4.2f}"
    print(line)


# ------------------------------------------------------------ the terminal


def drain(term: Terminal, quiet: float = 0.1) -> None:
    """Read until the terminal has been quiet for `quiet` seconds."""
    while select.select([term.master], [], [], quiet)[0]:
        term.output += os.read(term.master, 65536)


def next_output(term: Terminal, timeout: float = 2.0) -> float:
    """Seconds until the terminal receives anything."""
    started = time.monotonic()
    ready, _, _ = select.select([term.master], [], [], timeout)
    if not ready:
        raise TimeoutError("no frame after the key")
    term.output += os.read(term.master, 65536)
    return time.monotonic() - started


def key_frames(term: Terminal, key: bytes, timeout: float = 3.0) -> tuple[float, float]:
    """Send one key; seconds to its first frame and to its last one (after which the terminal stays quiet)."""
    t0 = time.monotonic()
    term.send(key)
    first = t0 + next_output(term, timeout)
    last = first
    while select.select([term.master], [], [], QUIET)[0]:
        term.output += os.read(term.master, 65536)
        last = time.monotonic()
    return first - t0, last - t0


def typing(term: Terminal, count: int) -> tuple[list[float], list[float]]:
    """Type the CIDRs of TYPED into the focused field, erasing each again: `count` keys, an operator's pace."""
    keys: list[bytes] = []
    while len(keys) < count:
        for text in TYPED:
            keys += [c.encode() for c in text] + [b"\x7f"] * len(text)
    first, last = [], []
    for key in keys[:count]:
        a, b = key_frames(term, key)
        first.append(a)
        last.append(b)
        time.sleep(0.03)  # with QUIET, about 10 keys a second
        drain(term, 0)
    return first, last


@contextlib.contextmanager
def started(argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Iterator[Terminal]:
    term = Terminal(argv, env=env or ENV, cwd=cwd)
    try:
        yield term
        term.send(b"\x11")  # ctrl+q
        term.wait(10)
    finally:
        term.close()


# ------------------------------------------------------------ the runs


def floor_run(keys: int) -> tuple[float, list[float], list[float]]:
    """The minimal Textual app: its first frame, and keys typed into its field."""
    with started(FLOOR) as term:
        first = term.read_until(b"Welcome", timeout=20)
        drain(term, 0.3)
        to_first, to_last = typing(term, keys)
    return first, to_first, to_last


def demo_run(keys: int) -> tuple[float, float, list[float], list[float]]:
    with started(DEMO) as term:
        first = term.read_until(b"Welcome", timeout=20)
        usable = term.read_until(b"13 of 13 checks passed", timeout=20)
        term.send(b"\x0e")  # ctrl+n: the etcd page
        term.read_until(b"where flannel keeps", timeout=10)
        drain(term, 0.3)  # the page opens with its first field focused
        to_frame, to_char = [], []
        for n in range(keys):
            char = "abcdefghijklmnopqrstuvwxyz"[n % 26]
            mark = len(term.output)
            t0 = time.monotonic()
            term.send(char.encode())
            to_frame.append(next_output(term))
            deadline = t0 + 2
            while char.encode() not in term.output[mark:]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{char!r} was not drawn")
                if select.select([term.master], [], [], 0.01)[0]:
                    term.output += os.read(term.master, 65536)
            to_char.append(time.monotonic() - t0)
            time.sleep(0.1)  # an operator's typing, not a burst
            drain(term, 0)
    return first, usable, to_frame, to_char


def fill_etcd(endpoint: str, leases: int) -> None:
    """flanneld's state for `leases` nodes: PREFIX/config, and one key per node under PREFIX/subnets/, each
    on an etcd lease of its own (flanneld's v3 registry: 10.A.B.0-24 -> its PublicIP and backend data).

    Through etcd's JSON gateway on one kept-alive connection, puts 128 to a transaction (etcd's limit):
    etcd3's generated code runs on pure-Python protobuf here, and etcdctl starts a process per call."""
    import base64
    import http.client
    import json

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    host, port = endpoint.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(path: str, body: dict[str, object]) -> dict[str, object]:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        reply = conn.getresponse()
        data = json.loads(reply.read())
        if reply.status != 200:
            raise RuntimeError(f"etcd {path}: {data}")
        return data  # type: ignore[no-any-return]

    try:
        call("/v3/kv/put", {"key": b64(f"{PREFIX}/config"), "value": b64(CONFIG)})
        puts: list[dict[str, object]] = []
        for n in range(leases):
            a, b = divmod(n + 1, 256)  # from the second subnet on, as flanneld's SubnetMin
            ip = f"192.168.{n // 250 % 250 + 1}.{n % 250 + 1}"
            mac = f"02:42:{a % 256:02x}:{b:02x}:{n % 251:02x}:{n % 241:02x}"
            value = json.dumps({"PublicIP": ip, "PublicIPv6": None, "BackendType": "vxlan",
                                "BackendData": {"VNI": 1, "VtepMAC": mac}}, separators=(",", ":"))
            lease = call("/v3/lease/grant", {"TTL": 86400})["ID"]
            puts.append({"requestPut": {"key": b64(f"{PREFIX}/subnets/10.{a}.{b}.0-24"), "value": b64(value),
                                        "lease": lease}})
            if len(puts) == 128 or n == leases - 1:
                call("/v3/kv/txn", {"success": puts})
                puts = []
    finally:
        conn.close()


def network_run(tmp: Path, endpoint: str, keys: int) -> tuple[list[float], list[float], float]:
    """The real wizard: read the leases on the etcd page, then type on the Network page."""
    from tests import nodelab

    root = tmp / "root"
    if not root.exists():
        root.mkdir()
        nodelab.seed_root(root)
    answers = tmp / "answers.yaml"
    answers.write_text(f"version: 1\netcd:\n  endpoints: [{endpoint}]\n  prefix: {PREFIX}\n  api: v3\n"
                       "  on_existing: keep\nnetwork:\n  cidr: 10.0.0.0/8\n  subnet_len: 24\n  service_cidr: 172.16.0.0/16\n"
                       "  backend: {type: vxlan}\n")
    argv = [sys.executable, "-m", "wizard", "--answers", str(answers), "--root", str(root),
            "--state-dir", str(tmp / "state")]
    with started(argv, cwd=str(tmp)) as term:
        term.read_until(b"Welcome", timeout=20)
        drain(term, 0.5)
        term.send(b"\x10")  # ctrl+p: the palette; preflight may block Next on this machine, a jump does not
        term.read_until(b"Jump to", timeout=10)
        term.send(b"Jump to etcd")
        time.sleep(0.3)
        term.send(b"\r")
        term.read_until(b"where flannel keeps", timeout=10)
        drain(term, 0.3)
        t0 = time.monotonic()
        term.send(b"\x14")  # ctrl+t: Test connection, which reads every lease
        # its result is drawn under the form, below an 80x24 screen: the mouse wheel scrolls the form
        # down until the lease count is in view (the form alone is too short to scroll that far)
        deadline = t0 + 120
        while b"lease(s) taken" not in term.output:
            if time.monotonic() > deadline:
                raise TimeoutError("the etcd page did not show the leases within 120 s")
            term.send(b"\x1b[<65;50;12M")  # SGR wheel down over the form
            with contextlib.suppress(TimeoutError):
                term.read_until(b"lease(s) taken", timeout=0.3)
        probe = time.monotonic() - t0
        drain(term, 0.5)
        term.send(b"\x0e")  # ctrl+n: the Network page
        term.read_until(b"address plan", timeout=20)
        term.read_until(b"checks against this node pass", timeout=20)
        drain(term, 0.5)
        to_first, to_last = typing(term, keys)
    return to_first, to_last, probe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7, help="starts of the demo and of the floor app")
    parser.add_argument("--keys", type=int, default=20, help="keys per run on the demo's etcd form")
    parser.add_argument("--leases", type=int, default=16000, help="leases in the real etcd")
    parser.add_argument("--typed", type=int, default=300, help="keys typed on the Network page (and into the floor)")
    parser.add_argument("--only", choices=("demo", "network"), help="only the demo's figures, or only the Network page's")
    args = parser.parse_args()

    floor_first, demo_first, demo_usable, frames, chars = [], [], [], [], []
    floor_keys_first, floor_keys_last = [], []
    for n in range(args.runs):
        # alternate which goes first: neither gets the warmer page cache every time
        order = ("floor", "demo") if n % 2 == 0 else ("demo", "floor")
        for which in order:
            if which == "demo" and args.only == "network":
                continue
            if which == "floor":
                first, a, b = floor_run(-(-args.typed // args.runs))  # as many keys in all as on the Network page
                floor_first.append(first)
                floor_keys_first += a
                floor_keys_last += b
            else:
                a1, b1, c1, d1 = demo_run(args.keys)
                demo_first.append(a1)
                demo_usable.append(b1)
                frames += c1
                chars += d1
    if args.only != "network":
        print(f"— demo start and the etcd form ({args.runs} runs each, floor: bench/floor/minimal_textual.py)")
        against_floor("demo → first frame of the Welcome page", demo_first, floor_first, 1.3)
        against_floor("demo → Welcome page usable (checks filled)", demo_usable, floor_first, None)
        spread("demo etcd form: key → next frame", frames, None, 0.05)
        spread("demo etcd form: key → frame showing the char", chars, None, 0.05)
    if args.only == "demo":
        return
    if os.geteuid() != 0 or shutil.which("etcd") is None:
        print("Network-page typing skipped: it needs root and etcd (a real etcd holding the leases)")
        return
    from tests import lab

    tmp = Path(tempfile.mkdtemp(prefix="fwbench-tui-"))
    server = lab.Etcd()
    try:
        t0 = time.monotonic()
        fill_etcd(server.endpoint, args.leases)
        print(f"— the real wizard, a real etcd with {args.leases} leases (filled in {time.monotonic() - t0:.1f} s)")
        first, last, probe = network_run(tmp, server.endpoint, args.typed)
        print(f"{'etcd page: Test connection → leases shown':<46} {ms(probe)}")
        spread("Network page: key → first frame", first, floor_keys_first, 0.03)
        spread("Network page: key → last frame of that key", last, floor_keys_last, 0.03)
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
