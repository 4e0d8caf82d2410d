"""The kube-proxy path tracer on the article's own rules, on newer kube-proxy's chains, on a service
without endpoints, on a whole nat table of many services; and `explain-service` on saved dumps."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_wizard
from tests.kubeproxy import Service, iptables_save
from wizard import iptables
from wizard.proxypath import Path as TracedPath
from wizard.proxypath import render as draw
from wizard.proxypath import tree

ARTICLE = """\
-A KUBE-SERVICES -d 10.254.124.145/32 -p tcp -m comment --comment "default/example-service: cluster IP" -m tcp --dport 8080 -j KUBE-SVC-BR4KARPIGKMRMN3E
-A KUBE-SVC-BR4KARPIGKMRMN3E -m comment --comment "default/example-service:" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-G3W5BQFRHWIMSQQY
-A KUBE-SVC-BR4KARPIGKMRMN3E -m comment --comment "default/example-service:" -j KUBE-SEP-65MX5SGLQRLS77WG
-A KUBE-SEP-G3W5BQFRHWIMSQQY -s 172.30.38.2/32 -m comment --comment "default/example-service:" -j KUBE-MARK-MASQ
-A KUBE-SEP-G3W5BQFRHWIMSQQY -p tcp -m comment --comment "default/example-service:" -m tcp -j DNAT --to-destination 172.30.38.2:8080
-A KUBE-SEP-65MX5SGLQRLS77WG -s 172.30.46.2/32 -m comment --comment "default/example-service:" -j KUBE-MARK-MASQ
-A KUBE-SEP-65MX5SGLQRLS77WG -p tcp -m comment --comment "default/example-service:" -m tcp -j DNAT --to-destination 172.30.46.2:8080
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/example-service:" -m tcp --dport 30554 -j KUBE-MARK-MASQ
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/example-service:" -m tcp --dport 30554 -j KUBE-SVC-BR4KARPIGKMRMN3E
"""
ARTICLE_SERVICE = Service("default", "example-service", "10.254.124.145", 8080,
                          ["172.30.38.2:8080", "172.30.46.2:8080"], node_port=30554)


def test_the_article_names_come_out_of_kube_proxys_hash() -> None:
    generated = iptables_save([ARTICLE_SERVICE], old=True)
    for line in ARTICLE.splitlines():
        assert line in generated


def test_trace_of_the_articles_rules() -> None:
    found = iptables.trace(iptables.parse("*nat\n" + ARTICLE + "COMMIT\n"), "default", "example-service")
    assert found.complete
    cluster, nodeport = found.branches
    assert (cluster.kind, cluster.address) == ("cluster IP", "10.254.124.145:8080/tcp")
    assert cluster.chains == ["KUBE-SVC-BR4KARPIGKMRMN3E"]
    assert [(e.via, e.pick, e.share, e.address) for e in cluster.endpoints] == [
        ("KUBE-SEP-G3W5BQFRHWIMSQQY", "p=0.50", 0.5, "172.30.38.2:8080"),
        ("KUBE-SEP-65MX5SGLQRLS77WG", "rest", 0.5, "172.30.46.2:8080"),
    ]
    assert (nodeport.kind, nodeport.address, nodeport.chains) == ("node port", "30554/tcp", ["KUBE-SVC-BR4KARPIGKMRMN3E"])
    assert found.endpoints == ["172.30.38.2:8080", "172.30.46.2:8080"]
    tree = _render(found, {"172.30.38.2": "node subnet 172.30.38.0/24 (192.168.56.11)"})
    assert tree.splitlines()[:5] == [
        "default/example-service",
        "├─ cluster IP 10.254.124.145:8080/tcp  (KUBE-SERVICES, line 2)",
        "│  └─ KUBE-SVC-BR4KARPIGKMRMN3E",
        "│     ├─ KUBE-SEP-G3W5BQFRHWIMSQQY (p=0.50, 50%) → DNAT 172.30.38.2:8080  [node subnet 172.30.38.0/24 (192.168.56.11)]",
        "│     └─ KUBE-SEP-65MX5SGLQRLS77WG (rest, 50%) → DNAT 172.30.46.2:8080",
    ]
    assert "└─ node port 30554/tcp  (KUBE-NODEPORTS, line 10)" in tree


def test_newer_kube_proxy_ext_and_local_chains() -> None:
    three = Service("shop", "web", "10.96.0.20", 80, ["10.244.1.5:8080", "10.244.2.7:8080", "10.244.3.9:8080"],
                    node_port=31000)
    local = Service("shop", "api", "10.96.0.21", 443, ["10.244.1.6:8443"], node_port=31443, local=True)
    ruleset = iptables.parse(iptables_save([three, local]))
    web = iptables.trace(ruleset, "shop", "web")
    cluster, nodeport = web.branches
    assert [round(e.share, 4) for e in cluster.endpoints] == [0.3333, 0.3333, 0.3333]
    assert nodeport.chains == [three.ext(), three.svc(False)]
    assert [e.address for e in nodeport.endpoints] == three.endpoints
    api = iptables.trace(ruleset, "shop", "api")
    assert api.branches[1].chains == [local.ext(), local.svl()]
    assert api.endpoints == ["10.244.1.6:8443"]


def test_a_service_without_endpoints() -> None:
    empty = Service("default", "example-service", "10.254.124.145", 8080, [], node_port=30554)
    found = iptables.trace(iptables.parse(iptables_save([empty])), "default", "example-service")
    assert not found.complete and not found.branches
    assert found.refusals[0].text == "default/example-service has no endpoints"
    assert found.refusals[0].where == "filter/KUBE-SERVICES"


def test_a_whole_nat_table_of_many_services() -> None:
    many = [Service(f"ns{i % 7}", f"svc{i}", f"10.96.{i // 250}.{i % 250 + 1}", 80 + i % 3,
                    [f"10.244.{i % 200}.{j + 2}:8080" for j in range(1 + i % 4)], node_port=30000 + i if i % 2 else None)
            for i in range(400)]
    text = iptables_save(many, counters=True)
    ruleset = iptables.parse(text)
    assert len(iptables.services(ruleset)) == 400
    target = many[123]
    found = iptables.trace(ruleset, target.namespace, target.name)
    assert found.endpoints == sorted(target.endpoints)
    assert [b.kind for b in found.branches] == ["cluster IP", "node port"]
    assert all(e.packets == 0 for b in found.branches for e in b.endpoints)
    # svc12 must not pick up svc123's rules
    assert iptables.trace(ruleset, many[12].namespace, "svc12").endpoints == sorted(many[12].endpoints)
    assert iptables.names_service("ns1/svc12:", "ns1/svc12") and not iptables.names_service("ns1/svc123", "ns1/svc12")


def test_explain_service_from_a_saved_dump(tmp_path: Path) -> None:
    dump = tmp_path / "node2.rules"
    dump.write_text(iptables_save([ARTICLE_SERVICE], old=True))
    done = run_wizard("explain-service", "example-service", "--from", str(dump))
    assert done.returncode == 0, done.stderr
    assert "│     ├─ KUBE-SEP-G3W5BQFRHWIMSQQY (p=0.50, 50%) → DNAT 172.30.38.2:8080" in done.stdout
    assert done.stdout.endswith("2 endpoint(s) reached: 172.30.38.2:8080, 172.30.46.2:8080\n")


def test_explain_service_without_rules_or_endpoints(tmp_path: Path) -> None:
    dump = tmp_path / "rules"
    dump.write_text(iptables_save([ARTICLE_SERVICE, Service("default", "empty", "10.254.0.9", 80, [])]))
    done = run_wizard("explain-service", "exampel-service", "--from", str(dump))
    assert done.returncode == 1
    assert "error: no kube-proxy rules for default/exampel-service" in done.stderr
    assert "did you mean default/example-service?" in done.stderr
    done = run_wizard("explain-service", "empty", "--from", str(dump))
    assert done.returncode == 1
    assert 'REJECT cluster IP 10.254.0.9:80/tcp in filter/KUBE-SERVICES, line 40: "default/empty has no endpoints"' \
        in done.stdout
    assert "kube-proxy rejects it: the service has no endpoints" in done.stderr


def test_explain_service_refuses_what_is_not_iptables_save(tmp_path: Path) -> None:
    dump = tmp_path / "notes.txt"
    dump.write_text("kubectl get svc\nNAME  TYPE  CLUSTER-IP\n")
    done = run_wizard("explain-service", "example-service", "--from", str(dump))
    assert done.returncode == 2
    assert f"error: {dump} is not iptables-save output: line 1: expected a table line like *nat before any rule" in done.stderr
    assert "Traceback" not in done.stderr


def test_quoted_words_and_broken_lines() -> None:
    ruleset = iptables.parse('*nat\n-A KUBE-SERVICES -m comment --comment "ns/a: say \\"hi\\"" -j KUBE-SVC-X\nCOMMIT\n')
    assert ruleset.rules("nat", "KUBE-SERVICES")[0].comment == 'ns/a: say "hi"'
    for text, why in (('*nat\n-A X -m comment --comment "open -j Y\n', "line 2: an unclosed quote in the rule"),
                      ("*nat\nCOMMIT\n-A X -j Y\n", "line 3: a rule outside a table (after COMMIT)"),
                      ("*nat\n-I X -j Y\n", "line 2: not a rule, chain or table line: '-I X -j Y'")):
        try:
            iptables.parse(text)
        except iptables.NotIptablesSave as exc:
            assert str(exc) == why
        else:
            raise AssertionError(f"{text!r} parsed")


def _render(path: TracedPath, labels: dict[str, str] | None = None) -> str:
    return draw(tree(path, labels))
