"""Benchmark: the smoke step's own overhead beyond waiting for pods (median of N), as root.

    sudo .venv/bin/python bench/smoke.py [--runs 5]

Uses the test lab: a node namespace with two pods serving HTTP, the Kubernetes API stand-in (which
also loads kube-proxy's rules), the real kubectl. The pods are ready at once, so the step's elapsed
time is all overhead: kubectl calls, tracing, twelve HTTP requests, cleanup. Not a test.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.podlab import make_cluster  # noqa: E402
from tests.test_smoke_step import Smoke  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    step, process = [], []
    lab = make_cluster(rules=False)
    cluster = next(lab)
    try:
        scratch = Path(tempfile.mkdtemp(prefix="fwbench-smoke-"))
        smoke = Smoke(cluster, scratch)
        try:
            smoke.start_api()
            for _ in range(args.runs):
                code, events, took = smoke.run()
                if code != 0:
                    raise SystemExit(f"the smoke step failed: {[e['message'] for e in events if e['status'] == 'failed']}")
                step.append(next(e["elapsed"] for e in reversed(events) if e["step"] == "smoke" and e["kind"] == "step"))
                process.append(took)
        finally:
            smoke.close()
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        lab.close()
    print(f"smoke step overhead: median {statistics.median(step):.2f} s, max {max(step):.2f} s (target 2 s); "
          f"whole `apply --only smoke` process median {statistics.median(process):.2f} s")


if __name__ == "__main__":
    main()
