"""The IPVS-mode reader on one node's saved state (tests/fixtures/ipvs, see its README): both ipvsadm
forms read to the same table, every kind of service traced, the service objects and typed addresses
it starts from, and the text it refuses, with the line to look at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wizard import iptables, ipvs, proxypath

FIXTURES = Path(__file__).parent / "fixtures" / "ipvs"
NODE = ["192.168.0.11", "10.244.1.0", "10.244.1.1"]
WEB_REAL = ["10.244.1.5:8080", "10.244.2.6:8080", "10.244.2.7:8080"]


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def service(name: str) -> ipvs.ServiceSpec:
    return ipvs.spec_from_service(json.loads(text(f"svc-{name}.json")))


@pytest.fixture(scope="module")
def table() -> ipvs.Table:
    return ipvs.parse(text("ipvsadm-Ln.txt"))


@pytest.fixture(scope="module")
def nat() -> iptables.Ruleset:
    return iptables.parse(text("iptables-save-nat.txt"))


@pytest.fixture(scope="module")
def nat6() -> iptables.Ruleset:
    return iptables.parse(text("ip6tables-save-nat.txt"))


# ---------------------------------------------------------------- the two forms

def _as_listed(table: ipvs.Table) -> str:
    """The table printed back with ipvsadm 1.31's own formats (print_title, print_service_entry): the
    fixture must be exactly what ipvsadm prints, trailing spaces and all, or the reader is tested on
    text no node gives."""
    lines = [f"IP Virtual Server version {table.version} (size=4096)",
             "Prot LocalAddress:Port Scheduler Flags",
             "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"]
    # the printf formats as ipvsadm.c writes them, so they can be compared with it by eye
    for vs in table.virtual_servers:
        assert vs.ip is not None and vs.port is not None
        name = "%-4s %s" % (vs.protocol.upper(), proxypath.host_port(vs.ip, vs.port))  # noqa: UP031
        lines.append(f"{name} {vs.scheduler}" + (f" persistent {vs.persistent}" if vs.persistent else ""))
        for rs in vs.real_servers:
            dest = "  -> %-28s %-7s %-6d %-10u %-10u"
            lines.append(dest % (rs.address, rs.forward, rs.weight, rs.active, rs.inactive))  # noqa: UP031
    return "\n".join(lines) + "\n"


def test_the_listing_fixture_is_byte_for_byte_what_ipvsadm_prints(table: ipvs.Table) -> None:
    assert _as_listed(table) == text("ipvsadm-Ln.txt")
    assert text("ipvsadm-Ln.txt").splitlines()[4] == "  -> 10.244.1.5:8080              Masq    1      2          5         "


def test_both_forms_give_the_same_table(table: ipvs.Table) -> None:
    saved = ipvs.parse(text("ipvsadm-save-n.txt"))
    assert saved == table
    assert (table.source, saved.source) == ("ipvsadm -Ln", "ipvsadm-save -n")
    assert (table.version, saved.version) == ("1.2.1", None)
    assert len(table.virtual_servers) == 15
    # only the listing counts connections; the save form has none to give
    api = table.find("tcp", "10.96.0.1", 443)
    api_saved = saved.find("tcp", "10.96.0.1", 443)
    assert api is not None and api_saved is not None
    assert [(rs.address, rs.forward, rs.weight, rs.active, rs.inactive) for rs in api.real_servers] == [
        ("192.168.0.2:6443", "Masq", 1, 4, 12)]
    assert [(rs.active, rs.inactive) for rs in api_saved.real_servers] == [(None, None)]
    assert (api.line, api_saved.line) == (16, 13)


def test_what_a_virtual_server_holds(table: ipvs.Table) -> None:
    sticky = table.find("tcp", "10.106.7.33", 6379)
    assert sticky is not None
    assert (sticky.scheduler, sticky.persistent, sticky.netmask, sticky.flags) == ("rr", 10800, None, [])
    v6 = table.find("tcp", "fd00:10:96:0::a1b2", 80)  # found however the address is written
    assert v6 is not None
    assert (v6.family, v6.address, v6.entry) == (6, "[fd00:10:96::a1b2]:80/tcp", "virtual server TCP [fd00:10:96::a1b2]:80 rr")
    assert [rs.address for rs in v6.real_servers] == ["[fd00:10:244:1::5]:8080", "[fd00:10:244:2::6]:8080"]
    dns = table.find("udp", "10.96.0.10", 53)
    assert dns is not None and dns.entry == "virtual server UDP 10.96.0.10:53 rr"
    empty = table.find("tcp", "10.99.1.1", 80)
    assert empty is not None and empty.real_servers == [] and empty.live == []


def test_looks_like() -> None:
    assert ipvs.looks_like(text("ipvsadm-Ln.txt"))
    assert ipvs.looks_like(text("ipvsadm-save-n.txt"))
    assert ipvs.looks_like("\nProt LocalAddress:Port Scheduler Flags\n")  # ipvsadm -Ln -t ADDR has no version line
    assert not ipvs.looks_like(text("iptables-save-nat.txt"))
    assert not ipvs.looks_like("")
    assert not ipvs.looks_like("-A KUBE-SERVICES -j ACCEPT\n")


def test_flags_fwmark_sctp_and_other_forwarding() -> None:
    listed = ipvs.parse(
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  10.0.0.5:80 sh (flag-1,flag-2) persistent 300 mask 255.255.255.0 pe sip ops\n"
        "  -> 10.0.1.1:80                  Route   3      0          0         \n"
        "SCTP 10.0.0.6:3868 wrr\n"
        "  -> 10.0.1.2:3868                Tunnel  2      0          0         \n"
        "FWM  5 IPv6 rr\n")
    saved = ipvs.parse(
        "-A -t 10.0.0.5:80 -s sh -p 300 -M 255.255.255.0 --pe sip -o -b flag-1,flag-2\n"
        "-a -t 10.0.0.5:80 -r 10.0.1.1:80 -g -w 3\n"
        "-A --sctp-service 10.0.0.6:3868 -s wrr\n"
        "-a --sctp-service 10.0.0.6:3868 -r 10.0.1.2:3868 -i -w 2 --tun-type gue --tun-port 6080 --tun-nocsum\n"
        "-A -f 5 -6 -s rr\n")
    assert listed.virtual_servers[0].flags == ["flag-1,flag-2", "pe sip", "ops"]
    assert saved.virtual_servers[0].flags == ["pe sip", "flag-1,flag-2", "ops"]
    for vs_list, vs_save in zip(listed.virtual_servers, saved.virtual_servers, strict=True):
        assert (vs_list.protocol, vs_list.address, vs_list.persistent, vs_list.netmask, vs_list.real_servers) == (
            vs_save.protocol, vs_save.address, vs_save.persistent, vs_save.netmask, vs_save.real_servers)
    fwm = listed.virtual_servers[2]
    assert (fwm.protocol, fwm.fwmark, fwm.family, fwm.address) == ("fwm", 5, 6, "fwmark 5 IPv6")
    sctp = ipvs.trace(listed, ipvs.spec_from_address("10.0.0.6:3868/sctp"))
    assert [(e.address, e.share, e.pick) for e in sctp.branches[0].endpoints] == [
        ("10.0.1.2:3868", 1.0, "wrr, weight 2, tunnel (not masquerade)")]


# ---------------------------------------------------------------- what refuses to be read

LISTING = text("ipvsadm-Ln.txt").splitlines()
SAVED = text("ipvsadm-save-n.txt").splitlines()


def _cut(lines: list[str], n: int, replacement: str) -> str:
    return "\n".join(lines[:n - 1] + [replacement] + lines[n:]) + "\n"


@pytest.mark.parametrize(("given", "line", "why"), [
    (_cut(LISTING, 6, "  -> 10.244.2.6:8080              Masq    1"), 6, "without its five columns"),
    (_cut(LISTING, 4, "TCP  192.168.0.11:30080"), 4, "not a virtual server or real server line"),
    (_cut(LISTING, 4, "TCP  node-1:30080 rr"), 4, "save the table with -n"),
    (_cut(LISTING, 5, "  -> 10.244.1.5:http-alt          Masq    1      2          5"), 5, "is a name, not a number"),
    (_cut(LISTING, 16, "TCP  10.96.0.1:443 rr persistant 10800"), 16, "unknown virtual server flag 'persistant'"),
    ("\n".join(LISTING[:2] + LISTING[3:]), 3, "expected ipvsadm's title lines"),
    ("\n".join(LISTING[:1]), 1, "ends before ipvsadm's title lines"),
    ("\n".join(LISTING[:3] + LISTING[4:]), 4, "a real server line before any virtual server line"),
    ("IP Virtual Server version 1.2.1 (size=4096)\n"
     "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n", 2, "ipvsadm -Ln --stats"),
    (_cut(SAVED, 3, "-a -t 192.168.0.11:30080 -r 10.244.2.6:8080 -m"), 3, "without its forwarding switch"),
    (_cut(SAVED, 1, "-A -t 192.168.0.11:30080"), 1, "without its scheduler"),
    ("\n".join(SAVED[1:]), 1, "which no -A line before it adds"),
    (_cut(SAVED, 2, "-a -t 192.168.0.11:30080 -r 10.244.1.5:8080 -m -w 1 --bogus"), 2, "unknown or incomplete option '--bogus'"),
    (_cut(SAVED, 5, "COMMIT"), 5, "not an ipvsadm-save line"),
])
def test_bad_text_names_its_line(given: str, line: int, why: str) -> None:
    with pytest.raises(ipvs.NotIpvsadm) as raised:
        ipvs.parse(given)
    assert raised.value.line == line
    assert why in raised.value.why
    assert str(raised.value).startswith(f"line {line}: ")


def test_nothing_is_an_empty_table() -> None:
    assert ipvs.parse("") == ipvs.Table()
    assert not ipvs.detect(ipvs.parse(""))
    assert not ipvs.detect(ipvs.parse("\n".join(LISTING[:3]) + "\n"))  # IPVS loaded, no virtual server
    assert ipvs.detect(ipvs.parse(text("ipvsadm-save-n.txt")))


# ---------------------------------------------------------------- the service, from the API server or by hand

def test_spec_from_service() -> None:
    dns = service("kube-dns")
    assert (dns.service, dns.cluster_ips) == ("kube-system/kube-dns", ["10.96.0.10"])
    assert dns.ports == [ipvs.SpecPort("dns", "udp", 53), ipvs.SpecPort("dns-tcp", "tcp", 53),
                         ipvs.SpecPort("metrics", "tcp", 9153)]
    web = service("web")
    assert (web.external_ips, web.load_balancer_ips, web.ports) == (
        ["192.168.0.100"], ["203.0.113.10"], [ipvs.SpecPort("http", "tcp", 80, 30080)])
    assert (service("sticky").session_affinity, service("sticky").affinity_timeout) == ("ClientIP", 10800)
    assert (web.session_affinity, web.affinity_timeout) == (None, None)
    assert service("dual").cluster_ips == ["10.108.4.4", "fd00:10:96::4"]
    assert service("empty").ports == [ipvs.SpecPort("", "tcp", 80)]


def test_spec_from_service_edges() -> None:
    obj = json.loads(text("svc-kubernetes.json"))
    assert ipvs.spec_from_service({"kind": "List", "items": [obj]}).service == "default/kubernetes"
    headless = json.loads(text("svc-kubernetes.json"))
    headless["spec"].update(clusterIP="None", clusterIPs=["None"])
    assert ipvs.spec_from_service(headless).cluster_ips == []
    with pytest.raises(ValueError, match="List of 2 objects"):
        ipvs.spec_from_service({"kind": "List", "items": [obj, obj]})
    with pytest.raises(ValueError, match="a Pod, not a Service"):
        ipvs.spec_from_service({"kind": "Pod", "metadata": {"name": "x"}})
    bad = json.loads(text("svc-kubernetes.json"))
    bad["spec"]["externalIPs"] = ["example.com"]
    with pytest.raises(ValueError, match="spec.externalIPs: 'example.com' is not an IP address"):
        ipvs.spec_from_service(bad)


@pytest.mark.parametrize(("given", "address", "protocol", "port"), [
    ("10.96.0.10:53/udp", "10.96.0.10", "udp", 53),
    ("[fd00::10]:53/udp", "fd00::10", "udp", 53),
    ("10.96.0.1:443", "10.96.0.1", "tcp", 443),
    (" 10.96.0.1:443/TCP ", "10.96.0.1", "tcp", 443),
    ("[fd00:0:0::10]:80/sctp", "fd00::10", "sctp", 80),
])
def test_spec_from_address(given: str, address: str, protocol: str, port: int) -> None:
    spec = ipvs.spec_from_address(given)
    assert (spec.cluster_ips, spec.ports) == ([address], [ipvs.SpecPort("", protocol, port)])
    assert spec.namespace == "" and spec.service == f"{proxypath.host_port(address, port)}/{protocol}"


@pytest.mark.parametrize(("given", "why"), [
    ("10.96.0.10", "no port"),
    ("10.96.0.10:53/icmp", "protocol 'icmp' is not tcp, udp or sctp"),
    ("fd00::10:53/udp", "an IPv6 address needs brackets"),
    ("10.96.0.300:53", "'10.96.0.300' is not an IP address"),
    ("kube-dns:53/udp", "'kube-dns' is not an IP address"),
    ("10.96.0.10:0", "port '0' is not 1-65535"),
    ("10.96.0.10:domain/udp", "port 'domain' is not 1-65535"),
    ("", "is not an IP address"),
])
def test_spec_from_address_refuses(given: str, why: str) -> None:
    with pytest.raises(ValueError) as raised:
        ipvs.spec_from_address(given)
    assert why in str(raised.value)
    assert "give it as IP:PORT[/PROTOCOL], e.g. 10.96.0.10:53/udp" in str(raised.value)


# ---------------------------------------------------------------- traces

def test_the_api_server(table: ipvs.Table) -> None:
    path = ipvs.trace(table, service("kubernetes"))
    assert (path.service, path.mode, path.refusals, path.complete) == ("default/kubernetes", "ipvs", [], True)
    (branch,) = path.branches
    assert (branch.kind, branch.address, branch.entry, branch.line, branch.family) == (
        "cluster IP", "10.96.0.1:443/tcp", "virtual server TCP 10.96.0.1:443 rr", 16, 4)
    assert [(e.address, e.share, e.via, e.pick, e.line) for e in branch.endpoints] == [
        ("192.168.0.2:6443", 1.0, "real server", "rr, weight 1", 17)]
    assert branch.notes == [] and branch.affinity == ""


def test_dns_has_a_branch_per_port_and_protocol(table: ipvs.Table) -> None:
    path = ipvs.trace(table, service("kube-dns"))
    assert [(b.address, b.entry) for b in path.branches] == [
        ("10.96.0.10:53/udp", "virtual server UDP 10.96.0.10:53 rr"),
        ("10.96.0.10:53/tcp", "virtual server TCP 10.96.0.10:53 rr"),
        ("10.96.0.10:9153/tcp", "virtual server TCP 10.96.0.10:9153 rr"),
    ]
    for branch in path.branches:
        assert [(e.ip, e.share) for e in branch.endpoints] == [("10.244.0.2", 0.5), ("10.244.1.3", 0.5)]
    assert path.endpoints == ["10.244.0.2:53", "10.244.0.2:9153", "10.244.1.3:53", "10.244.1.3:9153"]


def test_a_typed_address_is_traced_as_an_address_of_unknown_kind(table: ipvs.Table) -> None:
    """A node port's address or a load balancer's is no cluster IP: without the API server the kind is
    not known, and neither are the ipset rules that apply (none are shown)."""
    rules = iptables.parse(text("iptables-save-nat.txt"))
    path = ipvs.trace(table, ipvs.spec_from_address("192.168.0.11:30080"), iptables_rules=rules)
    assert path.service == "192.168.0.11:30080/tcp"
    assert [(b.kind, b.entry) for b in path.branches] == [("address", "virtual server TCP 192.168.0.11:30080 rr")]
    assert path.branches[0].notes == [
        "a cluster IP, a node's address (node port), an external or a load-balancer IP: only the API server says "
        "which, and so which of kube-proxy's ipset rules apply (give the service's name and --kubeconfig to see them)"]
    missing = ipvs.trace(table, ipvs.spec_from_address("10.96.0.99:80"))
    assert [(b.entry, b.endpoints, b.notes[0]) for b in missing.branches] == [(
        "no virtual server", [],
        "IPVS has no virtual server TCP 10.96.0.99:80: kube-proxy has not programmed it "
        "(is it running, in IPVS mode, on this node?)")]
    assert not missing.complete and missing.refusals == []


def test_every_way_into_a_load_balancer(table: ipvs.Table) -> None:
    path = ipvs.trace(table, service("web"))
    assert [(b.kind, b.address, b.ip) for b in path.branches] == [
        ("cluster IP", "10.103.45.20:80/tcp", "10.103.45.20"),
        ("external IP", "192.168.0.100:80/tcp", "192.168.0.100"),
        ("load balancer", "203.0.113.10:80/tcp", "203.0.113.10"),
        ("node port", "30080/tcp", None),
    ]
    for branch in path.branches:
        assert [e.address for e in branch.endpoints] == WEB_REAL
        assert [e.share for e in branch.endpoints] == [0.5, 0.5, 0.0]
    node_port = path.branches[3]
    assert (node_port.entry, node_port.line) == ("virtual servers TCP <node address>:30080 rr", 4)
    assert node_port.notes == [
        "on node addresses 192.168.0.11 (line 4), 10.244.1.0 (line 34), 10.244.1.1 (line 38)",
        "IPVS does not say which addresses are the node's: these are every address with this port that is "
        "none of the service's own",
    ]
    assert path.refusals == []  # one real server is draining; two still take new connections


def test_node_ips_narrow_the_node_port(table: ipvs.Table) -> None:
    path = ipvs.trace(table, service("web"), node_ips=["192.168.0.11"])
    assert path.branches[3].notes == ["on node addresses 192.168.0.11 (line 4)"]
    elsewhere = ipvs.trace(table, service("web"), node_ips=["192.168.0.12"])
    assert elsewhere.branches[3].notes == [
        "IPVS has no virtual server TCP port 30080 on any node address given: kube-proxy has not programmed "
        "it (is it running, in IPVS mode, on this node?)"]


def test_older_kube_proxy_node_ports_on_loopback() -> None:
    """kube-proxy before it left loopback out gave node ports a virtual server on 127.0.0.1 too: it is
    one more node address, and node_ips leaves it out like any other."""
    old = ipvs.parse("-A -t 127.0.0.1:30080 -s rr\n-a -t 127.0.0.1:30080 -r 10.244.1.5:8080 -m -w 1\n"
                     "-A -t 192.168.0.11:30080 -s rr\n-a -t 192.168.0.11:30080 -r 10.244.1.5:8080 -m -w 1\n")
    assert ipvs.trace(old, service("web")).branches[3].notes[0] == (
        "on node addresses 127.0.0.1 (line 1), 192.168.0.11 (line 3)")
    narrowed = ipvs.trace(old, service("web"), node_ips=["192.168.0.11"])
    assert narrowed.branches[3].notes == ["on node addresses 192.168.0.11 (line 3)"]


def test_a_draining_real_server(table: ipvs.Table) -> None:
    draining = ipvs.trace(table, service("web")).branches[0].endpoints[2]
    assert (draining.address, draining.share, draining.pick) == (
        "10.244.2.7:8080", 0.0, "rr, weight 0, draining: no new connections, 3 active left")
    # every real server draining: the connections there go on, a new one is refused
    alone = ipvs.parse("-A -t 10.96.5.5:80 -s rr\n-a -t 10.96.5.5:80 -r 10.244.2.7:8080 -m -w 0\n")
    path = ipvs.trace(alone, ipvs.spec_from_address("10.96.5.5:80"))
    assert [e.address for e in path.branches[0].endpoints] == ["10.244.2.7:8080"]
    (refusal,) = path.refusals
    assert (refusal.verdict, refusal.where, refusal.line) == ("reject", "IPVS virtual server TCP 10.96.5.5:80 rr", 1)
    assert refusal.text.startswith("every real server has weight 0")


def test_session_affinity_once_per_branch(table: ipvs.Table) -> None:
    path = ipvs.trace(table, service("sticky"))
    (branch,) = path.branches
    assert (branch.affinity, branch.notes) == ("ClientIP, 10800 s", [])
    rendered = proxypath.render(proxypath.tree(path))
    assert rendered.count("session affinity") == 1
    # the Service says ClientIP, IPVS does not persist: kube-proxy is behind, and the trace says so
    plain = ipvs.parse("-A -t 10.106.7.33:6379 -s rr\n-a -t 10.106.7.33:6379 -r 10.244.1.8:6379 -m -w 1\n")
    (late,) = ipvs.trace(plain, service("sticky")).branches
    assert late.affinity == ""
    assert late.notes == ["the Service asks for session affinity ClientIP, 10800 s, but the virtual server has "
                          "none: kube-proxy has not caught up with the Service"]


def test_weighted_shares() -> None:
    weighted = ipvs.parse("-A -t 10.96.7.7:80 -s wrr\n-a -t 10.96.7.7:80 -r 10.244.1.1:80 -m -w 3\n"
                          "-a -t 10.96.7.7:80 -r 10.244.1.2:80 -m -w 1\n")
    path = ipvs.trace(weighted, ipvs.spec_from_address("10.96.7.7:80"))
    assert [(e.share, e.pick) for e in path.branches[0].endpoints] == [(0.75, "wrr, weight 3"), (0.25, "wrr, weight 1")]
    # rr takes turns among the live ones whatever their weights
    turns = ipvs.parse("-A -t 10.96.7.7:80 -s rr\n-a -t 10.96.7.7:80 -r 10.244.1.1:80 -m -w 3\n"
                       "-a -t 10.96.7.7:80 -r 10.244.1.2:80 -m -w 1\n")
    assert [e.share for e in ipvs.trace(turns, ipvs.spec_from_address("10.96.7.7:80")).branches[0].endpoints] == [0.5, 0.5]


def test_a_service_without_endpoints_is_rejected(table: ipvs.Table) -> None:
    path = ipvs.trace(table, service("empty"))
    assert path.branches == [] and not path.complete
    (refusal,) = path.refusals
    assert (refusal.kind, refusal.address, refusal.verdict, refusal.where, refusal.line) == (
        "cluster IP", "10.99.1.1:80/tcp", "reject", "IPVS virtual server TCP 10.99.1.1:80 rr", 24)
    assert refusal.text == ("no real server (the service has no endpoints): a new connection gets ICMP port "
                            "unreachable")


def test_ipv6_and_dual_stack(table: ipvs.Table, nat: iptables.Ruleset, nat6: iptables.Ruleset) -> None:
    v6 = ipvs.trace(table, service("v6only"), nat6)
    assert v6.families == [6]
    assert [e.address for e in v6.branches[0].endpoints] == ["[fd00:10:244:1::5]:8080", "[fd00:10:244:2::6]:8080"]
    assert v6.branches[0].notes[1] == ("ip6tables nat KUBE-SERVICES, line 24: -m set --match-set KUBE-6-CLUSTER-IP "
                                       "dst,dst -j ACCEPT (lets it on to IPVS, which does the DNAT)")
    dual = ipvs.trace(table, service("dual"), nat)
    assert dual.families == [4, 6]
    assert [(b.family, b.address, [e.address for e in b.endpoints]) for b in dual.branches] == [
        (4, "10.108.4.4:443/tcp", ["10.244.1.9:8443"]),
        (6, "[fd00:10:96::4]:443/tcp", ["[fd00:10:244:1::9]:8443"]),
    ]
    assert dual.branches[1].notes == [
        "the rules given are iptables-save's (IPv4); IPv6's are in ip6tables-save: not checked"]
    assert "IPv6 cluster IP [fd00:10:96::4]:443/tcp" in proxypath.render(proxypath.tree(dual))


def test_iptables_rules_for_each_way_in(table: ipvs.Table, nat: iptables.Ruleset) -> None:
    path = ipvs.trace(table, service("web"), nat, node_ips=NODE)
    notes = {b.kind: b.notes for b in path.branches}
    assert notes["cluster IP"] == [
        "iptables nat KUBE-SERVICES, line 24: ! -s 10.244.0.0/16 -m set --match-set KUBE-CLUSTER-IP dst,dst "
        "-j KUBE-MARK-MASQ (marks it for masquerade in KUBE-POSTROUTING)",
        "iptables nat KUBE-SERVICES, line 29: -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT "
        "(lets it on to IPVS, which does the DNAT)",
        "iptables nat KUBE-POSTROUTING, line 21: -j MASQUERADE --random-fully (masquerades what was marked)",
    ]
    # the chain a rule sends it on to comes right after that rule, as a packet meets them
    assert [n.split(":")[0] for n in notes["load balancer"]] == [
        "iptables nat KUBE-SERVICES, line 23", "iptables nat KUBE-LOAD-BALANCER, line 15",
        "iptables nat KUBE-SERVICES, line 30", "iptables nat KUBE-POSTROUTING, line 21"]
    assert [n.split(":")[0] for n in notes["node port"][1:]] == [
        "iptables nat KUBE-SERVICES, line 28", "iptables nat KUBE-NODE-PORT, line 17",
        "iptables nat KUBE-POSTROUTING, line 21"]
    assert len(notes["external IP"]) == 4


def test_iptables_without_kube_proxys_rules(table: ipvs.Table) -> None:
    bare = iptables.parse("*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n")
    path = ipvs.trace(table, service("web"), bare, node_ips=NODE)
    assert path.branches[0].notes == [
        "iptables-save nat has no rule matching ipset KUBE-CLUSTER-IP: kube-proxy's IPVS-mode iptables rules are "
        "missing (is kube-proxy running in IPVS mode? IPv4 rules are in iptables-save, IPv6 ones in ip6tables-save)"]
    assert "KUBE-NODE-PORT-LOCAL-TCP or KUBE-NODE-PORT-TCP" in path.branches[3].notes[-1]


def test_the_tree_an_operator_reads(table: ipvs.Table, nat: iptables.Ruleset) -> None:
    path = ipvs.trace(table, service("web"), nat, node_ips=NODE)
    assert proxypath.render(proxypath.tree(path, {"10.244.2.6": "node-2's subnet"})) == """\
