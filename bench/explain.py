"""Benchmark: `flannel-wizard explain-service NS/NAME --from DUMP` on big clusters, next to its floor.

    .venv/bin/python bench/explain.py [--services 10000,20000,40000] [--runs 5]

For each size it writes a dump in kube-proxy's format (tests/kubeproxy.py, with counters, half the
services with a node port), then measures, in the same run:
- the CLI tracing one service (interpreter start included): wall time (median of --runs) and peak
  memory (max RSS of the child, from wait4), against the dump's size;
- the floor: what an operator does by hand, a three-pass grep of the chains the trace needs
  (the service's KUBE-SERVICES line -> its KUBE-SVC chain -> its KUBE-SEP chains), in plain sh;
- `explain-service --list` on the same dump (every service: a whole-table job, no floor).
Targets from issue 14: the trace <= 0.5 s at 20 000 services and <= 4x the dump's size in memory,
growing linearly. Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.kubeproxy import Service, iptables_save  # noqa: E402

# the floor, as an operator would type it: each pass reads the whole dump again
FLOOR = r"""
set -e
svc=$(grep -F -- "\"$1 cluster IP\"" "$2" | grep -o 'KUBE-SVC-[A-Z0-9]*')
seps=$(grep -F -- "-A $svc " "$2" | grep -o -- '-j KUBE-SEP-[A-Z0-9]*' | cut -c4- | paste -sd'|')
grep -E -- "-A ($seps) .*DNAT" "$2"
"""


def services(n: int) -> list[Service]:
    """The same mix as bench/iptables.py: 1-4 endpoints, a node port on every other service."""
    return [Service(f"ns{i % 7}", f"svc{i}", f"10.{96 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}", 80,
                    [f"10.244.{i % 200}.{j + 2}:8080" for j in range(1 + i % 4)],
                    node_port=30000 + i % 2000 if i % 2 else None) for i in range(n)]


# The child is started and waited for by a small launcher, never by this process: a child's peak RSS
# (ru_maxrss) counts the memory of the process it was started from (posix_spawn shares it until exec),
# and this one holds the cluster's services and a dump. The launcher is a bare python, smaller than
# any child measured here, and it times the child itself, so its own start is not counted.
LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
actions = [(os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
           (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
started = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run(argv: list[str], out: Path) -> tuple[float, int, int]:
    """(wall seconds, max RSS in KiB, exit status) of one run of `argv`, its standard output to `out`."""
    done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(out), *argv], capture_output=True, text=True,
                          check=True)
    took, peak, code = done.stdout.split()
    return float(took), int(peak), int(code)


def measure(commands: list[list[str]], out: Path, runs: int) -> list[tuple[float, int, str]]:
    """For each command: the median wall time, the largest max RSS and the output of its last run, over
    `runs` runs taken in turn (a, b, a, b, ...), so that a busy moment of the machine weighs on each
    alike; a run that fails stops the benchmark."""
    walls: list[list[float]] = [[] for _ in commands]
    peaks: list[list[int]] = [[] for _ in commands]
    texts = [""] * len(commands)
    for _ in range(runs):
        for i, argv in enumerate(commands):
            took, peak, code = run(argv, out)
            if code != 0:
                raise SystemExit(f"{' '.join(argv)} exited {code}:\n{out.read_text()[:2000]}")
            walls[i].append(took)
            peaks[i].append(peak)
            texts[i] = out.read_text()
    return [(statistics.median(w), max(p), t) for w, p, t in zip(walls, peaks, texts, strict=True)]


def growth(rows: list[tuple[int, int, float, int, float]], text: str, timed: str) -> None:
    """How each figure grew from one size to the next (rows of services, text size, time, peak RSS,
    floor): linear growth is x2.00 for a doubled cluster."""
    for (n0, size0, wall0, peak0, floor0), (n1, size1, wall1, peak1, floor1) in zip(rows, rows[1:], strict=False):
        print(f"{n0} -> {n1} services: {text} x{size1 / size0:.2f}, {timed} x{wall1 / wall0:.2f}, "
              f"peak RSS x{peak1 / peak0:.2f}, floor x{floor1 / floor0:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", default="10000,20000,40000", help="comma-separated cluster sizes")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-list", action="store_true", help="skip `explain-service --list`")
    args = parser.parse_args()
    wizard = shutil.which("flannel-wizard", path=str(Path(sys.executable).parent))
    sh = shutil.which("sh")
    if wizard is None or sh is None:
        raise SystemExit("needs the venv's flannel-wizard script and sh")
    tmp = Path(tempfile.mkdtemp(prefix="fw-explain-bench-"))
    out = tmp / "out"
    floor_script = tmp / "floor.sh"
    floor_script.write_text(FLOOR)
    print(f"{'services':>8} {'dump':>9} {'trace':>9} {'peak RSS':>9} {'RSS/dump':>8} {'floor':>8} {'ratio':>6}"
          f" {'--list':>9} {'list RSS':>9}")
    rows: list[tuple[int, int, float, int, float]] = []  # services, dump bytes, wall, peak KiB, floor
    try:
        for n in (int(x) for x in args.services.split(",")):
            many = services(n)
            dump = tmp / f"{n}.rules"
            dump.write_text(iptables_save(many, counters=True, saved=True))  # as iptables-save prints it
            size = dump.stat().st_size
            target = many[n // 2 | 1]  # one in the middle, with a node port: both branches are traced
            name = f"{target.namespace}/{target.name}"
            (wall, peak, text), (floor, _, floor_text) = measure(
                [[wizard, "explain-service", name, "--from", str(dump)], [sh, str(floor_script), name, str(dump)]],
                out, args.runs)
            if not all(f"DNAT {ep}" in text for ep in target.endpoints):
                raise SystemExit(f"the trace of {name} misses an endpoint:\n{text}")
            if floor_text.count("DNAT") != len(target.endpoints):
                raise SystemExit(f"the floor did not find {name}'s endpoints:\n{floor_text}")
            listed = "-"
            list_peak = "-"
            if not args.no_list:
                [(list_wall, list_rss, listing)] = measure([[wizard, "explain-service", "--list", "--from", str(dump)]],
                                                           out, max(1, args.runs // 2))
                if listing.count("\n") != n + 1:
                    raise SystemExit(f"--list printed {listing.count(chr(10))} lines for {n} services")
                listed, list_peak = f"{list_wall * 1000:.0f} ms", f"{list_rss / 1024:.0f} MiB"
            print(f"{n:>8} {size / (1 << 20):>5.1f} MiB {wall * 1000:>6.0f} ms {peak / 1024:>5.0f} MiB "
                  f"{peak * 1024 / size:>7.2f}x {floor * 1000:>5.1f} ms {wall / floor:>5.1f}x {listed:>9} {list_peak:>9}",
                  flush=True)
            rows.append((n, size, wall, peak, floor))
            dump.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    growth(rows, "dump", "trace")
    print("targets: trace <= 500 ms at 20000 services, peak RSS <= 4x the dump, both growing linearly")


if __name__ == "__main__":
    main()
