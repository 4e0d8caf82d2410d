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
    """Answers `run` from a table keyed by the program's name, and records every call; a program not in
    the table is not installed (exit 127), as ip6tables-save, nft and ipvsadm are on many nodes."""

    def __init__(self, answers: dict[str, Result]) -> None:
        self.answers = answers
        self.calls: list[tuple[tuple[str, ...], float]] = []

    def run(self, *argv: str, timeout: float = 30.0, input: str | None = None) -> Result:
        self.calls.append((argv, timeout))
        return self.answers.get(argv[0]) or Result(argv, 127, "", f"{argv[0]}: command not found")


class Files:
    """The node's files, as far as explain asks: whether the kernel lists IPVS (/proc/net/ip_vs)."""

    def __init__(self, present: set[str]) -> None:
        self.present = present

    def exists(self, path: str) -> bool:
        return path in self.present


class FakeNode:
    def __init__(self, files: set[str] | None = None, **answers: Result) -> None:
        self.commands = Commands(answers)
        self.files = Files(files or set())

    def etcd(self, settings: Any, password: str | None) -> Any:
        raise AssertionError("no answers given: etcd must not be asked")


def node(files: set[str] | None = None, **answers: Result) -> Node:
    return cast("Node", FakeNode(files, **answers))


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
    assert found.trace.endpoints == [] and found.trace.refusals[0].text == "default/empty has no endpoints"
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
    # every mode's listing is asked for (each with a timeout); the ones not installed here are no mode of it;
    # ipvsadm only where the kernel lists IPVS: it would load the ip_vs module
    assert cast("Any", fake).commands.calls == [(("iptables-save",), 15), (("ip6tables-save",), 15),
                                                (("nft", "list", "tables"), 15)]
    ipvs_kernel = node({"/proc/net/ip_vs"}, **{"iptables-save": Result(("iptables-save",), 0, RULES, "")})
    assert explain(ipvs_kernel, "default", "example-service").outcome == "path"
    assert cast("Any", ipvs_kernel).commands.calls[-1] == (("ipvsadm", "-S", "-n"), 15)
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


@pytest.mark.parametrize("stdin", [False, True])
def test_tracing_a_saved_dump_imports_no_pydantic_nor_the_node(tmp_path: Path, stdin: bool) -> None:
    """Issue 14: a trace of a dump (a file, or standard input with --from -) reads it with wizard.inputs,
    which imports no pydantic, and asks the machine nothing, so makes no node."""
    dump = tmp_path / "rules"
    dump.write_text(RULES)
    source = "-" if stdin else str(dump)
    code = (
        "import sys\n"
        "from wizard.cli import main\n"
        f"code = main(['explain-service', 'example-service', '--from', {source!r}])\n"
        "heavy = [m for m in ('pydantic', 'yaml', 'wizard.answers', 'wizard.node', 'wizard.flannel')"
        " if m in sys.modules]\n"
        "print(code, heavy)\n"
    )
    with dump.open("rb") as given:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=lab.REPO, timeout=30,
                                stdin=given if stdin else subprocess.DEVNULL)
    assert result.stdout.strip().endswith("0 []"), result.stdout + result.stderr


def test_a_dump_file_reads_as_read_input_reads_it(tmp_path: Path) -> None:
    """read_dump's own read of a regular file gives what read_input gives, bytes that are not UTF-8
    replaced alike; an empty file too."""
    from wizard.explain import MAX_DUMP_BYTES, read_dump
    from wizard.inputs import read_input

    for data in (RULES.encode() + b"# caf\xe9 \xff\n", b""):
        dump = tmp_path / "rules"
        dump.write_bytes(data)
        careful = read_input(str(dump), MAX_DUMP_BYTES, "an iptables-save dump").decode("utf-8", errors="replace")
        assert read_dump(str(dump)) == (careful, str(dump))


# ---------------------------------------------------------------- issue 10: the CLI's messages, engine side


