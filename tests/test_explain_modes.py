"""explain-service in every kube-proxy mode, through its engine and its command line: which mode is
traced (forced with --mode, kube-proxy's ConfigMap, the rules present), each saved dump told apart by
its look (iptables-save, ip6tables-save, `nft list ruleset`, ipvsadm), IPVS services found by address
or through the API server, and dual-stack iptables dumps in one file. The node's commands are answered
by the table stand-in of test_explain (kubectl and the listings), from saved outputs in the formats the
real tools print (tests/fixtures/ipvs; the nftables listing from the real nft in test_nftables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from tests import kubeproxy_nft as nft
from tests.conftest import run_wizard
from tests.kubeproxy import Service, iptables_save
from tests.test_explain import node
from wizard.errors import InputError
from wizard.explain import detect_format, explain, list_services
from wizard.node.commands import Result
from wizard.proxypath import render

IPVS = Path(__file__).parent / "fixtures" / "ipvs"
WEB4 = Service("shop", "web", "10.96.0.20", 80, ["10.244.1.5:8080", "10.244.2.7:8080"], node_port=31000)
WEB6 = Service("shop", "web", "fd00:96::20", 80, ["[fd00:244:1::5]:8080", "[fd00:244:2::7]:8080"], node_port=31000)


def ok(argv: tuple[str, ...], out: str) -> Result:
    return Result(argv, 0, out, "")


def configmap(mode: str) -> str:
    config = f"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: \"{mode}\"\n"
    return json.dumps({"kind": "ConfigMap", "data": {"config.conf": config, "kubeconfig.conf": "..."}})


def test_each_tools_output_is_told_apart_by_its_look() -> None:
    assert detect_format(iptables_save([WEB4])) == "iptables"
    assert detect_format((IPVS / "ipvsadm-Ln.txt").read_text()) == "ipvs"
    assert detect_format((IPVS / "ipvsadm-save-n.txt").read_text()) == "ipvs"
    assert detect_format("table ip kube-proxy {\n\tchain services {\n\t}\n}\n") == "nftables"
    assert detect_format('{"nftables": [{"metainfo": {"version": "1.0.6"}}]}') == "nft-json"
    assert detect_format("NAME TYPE CLUSTER-IP\n") == "iptables"  # whose reader then says what is wrong


def test_nft_json_is_refused_with_the_listing_to_save_instead() -> None:
    with pytest.raises(InputError, match=r"^rules.json is `nft -j` JSON") as caught:
        explain(None, "shop", "web", dumps=[('{"nftables": []}', "rules.json")])
    assert caught.value.fix == "save the listing as text instead: `nft list ruleset > FILE`"


def test_iptables_and_ip6tables_in_one_file_give_both_families() -> None:
    both = iptables_save([WEB4]) + iptables_save([WEB6])
    found = explain(None, "shop", "web", dumps=[(both, "node2.rules")])
    assert found.outcome == "path" and found.mode == "iptables"
    assert [(b.family, b.kind, b.address) for b in found.trace.branches] == [
        (4, "cluster IP", "10.96.0.20:80/tcp"), (4, "node port", "31000/tcp"),
        (6, "cluster IP", "[fd00:96::20]:80/tcp"), (6, "node port", "31000/tcp")]
    assert found.trace.endpoints == sorted(WEB4.endpoints + WEB6.endpoints)
    text = render(found.tree())
    assert "├─ IPv4 cluster IP 10.96.0.20:80/tcp  (KUBE-SERVICES, line " in text
    assert "├─ IPv6 cluster IP [fd00:96::20]:80/tcp  (KUBE-SERVICES, line " in text
    # the same two files given one by one: the same path
    apart = explain(None, "shop", "web", dumps=[(iptables_save([WEB4]), "v4"), (iptables_save([WEB6]), "v6")])
    assert render(apart.tree()) == text and apart.source == "v4, v6"
    listing = list_services(None, dumps=[(both, "node2.rules")])
    assert [(p.service, p.addresses, p.node_ports, p.endpoints) for p in listing.ports] == [
        ("shop/web", ["10.96.0.20:80/tcp", "[fd00:96::20]:80/tcp"], ["31000/tcp"], WEB4.endpoints + WEB6.endpoints)]


def test_ipvs_by_address_from_saved_outputs() -> None:
    dumps = [((IPVS / "ipvsadm-Ln.txt").read_text(), "ipvs.txt"),
             ((IPVS / "iptables-save-nat.txt").read_text(), "nat.rules")]
    found = explain(None, "default", "10.96.0.10:53/udp", dumps=dumps)
    assert (found.outcome, found.mode, found.service) == ("path", "ipvs", "10.96.0.10:53/udp")
    assert found.trace.endpoints == ["10.244.0.2:53", "10.244.1.3:53"]
    assert [e.share for e in found.trace.branches[0].endpoints] == [0.5, 0.5]
    assert found.source == "ipvs.txt, nat.rules" and found.warnings == []
    # an address may be a cluster IP, a node's, an external or a load balancer's: no ipset rule is guessed
    assert "only the API server says which" in render(found.tree()) and "KUBE-CLUSTER-IP" not in render(found.tree())
    empty = explain(None, "default", "10.99.1.1:80", dumps=dumps)
    assert (empty.outcome, empty.exit_code) == ("no-endpoints", 1)
    assert empty.hint.startswith("find the service (`kubectl get services -A | grep 10.99.1.1`)")


def test_ipvs_by_name_needs_the_api_server_and_reads_the_service_from_it() -> None:
    dumps = [((IPVS / "ipvsadm-save-n.txt").read_text(), "ipvs.txt")]
    with pytest.raises(InputError, match="virtual servers carry no service names") as caught:
        explain(None, "shop", "web", dumps=dumps)
    assert "--kubeconfig" in caught.value.fix
    web = (IPVS / "svc-web.json").read_text()
    spec = json.loads(web)
    fake = node(kubectl=ok(("kubectl",), web))
    found = explain(fake, spec["metadata"]["namespace"], spec["metadata"]["name"], dumps=dumps, kubeconfig="admin.conf",
                    name_pods=False)
    assert found.outcome == "path" and found.mode == "ipvs"
    kinds = [b.kind for b in found.trace.branches]
    assert {"cluster IP", "external IP", "load balancer", "node port"} <= set(kinds), kinds
    asked = [argv for argv, _ in cast("Any", fake).commands.calls]
    assert ("kubectl", "--kubeconfig", "admin.conf", "--request-timeout=10s", "get", f"service/{spec['metadata']['name']}",
            "-n", spec["metadata"]["namespace"], "-o", "json") in asked


def test_an_address_in_iptables_mode_is_refused_with_what_to_give() -> None:
    with pytest.raises(InputError, match="only IPVS mode, whose rules carry no names, is traced by address") as caught:
        explain(None, "shop", "10.96.0.20:80", dumps=[(iptables_save([WEB4]), "node2.rules")])
    assert "iptables mode" in caught.value.fix


def test_mode_forced_or_from_the_configmap_picks_the_listing_asked_for() -> None:
    rules = iptables_save([WEB4])
    fake = node(**{"iptables-save": ok(("iptables-save",), rules)})
    found = explain(fake, "shop", "web", mode="iptables")
    assert found.outcome == "path"
    # forced: only iptables mode's listings are read
    assert [argv for argv, _ in cast("Any", fake).commands.calls] == [("iptables-save",), ("ip6tables-save",)]
    told = node(**{"iptables-save": ok(("iptables-save",), rules), "kubectl": ok(("kubectl",), configmap(""))})
    found = explain(told, "shop", "web", kubeconfig="admin.conf", name_pods=False)
    assert found.outcome == "path" and found.warnings == []
    calls = [argv for argv, _ in cast("Any", told).commands.calls]
    assert calls[0][-6:] == ("kube-system", "get", "configmap", "kube-proxy", "-o", "json")
    assert ("nft", "list", "tables") not in calls  # the ConfigMap said iptables ("" is Linux's default)
    # nftables forced on a node without nft: said, with what to do
    with pytest.raises(Exception, match="nft is not installed"):
        explain(node(), "shop", "web", mode="nftables")


def test_ipvs_mode_without_ipvsadms_listing_says_what_to_add() -> None:
    nat = (IPVS / "iptables-save-nat.txt").read_text()
    with pytest.raises(InputError, match="ipvsadm's listing is not among the rules read") as caught:
        explain(None, "default", "10.96.0.10:53/udp", dumps=[(nat, "nat.rules")])
    assert "ipvsadm -S -n" in caught.value.fix


def test_the_command_line_traces_ipvs_and_forces_a_mode(tmp_path: Path) -> None:
    done = run_wizard("explain-service", "10.106.7.33:6379", "--from", str(IPVS / "ipvsadm-Ln.txt"),
                      "--from", str(IPVS / "iptables-save-nat.txt"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "10.106.7.33:6379  (kube-proxy ipvs mode)"
    assert done.stdout.count("session affinity ClientIP, 10800 s") == 1
    assert done.stdout.endswith("2 endpoint(s) reached: 10.244.1.8:6379, 10.244.2.9:6379\n")
    dump = tmp_path / "node2.rules"
    dump.write_text(iptables_save([WEB4]))
    done = run_wizard("explain-service", "shop/web", "--from", str(dump), "--mode", "ipvs")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"error: --mode ipvs: {dump} holds no ipvs mode rules of kube-proxy (they are iptables "
                           "mode's) — drop --mode, or add the ipvs listing with --from (`ipvsadm -S -n > FILE` on the "
                           "node)\n")
    done = run_wizard("explain-service", "shop/web", "--from", str(dump), "--mode", "bogus")
    assert done.returncode == 2 and "invalid choice: 'bogus'" in done.stderr


def test_a_stale_modes_rules_do_not_win_over_the_mode_kube_proxy_runs() -> None:
    """kube-proxy moved to nftables mode, where the service has no endpoints now; an old iptables-save
    still DNATs it. The nftables path is the one traced (and --list agrees), with a warning."""
    now = nft.listing([nft.Service("shop", "web", "10.96.0.20", 80, [])])
    old = iptables_save([WEB4])
    found = explain(None, "shop", "web", dumps=[(now, "ruleset.txt"), (old, "old.rules")])
    assert (found.mode, found.outcome) == ("nftables", "no-endpoints")
    assert found.warnings == ["rules of several kube-proxy modes are here (nftables, iptables): traced nftables mode; "
                              "--mode picks one, and kube-proxy's ConfigMap says which it runs (--kubeconfig)"]
    listing = list_services(None, dumps=[(now, "ruleset.txt"), (old, "old.rules")])
    assert listing.mode == "nftables" and listing.ports[0].rejected and listing.warnings
    # a service only the other mode's rules hold is still found there
    other = explain(None, "shop", "web", dumps=[(nft.listing([nft.Service("a", "b", "10.96.0.9", 80, [])]), "r"),
                                                (old, "old.rules")])
    assert (other.mode, other.outcome) == ("iptables", "path")


def test_leftover_virtual_servers_beside_iptables_mode_rank_after_it() -> None:
    ipvs_listing = (IPVS / "ipvsadm-save-n.txt").read_text()
    found = explain(None, "shop", "web", dumps=[(ipvs_listing, "ipvs.txt"), (iptables_save([WEB4]), "node.rules")])
    assert (found.mode, found.outcome) == ("iptables", "path")


@pytest.mark.parametrize(("config", "mode", "warned"), [
    ('mode: "ipvs"\n', "ipvs", ""),
    ("mode: ipvs # switched in 2025\n", "ipvs", ""),
    ("mode: nftables\nclusterCIDR: 10.244.0.0/16\n", "nftables", ""),
    ("mode: \"\"\n", "iptables", ""),
    ("clusterCIDR: 10.244.0.0/16\n", "iptables", ""),  # no mode: Linux's default
    ("mode: kernelspace\n", None, "mode 'kernelspace', which is not traced here"),
    (None, None, "has no KubeProxyConfiguration under config.conf"),
])
def test_the_configmaps_mode(config: str | None, mode: str | None, warned: str) -> None:
    from wizard.explain import configured_mode

    data = {"config.conf": config} if config is not None else {"config.yaml": "mode: ipvs\n"}
    fake = node(kubectl=ok(("kubectl",), json.dumps({"kind": "ConfigMap", "data": data})))
    warnings: list[str] = []
    assert configured_mode(fake, "admin.conf", warnings) == mode
    assert (warned in warnings[0]) if warned else warnings == []


def test_nft_failing_while_looking_for_the_mode_is_a_warning_not_the_end() -> None:
    fake = node(**{"iptables-save": ok(("iptables-save",), iptables_save([WEB4])),
                   "nft": Result(("nft",), 1, "", "Error: Could not receive tables from kernel: Operation not supported")})
    found = explain(fake, "shop", "web")
    assert found.outcome == "path" and found.mode == "iptables"
    assert found.warnings == ["nftables not read: nft failed: Error: Could not receive tables from kernel: "
                              "Operation not supported"]


def test_a_configmap_that_lags_the_rules_present_is_said_and_the_rules_decide() -> None:
    fake = node(**{"iptables-save": ok(("iptables-save",), iptables_save([WEB4])), "kubectl": ok(("kubectl",),
                configmap("nftables"))})
    with pytest.raises(Exception, match="nft is not installed"):
        explain(fake, "shop", "web", mode="nftables")
    found = explain(fake, "shop", "web", kubeconfig="admin.conf", name_pods=False)
    assert (found.mode, found.outcome) == ("iptables", "path")
    assert found.warnings[0].startswith("kube-proxy's ConfigMap says nftables mode, but its rules were not read (nft is not installed)")
