"""Benchmark: `flannel-wizard check --only mesh` on a node of the multi-node lab (tests/meshlab.py), wall time
with the interpreter's start, median of N runs: 3 real vxlan nodes, then 50 (47 more leases whose PublicIPs
answer ping on the underlay and nothing else — the worst case, every one of them waits out the deadline).

    sudo .venv/bin/python bench/mesh.py [--runs 5]

Not a test: it prints numbers against the issue's target (50 nodes in 3 s or less).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_50 = 3.0


def timed_check(mesh, node) -> tuple[float, dict]:  # type: ignore[no-untyped-def]
    from tests import lab

    t0 = time.perf_counter()
    done = mesh.run_in(node, lab.wizard_argv("check", str(mesh.answers(node)), "--root", str(node.root), "--only",
                                             "mesh", "--output", "json"), timeout=60)
    took = time.perf_counter() - t0
    result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
    return took, next(s for s in result["steps"] if s["name"] == "mesh")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from tests.meshlab import mesh_lab

    with mesh_lab() as mesh:
        node = mesh.nodes[0]
        for label, fakes in (("3 nodes (all healthy)", 0), ("50 nodes (47 answer only ping)", 47)):
            if fakes:
                mesh.add_fake_leases(fakes)
            samples, step = [], {}
            for _ in range(args.runs):
                took, step = timed_check(mesh, node)
                samples.append(took)
            peers = [c for c in step["checks"] if c["subject"]]
            ok = sum(1 for c in peers if c["status"] == "ok")
            median = statistics.median(samples)
            verdict = "" if not fakes else ("  ok" if median <= TARGET_50 else "  OVER")
            print(f"check --only mesh, {label:<32} median {median:5.2f} s  min {min(samples):5.2f} s  "
                  f"(step {step['elapsed']:.2f} s; {ok}/{len(peers)} peers ok){verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
