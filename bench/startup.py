"""Benchmark: the wizard's commands against their floors, measured in the same run (median of N).

    sudo .venv/bin/python bench/startup.py [--runs 9]

Each figure is printed next to its floor and the ratio, because absolute times on a shared machine
swing by a third from one minute to the next while the ratio of two things measured side by side does
not:
- `--help`            against the venv's bare `python -c pass`;
- `validate`          against bench/floor/validate.py (yaml + a small pydantic model of the same file);
- full `apply`        against bench/floor/apply.sh (the same changes and read-backs in plain sh);
- no-op `apply`       against bench/floor/noop.sh (the same read-backs in plain sh).
The apply figures need root: each run takes two fresh lab nodes (a network namespace with a real etcd
and the stand-ins, tests/nodelab.py), one for the wizard and one for the sh floor. Runs alternate
between the two so that a slow minute costs both. Not a test: it prints numbers against the issue's
targets (issue 14).
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLOOR = REPO / "bench" / "floor"
sys.path.insert(0, str(REPO))

# the most each figure may be, as a multiple of its floor (issue 14)
TARGETS = {"--help": 2.0, "validate": 1.1, "apply (full, smoke off)": 2.5, "apply (no-op)": 6.0}


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=120)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
    return took


def report(name: str, ours: list[float], floor: list[float], floor_name: str) -> None:
    mine, base = statistics.median(ours), statistics.median(floor)
    ratio = mine / base
    target = TARGETS[name]
    verdict = "ok" if ratio <= target else "OVER"
    print(f"{name:<24} {mine * 1000:7.1f} ms   floor {base * 1000:7.1f} ms ({floor_name})   "
          f"ratio {ratio:4.2f}  target ≤ {target:g}  {verdict}")


def paired(runs: int, ours: Callable[[], float], floor: Callable[[], float]) -> tuple[list[float], list[float]]:
    a, b = [], []
    for n in range(runs):
        # alternate which goes first: neither always gets the warm cache
        if n % 2:
            b.append(floor())
            a.append(ours())
        else:
            a.append(ours())
            b.append(floor())
    return a, b


def lab_apply(script: str | None) -> tuple[float, float]:
    """(full, no-op) seconds on a fresh lab node: the wizard's apply twice, or the sh floor's two scripts."""
    from tests import lab, nodelab

    tmp = Path(tempfile.mkdtemp(prefix="fwbench-"))
    node = None
    try:
        root = tmp / "root"
        root.mkdir()
        bin_dir = lab.standin_bin(tmp / "bin")
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FW_TEST_ROOT": str(root),
               "PYTHONPATH": str(REPO)}
        answers = tmp / "answers.yaml"
        answers.write_text((REPO / "config.example.yaml").read_text().replace("  enabled: true", "  enabled: false"))
        node = nodelab.make_node(env)
        if script is None:
            argv = node.ns.prefix() + [sys.executable, "-m", "wizard", "apply", str(answers), "--root", str(root),
                                       "--yes", "--ignore-preflight-errors", nodelab.IGNORE]
            return timed(argv, env), timed(argv, env)
        return (timed(node.ns.prefix() + ["sh", str(FLOOR / "apply.sh")], env),
                timed(node.ns.prefix() + ["sh", str(FLOOR / "noop.sh")], env))
    finally:
        if node is not None:
            node.etcd.close()
            node.ns.delete()
        shutil.rmtree(tmp, ignore_errors=True)


def compiled() -> None:
    """Byte-compile the wizard as installing its wheel does: with PYTHONDONTWRITEBYTECODE set (as it is on
    this machine) an editable checkout would otherwise compile every changed module on every start."""
    import compileall

    for package in ("wizard", "screens"):
        compileall.compile_dir(str(REPO / package), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    compiled()
    py = sys.executable
    wizard = [py, "-m", "wizard"]
    example = str(REPO / "config.example.yaml")
    report("--help", *paired(args.runs, lambda: timed(wizard + ["--help"]), lambda: timed([py, "-c", "pass"])),
           "python -c pass")
    report("validate", *paired(args.runs, lambda: timed(wizard + ["validate", example]),
                               lambda: timed([py, str(FLOOR / "validate.py"), example])),
           "yaml + small pydantic model")
    if os.geteuid() != 0:
        print("apply benchmarks skipped: they need root for the network namespace")
        return
    ours: list[tuple[float, float]] = []
    floor: list[tuple[float, float]] = []
    for n in range(args.runs):
        pair = (lambda: lab_apply(None), lambda: lab_apply("sh"))
        first, second = pair if n % 2 == 0 else pair[::-1]
        a, b = first(), second()
        ours_now, floor_now = (a, b) if n % 2 == 0 else (b, a)
        ours.append(ours_now)
        floor.append(floor_now)
    report("apply (full, smoke off)", [o[0] for o in ours], [f[0] for f in floor], "bench/floor/apply.sh")
    report("apply (no-op)", [o[1] for o in ours], [f[1] for f in floor], "bench/floor/noop.sh")


if __name__ == "__main__":
    main()