def test_no_kube_proxy_rules_at_all_is_said_plainly() -> None:
    """Empty iptables-save output (a node without any rules), or rules without nat's KUBE-SERVICES chain:
    no kube-proxy here at all, an outcome (exit 1), not 'not iptables-save output' (exit 2)."""
    cases = {
        "": "no kube-proxy rules in node2.rules: it holds no rules at all",
        "# Generated by iptables-save v1.8.9\n": "no kube-proxy rules in node2.rules: it holds no rules at all",
        "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n": "no kube-proxy rules in node2.rules: there is no nat table, where kube-proxy puts them",
        "*nat\n:PREROUTING ACCEPT [0:0]\n-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\nCOMMIT\n":
            "no kube-proxy rules in node2.rules: the nat table has no KUBE-SERVICES chain",
    }
    for text, problem in cases.items():
        found = explain(node(), "default", "example-service", rules=text, source="node2.rules")
        assert (found.outcome, found.exit_code, found.kube_proxy) == ("no-rules", 1, False), text
        assert found.problem == problem and found.suggestion is None
    live = node(**{"iptables-save": Result(("iptables-save",), 0, "", "")})
    found = explain(live, "default", "example-service")
    assert found.problem == "no kube-proxy rules on this node: iptables-save printed no rules at all"
    assert found.hint.startswith("kube-proxy is not running here, or its rules were not readable")
    # iptables-nft on a node whose rules are in the legacy tables prints only a warning comment
    legacy = "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n"
    assert "iptables-legacy-save" in explain(node(), "default", "x", rules=legacy).hint
    # kube-proxy present but the service unknown stays the 'did you mean' outcome
    assert explain(node(), "default", "nope", rules=RULES).kube_proxy


def test_a_dump_cut_off_before_commit_is_refused_with_its_line() -> None:
    lines = RULES.splitlines()
    nat_commit = lines.index("COMMIT")
    cut = "\n".join(lines[:nat_commit]) + "\n"  # the nat table without its COMMIT: every rule there, but cut
    with pytest.raises(InputError) as refused:
        explain(node(), "default", "example-service", rules=cut, source="node2.rules")
    assert refused.value.exit_code == 2
    assert str(refused.value).startswith(
        f"node2.rules is cut off at line {nat_commit}: it ends inside table nat (line 2), without the table's "
        "COMMIT line — save the whole dump again")
    # the next table begins where COMMIT should have been
    spliced = "\n".join(lines[:nat_commit] + lines[nat_commit + 2:]) + "\n"
    with pytest.raises(InputError, match=rf"^<stdin> is cut off at line {nat_commit + 1}: table filter begins, "
                                         r"but table nat \(line 2\) has no COMMIT line"):
        explain(node(), "default", "example-service", rules=spliced, source="<stdin>")
    # a whole dump with trailing blank lines and comments is whole
    assert explain(node(), "default", "example-service", rules=RULES + "\n# end\n\n").outcome == "path"


def test_etcd_down_with_answers_warns_and_still_traces(tmp_path: Path) -> None:
    """--answers names each pod's node subnet from etcd; etcd not answering costs those names (one
    warning line), not the trace. A real node and a port nothing listens on."""
    from wizard.answers import load

    port = lab.free_port()
    answers_file = tmp_path / "answers.yaml"
    answers_file.write_text(f"version: 1\netcd:\n  endpoints: ['http://127.0.0.1:{port}']\n  timeout_s: 2\n")
    real = Node()
    try:
        found = explain(real, "default", "example-service", rules=RULES, answers=load(str(answers_file)))
    finally:
        real.close()
    assert (found.outcome, found.exit_code, found.labels) == ("path", 0, {})
    (warning,) = found.warnings
    assert warning.startswith("no node subnets from etcd: ") and f"127.0.0.1:{port}" in warning
    assert "\n" not in warning
    # no endpoint to label: etcd is not asked at all (FakeNode.etcd would fail the test)
    assert explain(node(), "default", "empty", rules=RULES, answers=load(str(answers_file))).warnings == []


def test_namespace_slash_name_and_a_contradicting_namespace() -> None:
    from wizard.explain import service_ref

    assert service_ref("default/example-service", None) == ("default", "example-service")
    assert service_ref("default/example-service", "default") == ("default", "example-service")
    assert service_ref("example-service", None) == ("default", "example-service")
    assert service_ref("web", "shop") == ("shop", "web")
    with pytest.raises(InputError, match=r"^default/example-service is in namespace default, but -n says shop — "
                                         r"drop -n, or give the name alone: `example-service -n shop`"):
        service_ref("default/example-service", "shop")
    for bad in ("/web", "shop/", "a/b/c", ""):
        with pytest.raises(InputError):
            service_ref(bad, None)


def test_a_service_in_another_namespace_is_suggested() -> None:
    shop = Service("shop", "web", "10.96.0.20", 80, ["10.244.1.5:8080"])
    found = explain(node(), "default", "web", rules=iptables_save([WEB, shop]))
    assert found.suggestion == "shop/web" and found.hint.startswith("did you mean shop/web? ")
    # a service without endpoints is known too (its REJECT rule names it)
    assert explain(node(), "default", "emtpy", rules=RULES).suggestion == "default/empty"