default/web  (kube-proxy ipvs mode)
├─ cluster IP 10.103.45.20:80/tcp  (virtual server TCP 10.103.45.20:80 rr, line 25)
│  ├─ iptables nat KUBE-SERVICES, line 24: ! -s 10.244.0.0/16 -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ (marks it for masquerade in KUBE-POSTROUTING)
│  ├─ iptables nat KUBE-SERVICES, line 29: -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT (lets it on to IPVS, which does the DNAT)
│  ├─ iptables nat KUBE-POSTROUTING, line 21: -j MASQUERADE --random-fully (masquerades what was marked)
│  ├─ real server (rr, weight 1, 50%) → DNAT 10.244.1.5:8080
│  ├─ real server (rr, weight 1, 50%) → DNAT 10.244.2.6:8080  [node-2's subnet]
│  └─ real server (rr, weight 0, draining: no new connections, 3 active left, 0%) → DNAT 10.244.2.7:8080
├─ external IP 192.168.0.100:80/tcp  (virtual server TCP 192.168.0.100:80 rr, line 8)
│  ├─ iptables nat KUBE-SERVICES, line 25: -m set --match-set KUBE-EXTERNAL-IP dst,dst -j KUBE-MARK-MASQ (marks it for masquerade in KUBE-POSTROUTING)
│  ├─ iptables nat KUBE-SERVICES, line 26: -m set --match-set KUBE-EXTERNAL-IP dst,dst -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT (lets it on to IPVS, which does the DNAT)
│  ├─ iptables nat KUBE-SERVICES, line 27: -m set --match-set KUBE-EXTERNAL-IP dst,dst -m addrtype --dst-type LOCAL -j ACCEPT (lets it on to IPVS, which does the DNAT)
│  ├─ iptables nat KUBE-POSTROUTING, line 21: -j MASQUERADE --random-fully (masquerades what was marked)
│  ├─ real server (rr, weight 1, 50%) → DNAT 10.244.1.5:8080
│  ├─ real server (rr, weight 1, 50%) → DNAT 10.244.2.6:8080  [node-2's subnet]
│  └─ real server (rr, weight 0, draining: no new connections, 3 active left, 0%) → DNAT 10.244.2.7:8080
├─ load balancer 203.0.113.10:80/tcp  (virtual server TCP 203.0.113.10:80 rr, line 12)
│  ├─ iptables nat KUBE-SERVICES, line 23: -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER (goes on to KUBE-LOAD-BALANCER)
│  ├─ iptables nat KUBE-LOAD-BALANCER, line 15: -j KUBE-MARK-MASQ (marks it for masquerade in KUBE-POSTROUTING)
│  ├─ iptables nat KUBE-SERVICES, line 30: -m set --match-set KUBE-LOAD-BALANCER dst,dst -j ACCEPT (lets it on to IPVS, which does the DNAT)
│  ├─ iptables nat KUBE-POSTROUTING, line 21: -j MASQUERADE --random-fully (masquerades what was marked)
│  ├─ real server (rr, weight 1, 50%) → DNAT 10.244.1.5:8080
│  ├─ real server (rr, weight 1, 50%) → DNAT 10.244.2.6:8080  [node-2's subnet]
│  └─ real server (rr, weight 0, draining: no new connections, 3 active left, 0%) → DNAT 10.244.2.7:8080
└─ node port 30080/tcp  (virtual servers TCP <node address>:30080 rr, line 4)
   ├─ on node addresses 192.168.0.11 (line 4), 10.244.1.0 (line 34), 10.244.1.1 (line 38)
   ├─ iptables nat KUBE-SERVICES, line 28: -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT (traffic to a node address goes on to KUBE-NODE-PORT)
   ├─ iptables nat KUBE-NODE-PORT, line 17: -p tcp -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ (marks it for masquerade in KUBE-POSTROUTING)
   ├─ iptables nat KUBE-POSTROUTING, line 21: -j MASQUERADE --random-fully (masquerades what was marked)
   ├─ real server (rr, weight 1, 50%) → DNAT 10.244.1.5:8080
   ├─ real server (rr, weight 1, 50%) → DNAT 10.244.2.6:8080  [node-2's subnet]
   └─ real server (rr, weight 0, draining: no new connections, 3 active left, 0%) → DNAT 10.244.2.7:8080
"""


def test_refusal_in_the_tree(table: ipvs.Table) -> None:
    assert proxypath.render(proxypath.tree(ipvs.trace(table, service("empty")))) == (
        "default/empty  (kube-proxy ipvs mode)\n"
        "└─ REJECT cluster IP 10.99.1.1:80/tcp in IPVS virtual server TCP 10.99.1.1:80 rr, line 24: \"no real "
        "server (the service has no endpoints): a new connection gets ICMP port unreachable\"\n")


# ---------------------------------------------------------------- listing

def test_services_in_and_service_ports(table: ipvs.Table) -> None:
    addresses = ipvs.services_in(table)
    assert addresses[:4] == ["192.168.0.11:30080/tcp", "192.168.0.100:80/tcp", "203.0.113.10:80/tcp", "10.96.0.1:443/tcp"]
    assert len(addresses) == 15 and "10.96.0.10:53/udp" in addresses and "[fd00:10:96::a1b2]:80/tcp" in addresses
    rows = {row.service: row for row in ipvs.service_ports(table)}
    assert list(rows) == addresses
    dns = rows["10.96.0.10:53/udp"]
    assert (dns.port, dns.addresses, dns.node_ports, dns.endpoints, dns.rejected) == (
        "", ["10.96.0.10:53/udp"], [], ["10.244.0.2:53", "10.244.1.3:53"], False)
    assert rows["10.103.45.20:80/tcp"].endpoints == WEB_REAL[:2]  # the draining one takes nothing new
    assert rows["10.99.1.1:80/tcp"].rejected
