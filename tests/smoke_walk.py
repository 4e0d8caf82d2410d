"""Run the smoke test's kube-proxy and traffic sub-steps on the real node this process is in (the
tests start it inside a node namespace with `ip netns exec`), and print the result as JSON.

  python -m tests.smoke_walk NAMESPACE NAME NODE_ADDRESS [TRIES]
"""

from __future__ import annotations

import json
import sys

from wizard import smokecheck
from wizard.node import Node


def main() -> int:
    namespace, name, address = sys.argv[1:4]
    tries = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    node = Node()
    note, found = smokecheck.rules_check(node, namespace, name)
    out: dict[str, object] = {"rules": [note.status, note.message, note.detail]}
    if found is not None and found.complete:
        traffic, targets = smokecheck.traffic_check(node, found, address, tries=tries, timeout=1.0)
        out["traffic"] = [traffic.status, traffic.message, traffic.detail]
        out["targets"] = {t.label: {"answered": t.answered, "tries": t.tries, "served": dict(t.served)} for t in targets}
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
