"""Benchmark: the wizard's speed as an operator feels it, on a real pseudo-terminal (median of N).

    .venv/bin/python bench/tui.py [--runs 7]

- `flannel-wizard demo` to the first frame of the Welcome page, and to the preflight table filled;
- on the etcd form, a key press to the next frame the terminal receives, and to the frame that shows
  the typed character.
Needs no root and changes nothing (the demo's simulated node). Not a test: it prints numbers
against the targets from the issue.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ptyterm import Terminal  # noqa: E402

ARGV = [sys.executable, "-m", "wizard", "demo"]


def report(name: str, samples: list[float], target: float) -> None:
    median = statistics.median(samples)
    verdict = "ok" if median <= target else "OVER"
    print(f"{name:<44} median {median * 1000:7.1f} ms  max {max(samples) * 1000:7.1f} ms  "
          f"target {target * 1000:.0f} ms  {verdict}")


def next_output(term: Terminal, timeout: float = 2.0) -> float:
    """Seconds until the terminal receives anything."""
    started = time.monotonic()
    ready, _, _ = select.select([term.master], [], [], timeout)
    if not ready:
        raise TimeoutError("no frame after the key")
    term.output += os.read(term.master, 65536)
    return time.monotonic() - started


def one_run(keys: int) -> tuple[float, float, list[float], list[float]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    term = Terminal(ARGV, env=env)
    try:
        first = term.read_until(b"Welcome", timeout=20)
        filled = term.read_until(b"13 of 13 checks passed", timeout=20)
        term.send(b"\x0e")  # ctrl+n: the etcd page
        term.read_until(b"where flannel keeps", timeout=10)
        time.sleep(0.3)  # the page opens with its first field focused
        while select.select([term.master], [], [], 0.1)[0]:
            term.output += os.read(term.master, 65536)
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
            while select.select([term.master], [], [], 0)[0]:
                term.output += os.read(term.master, 65536)
        term.send(b"\x11")  # ctrl+q
        term.wait(10)
        return first, filled, to_frame, to_char
    finally:
        term.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keys", type=int, default=10)
    args = parser.parse_args()
    firsts, filled, frames, chars = [], [], [], []
    for _ in range(args.runs):
        a, b, c, d = one_run(args.keys)
        firsts.append(a)
        filled.append(b)
        frames += c
        chars += d
    report("demo → first frame of the Welcome page", firsts, 0.8)
    report("demo → preflight table filled", filled, 0.8)
    report("etcd form: key → next frame", frames, 0.05)
    report("etcd form: key → frame showing the character", chars, 0.05)


if __name__ == "__main__":
    main()
