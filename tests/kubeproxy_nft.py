"""kube-proxy's nftables rules for tests, modelled on what kube-proxy writes (pkg/proxy/nftables/proxier.go
and the expected ruleset of its TestOverallNFTablesRules): `script` gives them in `nft -f` form, to load
into a namespace with the real nft; `listing` gives the text `nft list ruleset` prints for them (nft 1.0.6,
checked against the real nft in tests/test_nftables.py), for tables too big to load quickly.

Only tests compute kube-proxy's names (base32 of sha256, as kube-proxy does): the reader under test
finds chains by the `ns/name/proto/port` part of their names and never recomputes a hash.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass, field

POD_CIDR = {4: "10.0.0.0/8", 6: "fd00:10::/64"}
SERVICE_CIDR = {4: "172.30.0.0/16", 6: "fd00:10:96::/112"}


@dataclass
class Service:
    namespace: str
    name: str
    cluster_ip: str  # its family is the table's: an IPv6 address goes to table ip6 kube-proxy
    port: int
    endpoints: list[str]  # "10.180.0.1:80", "[fd00:10::5]:80"
    port_name: str = "p80"
    protocol: str = "tcp"
    node_port: int | None = None
    external_ips: list[str] = field(default_factory=list)
    lb_ips: list[str] = field(default_factory=list)
    source_ranges: list[str] = field(default_factory=list)  # loadBalancerSourceRanges
    affinity: int | None = None  # ClientIP affinity timeout, seconds
    local: bool = False  # externalTrafficPolicy Local
    local_endpoints: list[str] = field(default_factory=list)  # the endpoints on this node (with local)

    @property
    def family(self) -> int:
        return 6 if ":" in self.cluster_ip else 4

    @property
    def port_string(self) -> str:  # kube-proxy's ServicePortName.String(): the comments' text
        return f"{self.namespace}/{self.name}:{self.port_name}" if self.port_name else f"{self.namespace}/{self.name}"

    def base(self) -> str:
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"

    def chain(self, prefix: str) -> str:
        return f"{prefix}-{hashed(self.base())}"

    def endpoint(self, prefix: str, endpoint: str) -> str:
        ip, _, port = endpoint.rpartition(":")
        ip = ip.strip("[]").replace(":", ".")
        return f"{prefix}-{hashed(f'{self.base()}__{ip}/{port}')}"


def hashed(name: str) -> str:
    """kube-proxy's hashAndTruncate: 8 characters of base32(sha256(name)), a dash, the name."""
    return base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8] + "-" + name


def duration(seconds: int) -> str:
    """A timeout as nft prints it: 3h, 1h1m1s, 1m30s."""
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"


@dataclass
class _Set:
    kind: str  # set or map
    name: str
    spec: str  # as `add set` takes it
    printed: list[str]  # the lines nft prints before the elements
    elements: list[str] = field(default_factory=list)  # as printed, which nft also takes


@dataclass
class _Chain:
    name: str
    spec: str = ""  # `{ type … ; }` for a base chain or a comment
    printed: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # as printed, which nft also takes


@dataclass
class Table:
    family: int
    sets: list[_Set] = field(default_factory=list)
    chains: list[_Chain] = field(default_factory=list)

    @property
    def nft_family(self) -> str:
        return "ip6" if self.family == 6 else "ip"

    def set(self, name: str) -> _Set:
        return next(s for s in self.sets if s.name == name)

    def add_chain(self, name: str) -> _Chain:
        chain = _Chain(name)
        self.chains.append(chain)
        return chain


