"""Benchmark: wall time of the wizard's commands, interpreter start included (median of N runs).

    sudo .venv/bin/python bench/startup.py [--runs 9]

--help and validate run anywhere; the apply figures (full apply with smoke off, then the no-op second
run) need root: they use the test lab — a network namespace with a real etcd and the stand-ins.
Not a test: it prints numbers against the targets from the issue.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
    return took


def report(name: str, samples: list[float], target: float) -> None:
    median = statistics.median(samples)
    verdict = "ok" if median <= target else "OVER"
    print(f"{name:<34} median {median * 1000:7.1f} ms  min {min(samples) * 1000:7.1f} ms  target {target * 1000:.0f} ms  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    wizard = [sys.executable, "-m", "wizard"]
    report("flannel-wizard --help", [timed(wizard + ["--help"]) for _ in range(args.runs)], 0.15)
    report("validate config.example.yaml", [timed(wizard + ["validate", "config.example.yaml"]) for _ in range(args.runs)], 0.15)
    if os.geteuid() != 0:
        print("apply benchmarks skipped: they need root for the network namespace")
        return
    from tests import lab, nodelab

    full, noop = [], []
    for _ in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="fwbench-"))
        root = tmp / "root"
        root.mkdir()
        bin_dir = lab.standin_bin(tmp / "bin")
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FW_TEST_ROOT": str(root), "PYTHONPATH": str(REPO)}
        (tmp / "answers.yaml").write_text((REPO / "config.example.yaml").read_text().replace("  enabled: true", "  enabled: false"))
        node = nodelab.make_node(env)
        try:
            argv = node.ns.prefix() + wizard + ["apply", str(tmp / "answers.yaml"), "--root", str(root), "--yes",
                                                "--ignore-preflight-errors", nodelab.IGNORE]
            full.append(timed(argv, env))
            noop.append(timed(argv, env))
        finally:
            node.etcd.close()
            node.ns.delete()
            shutil.rmtree(tmp, ignore_errors=True)
    report("apply (full, smoke off)", full, 0.8)
    report("apply (second run, no-op)", noop, 0.6)


if __name__ == "__main__":
    main()
