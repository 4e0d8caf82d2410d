"""explain-service's engine (wizard/explain.py) called directly on saved iptables-save text: the typed
outcome for a path, a service without endpoints and a missing service; kubectl and the iptables-save
run go through the node's commands, answered here by a stand-in that records what was asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from tests import lab
from tests.kubeproxy import Service, iptables_save
from wizard.errors import InputError, WizardError
from wizard.explain import LIVE, EndpointLabel, explain
from wizard.node import Node
from wizard.node.commands import Result

WEB = Service("default", "example-service", "10.254.124.145", 8080, ["172.30.38.2:8080", "172.30.46.2:8080"],
              node_port=30554)
EMPTY = Service("default", "empty", "10.254.0.9", 80, [])
RULES = iptables_save([WEB, EMPTY])


class Commands:
    """Answers `run` from a table keyed by the program's name, and records every call."""

    def __init__(self, answers: dict[str, Result]) -> None:
        self.answers = answers
        self.calls: list[tuple[tuple[str, ...], float]] = []

    def run(self, *argv: str, timeout: float = 30.0, input: str | None = None) -> Result:
        self.calls.append((argv, timeout))
        return self.answers[argv[0]]


class FakeNode:
    def __init__(self, **answers: Result) -> None:
        self.commands = Commands(answers)

    def etcd(self, settings: Any, password: str | None) -> Any:
        raise AssertionError("no answers given: etcd must not be asked")


def node(**answers: Result) -> Node:
    return cast("Node", FakeNode(**answers))


def test_a_service_with_a_path() -> None:
    found = explain(node(), "default", "example-service", rules=RULES, source="node2.rules")
    assert (found.outcome, found.exit_code) == ("path", 0)
    assert found.service == "default/example-service" and found.source == "node2.rules"
    assert found.trace.endpoints == WEB.endpoints
    assert [b.kind for b in found.trace.branches] == ["cluster IP", "node port"]
    assert (found.problem, found.hint, found.suggestion, found.warnings, found.labels) == ("", "", None, [], {})


def test_a_service_without_endpoints() -> None:
    found = explain(node(), "default", "empty", rules=RULES)
    assert (found.outcome, found.exit_code) == ("no-endpoints", 1)
    assert found.trace.endpoints == [] and found.trace.no_endpoints[0].comment == "default/empty has no endpoints"
    assert found.problem == "default/empty has rules but kube-proxy rejects it: the service has no endpoints"
    assert found.hint == "check that its pods are ready (kubectl get endpoints empty -n default)"


def test_a_missing_service_says_did_you_mean() -> None:
    found = explain(node(), "default", "exampel-service", rules=RULES, source="node2.rules")
    assert (found.outcome, found.exit_code) == ("no-rules", 1)
    assert found.suggestion == "default/example-service"
    assert found.problem == "no kube-proxy rules for default/exampel-service in node2.rules"
    assert found.hint == ("did you mean default/example-service? "
                          "check that kube-proxy runs on this node and that the service exists")
    far = explain(node(), "kube-system", "dns", rules=RULES)
    assert far.outcome == "no-rules" and far.suggestion is None and not far.hint.startswith("did you mean")


def test_a_dump_without_a_nat_table_or_in_nftables_mode() -> None:
    filter_only = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
    found = explain(node(), "default", "example-service", rules=filter_only)
    assert found.outcome == "no-rules" and "the dump has no nat table" in found.hint
    nft = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m comment --comment \"kube-proxy\" -j ACCEPT\nCOMMIT\n"
    assert "nftables mode" in explain(node(), "default", "example-service", rules=nft).hint


def test_text_that_is_not_iptables_save_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"^notes.txt is not iptables-save output: line 1: expected a table line"):
        explain(node(), "default", "example-service", rules="NAME TYPE\n", source="notes.txt")


def test_the_live_rules_come_from_the_nodes_iptables_save() -> None:
    fake = node(**{"iptables-save": Result(("iptables-save",), 0, RULES, "")})
    found = explain(fake, "default", "example-service")
    assert found.outcome == "path" and found.source == LIVE
    assert cast("Any", fake).commands.calls == [(("iptables-save",), 15)]
    failing = node(**{"iptables-save": Result(("iptables-save",), 4, "", "Permission denied (you must be root)")})
    with pytest.raises(WizardError, match="iptables-save failed: Permission denied"):
        explain(failing, "default", "example-service")


def test_kubectl_names_each_endpoints_pod_and_node() -> None:
    endpoints = {"subsets": [{
        "addresses": [{"ip": "172.30.38.2", "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "web-a"}}],
        "notReadyAddresses": [{"ip": "172.30.46.2"}],
    }]}
    fake = node(kubectl=Result(("kubectl",), 0, json.dumps(endpoints), ""))
    found = explain(fake, "default", "example-service", rules=RULES, kubeconfig="/etc/kubernetes/admin.conf")
    assert found.labels == {"172.30.38.2": EndpointLabel("172.30.38.2", "web-a", "node-1"),
                            "172.30.46.2": EndpointLabel("172.30.46.2", "?", None)}
    assert found.label_texts() == {"172.30.38.2": "pod web-a on node-1", "172.30.46.2": "pod ?"}
    (argv, timeout), = cast("Any", fake).commands.calls
    assert argv[:3] == ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf") and timeout == 15
    assert "endpoints/example-service" in argv
    # an API server that does not answer costs the names, not the tree
    down = node(kubectl=Result(("kubectl",), 1, "", "The connection to the server was refused"))
    found = explain(down, "default", "example-service", rules=RULES, kubeconfig="/etc/kubernetes/admin.conf")
    assert found.outcome == "path" and found.labels == {}
    assert found.warnings == ["no pod names: kubectl said The connection to the server was refused"]


def test_a_label_joins_pod_and_lease() -> None:
    lease = "node subnet 172.30.38.0/24 (192.168.56.11)"
    assert str(EndpointLabel("172.30.38.2", "web-a", "node-1", lease)) == f"pod web-a on node-1, {lease}"
    assert str(EndpointLabel("172.30.38.2", lease=lease)) == lease


def test_explaining_a_saved_dump_imports_nothing_heavy(tmp_path: Path) -> None:
    """etcd3/grpc only with --answers, sh only when a command runs, never pyroute2 or Textual."""
    dump = tmp_path / "rules"
    dump.write_text(RULES)
    code = (
        "import sys\n"
        "from wizard.cli import main\n"
        f"code = main(['explain-service', 'example-service', '--from', {str(dump)!r}])\n"
        "heavy = [m for m in ('grpc', 'etcd3', 'pyroute2', 'textual', 'sh') if m in sys.modules]\n"
        "print(code, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=lab.REPO, timeout=30)
    assert result.stdout.strip().endswith("0 []"), result.stdout + result.stderr
