"""Benchmark: parsing and tracing a large nat table in-process, as `explain-service` does on a big
cluster (bench/explain.py measures the whole command against its floor); and splitting every rule,
as `--list` does.

    .venv/bin/python bench/iptables.py [--services 2000]

Rules are generated in kube-proxy's format, in iptables-save's order (tests/kubeproxy.py). Not a
test: it prints numbers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.kubeproxy import Service, iptables_save  # noqa: E402
from wizard import iptables  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    many = [Service(f"ns{i % 7}", f"svc{i}", f"10.96.{i // 250}.{i % 250 + 1}", 80,
                    [f"10.244.{i % 200}.{j + 2}:8080" for j in range(1 + i % 4)],
                    node_port=30000 + i % 2000 if i % 2 else None) for i in range(args.services)]
    text = iptables_save(many, counters=True, saved=True)
    parse_s, trace_s, list_s = [], [], []
    split = passes = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ruleset = iptables.parse(text)
        t1 = time.perf_counter()
        iptables.trace(ruleset, "ns0", f"svc{args.services // 2 // 7 * 7}")
        t2 = time.perf_counter()
        split, passes = ruleset.split, ruleset.passes
        with iptables.collector_paused():  # as explain-service --list runs it
            iptables.service_ports(iptables.parse(text))
        list_s.append(time.perf_counter() - t2)
        trace_s.append(t2 - t1)
        parse_s.append(t1 - t0)
    lines = len(text.splitlines())
    print(f"{args.services} services, {lines} lines: parse median {statistics.median(parse_s) * 1000:.0f} ms, "
          f"trace median {statistics.median(trace_s) * 1000:.1f} ms ({split} rules split, {passes} passes), "
          f"every service port (--list) median {statistics.median(list_s) * 1000:.0f} ms")

if __name__ == "__main__":
    main()
