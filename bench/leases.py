"""Benchmark: flannel leases at cluster scale (issue 14), against a real etcd.

    .venv/bin/python bench/leases.py [--leases 16000] [--runs 7]

Starts a throw-away etcd (tests/lab.py), puts N leases under PREFIX/subnets/ in flanneld's own format
(key `10.x.y.0-24`, the JSON value flanneld writes, each key attached to a 24 h etcd lease as flanneld's
transaction does), then measures in the same run, medians of --runs:

- floor: `etcdctl get --prefix PREFIX/subnets/` (a process of its own, output read through a pipe);
- the etcd step as the engine runs it: `flannel-wizard plan FILE --only etcd --output json` (a process of
  its own), the step's own `elapsed` from its result line: inspect (the connection, which imports etcd3
  and gRPC on a process's first etcd call, and the reads) and plan; also the wall time of that command
  and how many lines its text output (no --verbose) has;
- importing etcd3 + gRPC in a fresh interpreter, and the step's elapsed without it;
- the same step in this process once those are imported (connection, inspect, plan), and apart: the
  lease read and the plan;
- lease look-ups: LeaseIndex built from the N leases, then 100 endpoints looked up, against 50 ms.

Not a test: it prints numbers. etcd, its data dir and the answers file are removed at the end, failure included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import lab, leasefill  # noqa: E402

PREFIX = "/coreos.com/network"
LOOKUP_BUDGET_S = 0.050
STEP_RATIO_GOAL = 1.5


def median_s(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def wizard(*args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(lab.REPO)}
    return subprocess.run(lab.wizard_argv(*args), capture_output=True, text=True, timeout=120, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def step_elapsed(result: subprocess.CompletedProcess[str]) -> float:
    """The etcd step's own elapsed from `--output json`'s closing result line."""
    for line in result.stdout.splitlines():
        data = json.loads(line)
        if "result" in data:
            return float(next(s["elapsed"] for s in data["result"]["steps"] if s["name"] == "etcd"))
    raise RuntimeError(f"no result line: {result.stdout[-500:]} {result.stderr[-500:]}")


def import_cost(runs: int) -> float:
    """Importing etcd3 (and with it gRPC and protobuf) as the step's first etcd call does in a fresh process,
    through wizard.node.etcd.load_v3: median over fresh interpreters."""
    code = ("import time; t = time.perf_counter(); from wizard.node.etcd import load_v3; load_v3(); "
            "print(time.perf_counter() - t)")
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout) for _ in range(runs))


def in_process(endpoint: str, root: str, runs: int) -> tuple[float, float, float, list[tuple[str, str]]]:
    """(whole step, lease read alone, plan alone) medians, and the leases read (for the look-ups)."""
    from wizard.answers import parse
    from wizard.node import Node
    from wizard.steps import Context
    from wizard.steps import etcd as step

    answers = parse(leasefill.answers(endpoint, PREFIX))
    node = Node(root)
    try:
        def whole() -> None:
            ctx = Context(answers, node, dry_run=True)
            try:
                step.plan(answers, step.inspect(ctx))
            finally:
                ctx.close()

        ctx = Context(answers, node, dry_run=True)
        try:
            store = ctx.store()
            leases = store.list(PREFIX + "/subnets/")
            read = median_s(lambda: store.list(PREFIX + "/subnets/"), runs)
            facts = step.inspect(ctx)
            planned = median_s(lambda: step.plan(answers, facts), runs)
        finally:
            ctx.close()
        whole()  # warm: the first connection pays for etcd3's and gRPC's imports
        return median_s(whole, runs), read, planned, leases
    finally:
        node.close()


def lookups(leases: list[tuple[str, str]], runs: int) -> tuple[float, int]:
    """LeaseIndex built from the leases, then 100 endpoints (pod addresses spread over the leases) looked up."""
    from wizard import flannel

    step = max(1, len(leases) // 100)
    endpoints = [f"10.{(i * step + 1) // 256}.{(i * step + 1) % 256}.7" for i in range(100)]
    found = 0

    def run() -> None:
        nonlocal found
        index = flannel.LeaseIndex(leases)
        found = sum(index.holding(ip) is not None for ip in endpoints)

    return median_s(run, runs), found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leases", type=int, default=16_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="fwbench-leases-")
    server: lab.Etcd | None = None
    try:
        server = lab.Etcd()
        leasefill.fill(server.endpoint, PREFIX, args.leases)
        answers = Path(work, "answers.yaml")
        answers.write_text(leasefill.answers(server.endpoint, PREFIX))
        root = Path(work, "root")
        root.mkdir()
        plan = ("plan", str(answers), "--only", "etcd", "--root", str(root), "--state-dir", str(Path(work, "state")))

        floor = median_s(lambda: server.ctl("get", "--prefix", PREFIX + "/subnets/"), args.runs)  # type: ignore[union-attr]
        listed = server.ctl("get", "--prefix", "--keys-only", PREFIX + "/subnets/").stdout.split()
        text = wizard(*plan, cwd=work)
        if text.returncode != 0:
            raise RuntimeError(f"plan failed ({text.returncode}): {text.stdout[-1500:]} {text.stderr[-1500:]}")
        walls, elapsed = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            done = wizard(*plan, "--output", "json", cwd=work)
            walls.append(time.perf_counter() - t0)
            elapsed.append(step_elapsed(done))
        step_s = statistics.median(elapsed)
        whole, read, planned, leases = in_process(server.endpoint, str(root), args.runs)
        index_s, found = lookups(leases, args.runs)
        imports = import_cost(args.runs)

        print(f"{len(listed)} leases in a real etcd {server.ctl('version').stdout.split()[2]}; medians of {args.runs}")
        print(f"floor   etcdctl get --prefix {PREFIX}/subnets/         {floor * 1000:7.1f} ms")
        print(f"etcd step (plan --only etcd, the step's elapsed)        {step_s * 1000:7.1f} ms   "
              f"{step_s / floor:.2f}× the floor (goal ≤ {STEP_RATIO_GOAL}×)")
        print(f"  that command's wall time (imports, teardown included) {statistics.median(walls) * 1000:7.1f} ms; "
              f"its text output: {len(text.stdout.splitlines())} lines")
        print(f"  of which importing etcd3 + gRPC (a process's first etcd call pays it) {imports * 1000:.1f} ms; "
              f"the step without it {(step_s - imports) * 1000:.1f} ms = {(step_s - imports) / floor:.2f}× the floor")
        print(f"  in this process (imports done): connect+inspect+plan {whole * 1000:.1f} ms = {whole / floor:.2f}× the "
              f"floor; apart: lease read {read * 1000:.1f} ms, plan {planned * 1000:.1f} ms")
        print(f"lease look-ups: LeaseIndex over {len(leases)} leases + 100 endpoints  {index_s * 1000:7.1f} ms   "
              f"(goal ≤ {LOOKUP_BUDGET_S * 1000:.0f} ms; {found}/100 found)")
    finally:
        if server is not None:
            server.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