NAMED = """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-SVC-HTTP - [0:0]
:KUBE-SVC-HTTPS - [0:0]
:KUBE-EXT-HTTP - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
-A KUBE-SERVICES -d 10.96.0.30/32 -p tcp -m comment --comment "shop/front:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-HTTP
-A KUBE-SERVICES -d 192.0.2.10/32 -p tcp -m comment --comment "shop/front:http external IP" -m tcp --dport 80 -j KUBE-EXT-HTTP
-A KUBE-SERVICES -d 10.96.0.30/32 -p tcp -m comment --comment "shop/front:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-HTTPS
-A KUBE-NODEPORTS -p tcp -m comment --comment "shop/front:http" -m tcp --dport 30080 -j KUBE-EXT-HTTP
-A KUBE-EXT-HTTP -j KUBE-SVC-HTTP
-A KUBE-SVC-HTTP -m comment --comment "shop/front:http -> 10.244.1.5:8080" -j KUBE-SEP-A
-A KUBE-SVC-HTTPS -m comment --comment "shop/front:https -> 10.244.1.5:8443" -j KUBE-SEP-B
-A KUBE-SEP-A -p tcp -m comment --comment "shop/front:http" -m tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SEP-B -p tcp -m comment --comment "shop/front:https" -m tcp -j DNAT --to-destination 10.244.1.5:8443
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
-A KUBE-SERVICES -d 10.96.0.31/32 -p tcp -m comment --comment "shop/idle:web has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "shop/idle:web has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30081 -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""


def test_list_the_services_a_dump_holds() -> None:
    from wizard.explain import list_services

    listing = list_services(node(), rules=RULES, source="node2.rules")
    assert (listing.exit_code, listing.problem, listing.kube_proxy) == (0, "", True)
    assert [(p.service, p.port, p.addresses, p.node_ports, p.endpoints, p.rejected) for p in listing.ports] == [
        ("default/empty", "", ["10.254.0.9:80/tcp"], [], [], True),
        ("default/example-service", "", ["10.254.124.145:8080/tcp"], ["30554/tcp"], WEB.endpoints, False),
    ]
    named = list_services(node(), rules=NAMED)
    assert [(p.service, p.port, p.addresses, p.node_ports, p.endpoints, p.rejected) for p in named.ports] == [
        ("shop/front", "http", ["10.96.0.30:80/tcp", "192.0.2.10:80/tcp"], ["30080/tcp"], ["10.244.1.5:8080"], False),
        ("shop/front", "https", ["10.96.0.30:443/tcp"], [], ["10.244.1.5:8443"], False),
        ("shop/idle", "web", ["10.96.0.31:80/tcp"], ["30081/tcp"], [], True),
    ]
    # the article's (old kube-proxy) comments, "ns/name:" for an unnamed port
    old = list_services(node(), rules=iptables_save([WEB], old=True))
    assert [(p.service, p.port, p.node_ports, len(p.endpoints)) for p in old.ports] == [
        ("default/example-service", "", ["30554/tcp"], 2)]


def test_list_with_nothing_to_list_exits_1() -> None:
    from wizard.explain import list_services

    one = list_services(node(), rules=NAMED, namespace="shop")
    assert [p.service for p in one.ports] == ["shop/front", "shop/front", "shop/idle"]
    none = list_services(node(), rules=RULES, namespace="kube-system", source="node2.rules")
    assert (none.exit_code, none.ports) == (1, [])
    assert (none.problem, none.hint) == ("no services in namespace kube-system in node2.rules",
                                         "namespaces with services: default")
    bare = list_services(node(), rules=iptables_save([]))
    assert bare.exit_code == 1 and bare.kube_proxy and "no services" in bare.problem
    empty = list_services(node(**{"iptables-save": Result(("iptables-save",), 0, "", "")}))
    assert (empty.exit_code, empty.kube_proxy) == (1, False)
    assert empty.problem == "no kube-proxy rules on this node: iptables-save printed no rules at all"
    with pytest.raises(InputError, match="is cut off at line"):
        list_services(node(), rules=NAMED.replace("COMMIT\n*filter", "*filter"))


@pytest.mark.parametrize("bad", ["abc", "1.5", "-0.2", "nan"])
def test_a_probability_iptables_would_not_take_is_an_input_error_naming_its_line(bad: str) -> None:
    rules = RULES.replace("--probability 0.50000000000", f"--probability {bad}")
    assert rules != RULES
    line = next(n for n, text in enumerate(rules.splitlines(), 1) if f"--probability {bad}" in text)
    with pytest.raises(InputError, match=rf"^node2.rules is not iptables-save output: line {line}: --probability "
                                         rf"'{bad}' is not a number from 0 to 1 \(chain KUBE-SVC-"):
        explain(node(), "default", "example-service", rules=rules, source="node2.rules")
