"""Benchmark: tracing one service in kube-proxy's nftables mode on big clusters, next to its floor.

    .venv/bin/python bench/nftables.py [--services 10000,20000,40000] [--runs 5]

For each size it writes the text `nft list ruleset` prints for kube-proxy's tables (tests/kubeproxy_nft.py's
`listing`, checked line for line against the real nft in tests/test_nftables.py; loading 20 000 services
into the kernel here would take minutes), then measures, in the same run:
- a child python reading the listing, `nftables.parse` and `nftables.trace` of one service: the time
  of read + parse + trace inside the child (median of --runs), the child's whole wall time (interpreter
  start included) and its peak memory (max RSS, from wait4), against the listing's size;
- the command itself, `flannel-wizard explain-service NS/NAME --from LISTING` (format detection and
  the tree printed included): its wall time and peak memory, as bench/explain.py measures iptables mode;
- the floor: what an operator does by hand, three grep passes over the listing (the service's
  service-ips element -> its service chain's numgen line -> its endpoint chains' dnat rules), in sh.
Targets (as for iptables mode, bench/explain.py): the trace <= 0.5 s at 20 000 services and <= 4x the
listing's size in memory. Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.explain import growth, measure  # noqa: E402  (the launcher that measures a child alone)
from tests.kubeproxy_nft import Service, listing  # noqa: E402

FLOOR = r"""
set -e
svc=$(grep -F -- "-$1/" "$2" | grep -F ' : goto service-' | grep -o 'service-[A-Z2-7]*-[^ ,]*' | head -1)
eps=$(grep -F -A3 -- "chain $svc {" "$2" | grep -o 'goto endpoint-[^ ,]*' | cut -c6- | paste -sd'|')
grep -E -A3 -- "chain ($eps) \{" "$2" | grep 'dnat to'
"""

CHILD = """
import sys, time
started = time.perf_counter()
from wizard import nftables
with open(sys.argv[1]) as f:
    text = f.read()
path = nftables.trace(nftables.parse(text), sys.argv[2], sys.argv[3])
print(time.perf_counter() - started)
print("\\n".join(path.endpoints))
"""


def services(n: int) -> list[Service]:
    """bench/explain.py's mix (1-4 endpoints, a node port on every other service), and every 50th with
    ClientIP affinity and every 100th without endpoints, as a real cluster has some."""
    return [Service(f"ns{i % 7}", f"svc{i}", f"172.{16 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}", 80,
                    [] if i % 100 == 99 else [f"10.{i % 200}.{i // 200 % 250}.{j + 2}:8080" for j in range(1 + i % 4)],
                    node_port=30000 + i % 2000 if i % 2 else None,
                    affinity=10800 if i % 50 == 7 else None) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", default="10000,20000,40000", help="comma-separated cluster sizes")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sh = shutil.which("sh")
    if sh is None:
        raise SystemExit("needs sh")
    os.environ["PYTHONPATH"] = str(REPO)
    tmp = Path(tempfile.mkdtemp(prefix="fw-nft-bench-"))
    out = tmp / "out"
    floor_script = tmp / "floor.sh"
    floor_script.write_text(FLOOR)
    print(f"{'services':>8} {'listing':>9} {'trace':>9} {'child':>9} {'peak RSS':>9} {'RSS/dump':>8} {'command':>9} "
          f"{'its RSS':>8} {'floor':>8} {'ratio':>6}", flush=True)
    rows: list[tuple[int, int, float, int, float]] = []
    try:
        for n in (int(x) for x in args.services.split(",")):
            many = services(n)
            dump = tmp / f"{n}.nft"
            dump.write_text(listing(many))
            size = dump.stat().st_size
            target = many[n // 2 | 1]  # one in the middle, with a node port: both branches are traced
            walls, traces = [], []
            floor_walls, peaks, cli_walls, cli_peaks = [], [], [], []
            for _ in range(args.runs):  # taken in turn, so that a busy moment weighs on each alike
                [(wall, peak, text), (cli, cli_peak, cli_text), (floor, _, floor_text)] = measure(
                    [[sys.executable, "-c", CHILD, str(dump), target.namespace, target.name],
                     [sys.executable, "-m", "wizard", "explain-service", f"{target.namespace}/{target.name}",
                      "--from", str(dump)],
                     [sh, str(floor_script), f"{target.namespace}/{target.name}", str(dump)]], out, 1)
                if f"{len(target.endpoints)} endpoint(s) reached" not in cli_text:
                    raise SystemExit(f"the command did not trace {target.namespace}/{target.name}:\n{cli_text}")
                cli_walls.append(cli)
                cli_peaks.append(cli_peak)
                took, *found = text.split()
                if found != sorted(target.endpoints):
                    raise SystemExit(f"the trace of {target.namespace}/{target.name} found {found}")
                if floor_text.count("dnat to") != len(target.endpoints):
                    raise SystemExit(f"the floor did not find the endpoints:\n{floor_text}")
                walls.append(wall)
                traces.append(float(took))
                peaks.append(peak)
                floor_walls.append(floor)
            trace, wall, floor = statistics.median(traces), statistics.median(walls), statistics.median(floor_walls)
            peak = max(peaks)
            cli, cli_peak = statistics.median(cli_walls), max(cli_peaks)
            print(f"{n:>8} {size / (1 << 20):>5.1f} MiB {trace * 1000:>6.0f} ms {wall * 1000:>6.0f} ms "
                  f"{peak / 1024:>5.0f} MiB {peak * 1024 / size:>7.2f}x {cli * 1000:>6.0f} ms "
                  f"{cli_peak * 1024 / size:>7.2f}x {floor * 1000:>5.1f} ms {cli / floor:>5.1f}x", flush=True)
            rows.append((n, size, wall, peak, floor))
            dump.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    growth(rows, "listing", "child")
    print("trace: read + parse + trace inside the child; child: its whole run, interpreter start included; "
          "command: explain-service itself; ratio: the command against the floor")
    print("targets: trace <= 500 ms at 20000 services, peak RSS <= 4x the listing, both growing linearly")


if __name__ == "__main__":
    main()