def _base(family: int, node_ips: list[str], service_cidr: str) -> Table:
    ipx, addr = ("ip6", "ipv6_addr") if family == 6 else ("ip", "ipv4_addr")
    table = Table(family)
    for kind, name, key, comment in (
            ("set", "cluster-ips", addr, "Active ClusterIPs"),
            ("set", "nodeport-ips", addr, "IPs that accept NodePort traffic"),
            ("map", "firewall-ips", f"{addr} . inet_proto . inet_service : verdict",
             "destinations that are subject to LoadBalancerSourceRanges"),
            ("map", "no-endpoint-nodeports", "inet_proto . inet_service : verdict",
             "vmap to drop or reject packets to service nodeports with no endpoints"),
            ("map", "no-endpoint-services", f"{addr} . inet_proto . inet_service : verdict",
             "vmap to drop or reject packets to services with no endpoints"),
            ("map", "service-ips", f"{addr} . inet_proto . inet_service : verdict",
             "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
            ("map", "service-nodeports", "inet_proto . inet_service : verdict", "NodePort traffic")):
        table.sets.append(_Set(kind, name, f'{{ type {key} ; comment "{comment}" ; }}',
                               [f"type {key}", f'comment "{comment}"']))
    table.set("nodeport-ips").elements += node_ips
    hooks = {  # name: (input spec, as printed)
        "filter-prerouting-pre-dnat": ("filter hook prerouting priority -110", "filter hook prerouting priority dstnat - 10"),
        "filter-output-pre-dnat": ("filter hook output priority -110", "filter hook output priority -110"),
        "filter-forward": ("filter hook forward priority 0", "filter hook forward priority filter"),
        "filter-input": ("filter hook input priority 0", "filter hook input priority filter"),
        "filter-output": ("filter hook output priority 0", "filter hook output priority filter"),
        "nat-output": ("nat hook output priority -100", "nat hook output priority -100"),
        "nat-postrouting": ("nat hook postrouting priority 100", "nat hook postrouting priority srcnat"),
        "nat-prerouting": ("nat hook prerouting priority -100", "nat hook prerouting priority dstnat"),
    }
    rules = {
        "cluster-ips-check": [f'{ipx} daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
                              f'{ipx} daddr {service_cidr} drop comment "Drop traffic to unallocated ClusterIPs"'],
        "filter-prerouting-pre-dnat": ["ct state new jump firewall-check"],
        "filter-output-pre-dnat": ["ct state new jump firewall-check"],
        "filter-forward": ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"],
        "filter-input": ["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"],
        "filter-output": ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"],
        "firewall-check": [f"{ipx} daddr . meta l4proto . th dport vmap @firewall-ips"],
        "mark-for-masquerade": ["meta mark set meta mark | 0x00004000"],
        "masquerading": ["meta mark & 0x00004000 == 0x00000000 return", "meta mark set meta mark ^ 0x00004000",
                         "masquerade fully-random"],
        "nat-output": ["jump services"],
        "nat-postrouting": ["jump masquerading"],
        "nat-prerouting": ["jump services"],
        "nodeport-endpoints-check": [f"{ipx} daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"],
        "reject-chain": ["reject"],
        "services": [f"{ipx} daddr . meta l4proto . th dport vmap @service-ips",
                     f"{ipx} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"],
        "service-endpoints-check": [f"{ipx} daddr . meta l4proto . th dport vmap @no-endpoint-services"],
    }
    for name in ("cluster-ips-check", "filter-prerouting-pre-dnat", "filter-output-pre-dnat", "filter-forward",
                 "filter-input", "filter-output", "firewall-check", "mark-for-masquerade", "masquerading",
                 "nat-output", "nat-postrouting", "nat-prerouting", "nodeport-endpoints-check", "reject-chain",
                 "services", "service-endpoints-check"):
        chain = table.add_chain(name)
        chain.rules = list(rules[name])
        if name in hooks:
            spec, printed = hooks[name]
            chain.spec = f"{{ type {spec} ; }}"
            chain.printed = [f"type {printed}; policy accept;"]
        if name == "reject-chain":
            comment = 'comment "helper for @no-endpoint-services / @no-endpoint-nodeports"'
            chain.spec, chain.printed = f"{{ {comment} ; }}", [comment]
    return table


def tables(services: list[Service], node_ips: dict[int, list[str]] | None = None,
           service_cidr: dict[int, str] | None = None) -> list[Table]:
    """kube-proxy's tables for `services`: one per family the services use (ip, then ip6). kube-proxy
    drops what is left for its service CIDR (`service_cidr`, SERVICE_CIDR's by default) after DNAT: a
    lab whose pods are inside 172.30.0.0/16 gives its cluster's."""
    node_ips = node_ips or {4: ["192.168.0.2"], 6: ["2001:db8::1"]}
    cidrs = {**SERVICE_CIDR, **(service_cidr or {})}
    out = []
    for family in (4, 6):
        mine = [s for s in services if s.family == family]
        if mine:
            table = _base(family, node_ips.get(family, []), cidrs[family])
            for service in mine:
                _add_service(table, service)
            out.append(table)
    return out


def _add_service(table: Table, svc: Service) -> None:
    ipx = "ip6" if table.family == 6 else "ip"
    key = f"{svc.protocol} . {svc.port}"
    elements = {s.name: s.elements for s in table.sets}
    cluster_chain = svc.chain("service")
    local_chain = svc.chain("local")
    external = svc.chain("external")
    firewall = svc.chain("firewall")
    reachable = svc.endpoints  # with a Local policy too: pod and node traffic may use any endpoint
    has_endpoints = bool(svc.endpoints)
    external_has = has_endpoints and (not svc.local or bool(svc.local_endpoints))
    externally = bool(svc.node_port or svc.external_ips or svc.lb_ips)
    for endpoint in reachable:
        table.add_chain(svc.endpoint("endpoint", endpoint))
    if has_endpoints:
        table.add_chain(cluster_chain)
    if svc.local and svc.local_endpoints:
        table.add_chain(local_chain)
    if has_endpoints and externally:
        table.add_chain(external)
    uses_firewall = bool(svc.lb_ips and svc.source_ranges)
    if uses_firewall:
        table.add_chain(firewall)
    chains = {c.name: c for c in table.chains}
    refuse = "goto reject-chain" if not has_endpoints else "drop"
    elements["cluster-ips"].append(svc.cluster_ip)
    comment = f'comment "{svc.port_string}"'
    if has_endpoints:
        elements["service-ips"].append(f"{svc.cluster_ip} . {key} : goto {cluster_chain}")
    else:
        elements["no-endpoint-services"].append(f"{svc.cluster_ip} . {key} {comment} : {refuse}")
    for ip in svc.external_ips + svc.lb_ips:
        if has_endpoints:
            elements["service-ips"].append(f"{ip} . {key} : goto {external}")
        if uses_firewall and ip in svc.lb_ips:
            elements["firewall-ips"].append(f"{ip} . {key} : goto {firewall}")
        if not external_has:
            elements["no-endpoint-services"].append(f"{ip} . {key} {comment} : {refuse}")
    if svc.node_port:
        if has_endpoints:
            elements["service-nodeports"].append(f"{svc.protocol} . {svc.node_port} : goto {external}")
        if not external_has:
            elements["no-endpoint-nodeports"].append(f"{svc.protocol} . {svc.node_port} {comment} : {refuse}")
    if not has_endpoints:
        return
    chains[cluster_chain].rules.append(
        f"{ipx} daddr {svc.cluster_ip} {ipx} saddr != {POD_CIDR[table.family]} jump mark-for-masquerade")
    if externally:
        rules = chains[external].rules
        if not svc.local:
            rules.append("jump mark-for-masquerade")
        else:
            rules += [f'{ipx} saddr {POD_CIDR[table.family]} goto {cluster_chain} comment "short-circuit pod traffic"',
                      'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
                      f'fib saddr type local goto {cluster_chain} comment "short-circuit local traffic"']
        if external_has:
            rules.append(f"goto {local_chain if svc.local else cluster_chain}")
    if uses_firewall:
        sources = ", ".join(sorted(svc.source_ranges, key=ipaddress.ip_network))  # nft sorts an interval set
        chains[firewall].rules.append(f"{ipx} saddr != {{ {sources} }} drop" if len(svc.source_ranges) > 1
                                      else f"{ipx} saddr != {sources} drop")
    if svc.affinity is not None:
        for endpoint in reachable:
            name = svc.endpoint("affinity", endpoint)
            spec = f"{{ type ipv{table.family}_addr ; flags dynamic,timeout ; timeout {svc.affinity}s ; }}"
            table.sets.append(_Set("set", name, spec, [f"type ipv{table.family}_addr", "size 65535", "flags dynamic,timeout",
                                    f"timeout {duration(svc.affinity)}"]))
    for chain, endpoints in ((cluster_chain, svc.endpoints), (local_chain, svc.local_endpoints if svc.local else [])):
        if not endpoints:
            continue
        rules = chains[chain].rules
        if svc.affinity is not None:
            rules += [f"{ipx} saddr @{svc.endpoint('affinity', e)} goto {svc.endpoint('endpoint', e)}" for e in endpoints]
        picks = ", ".join(f"{i} : goto {svc.endpoint('endpoint', e)}" for i, e in enumerate(endpoints))
        rules.append(f"numgen random mod {len(endpoints)} vmap {{ {picks} }}")
    for endpoint in reachable:
        ip = endpoint.rpartition(":")[0].strip("[]")
        rules = chains[svc.endpoint("endpoint", endpoint)].rules
        rules.append(f"{ipx} saddr {ip} jump mark-for-masquerade")
        if svc.affinity is not None:
            rules.append(f"update @{svc.endpoint('affinity', endpoint)} {{ {ipx} saddr }}")
        rules.append(f"meta l4proto {svc.protocol} dnat to {endpoint}")


def script(services: list[Service], node_ips: dict[int, list[str]] | None = None,
           service_cidr: dict[int, str] | None = None) -> str:
    """The rules as `nft -f` input: tables, sets and maps, chains, then rules and elements (a map element
    or a rule may only name a chain that exists)."""
    out: list[str] = []
    for table in tables(services, node_ips, service_cidr):
        where = f"{table.nft_family} kube-proxy"
        out.append(f'add table {where} {{ comment "rules for kube-proxy" ; }}')
        out += [f"add {s.kind} {where} {s.name} {s.spec}" for s in table.sets]
        out += [f"add chain {where} {c.name} {c.spec}".rstrip() for c in table.chains]
        out += [f"add rule {where} {c.name} {rule}" for c in table.chains for rule in c.rules]
        out += [f"add element {where} {s.name} {{ {e} }}" for s in table.sets for e in s.elements]
    return "\n".join(out) + "\n"


def listing(services: list[Service], node_ips: dict[int, list[str]] | None = None,
            service_cidr: dict[int, str] | None = None) -> str:
    """What `nft list ruleset` prints once `script(services)` is loaded (nft 1.0.6): sets and maps in the
    order made, then chains; an IPv4 set's addresses two a line, IPv6 addresses and a map's elements one a line.
The kernel decides the order of a map's elements: the real listing may order them otherwise."""
    out: list[str] = []
    for table in tables(services, node_ips, service_cidr):
        out += [f"table {table.nft_family} kube-proxy {{", '\tcomment "rules for kube-proxy"']
        blocks: list[list[str]] = []
        for s in table.sets:
            block = [f"\t{s.kind} {s.name} {{"] + [f"\t\t{line}" for line in s.printed]
            if s.elements:
                per_line = 2 if s.kind == "set" and table.family == 4 else 1
                rows = [", ".join(s.elements[i:i + per_line]) for i in range(0, len(s.elements), per_line)]
                text = ",\n\t\t\t     ".join(rows)
                block.append(f"\t\telements = {{ {text} }}")
            blocks.append(block + ["\t}"])
        for c in table.chains:
            blocks.append([f"\tchain {c.name} {{"] + [f"\t\t{line}" for line in c.printed + c.rules] + ["\t}"])
        for i, block in enumerate(blocks):
            if i:
                out.append("")
            out += block
        out.append("}")
    return "\n".join(out) + "\n"
