"""Rules in kube-proxy's iptables format, for the tests: chain names from kube-proxy's own hash
(base32 of sha256, 16 characters; see facts.md), old (the article's) and new comment styles.

Only the tests compute names; the tracer must follow jumps and comments."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field


def chain_hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


@dataclass
class Service:
    namespace: str
    name: str
    cluster_ip: str
    port: int
    endpoints: list[str] = field(default_factory=list)  # "ip:port"
    node_port: int | None = None
    protocol: str = "tcp"
    local: bool = False  # externalTrafficPolicy: Local (KUBE-SVL- on the node-port path)
    affinity: int | None = None  # sessionAffinity ClientIP with this timeout (seconds)

    @property
    def family(self) -> int:
        return 6 if ":" in self.cluster_ip else 4

    @property
    def host_bits(self) -> str:
        return "/128" if self.family == 6 else "/32"

    def port_name(self, old: bool) -> str:
        # the article's kube-proxy wrote an unnamed port as "ns/name:"
        return f"{self.namespace}/{self.name}" + (":" if old else "")

    def svc(self, old: bool) -> str:
        return "KUBE-SVC-" + chain_hash(self.port_name(old) + self.protocol)

    def svl(self) -> str:
        return "KUBE-SVL-" + chain_hash(self.port_name(False) + self.protocol)

    def ext(self) -> str:
        return "KUBE-EXT-" + chain_hash(self.port_name(False) + self.protocol)

    def sep(self, endpoint: str, old: bool) -> str:
        return "KUBE-SEP-" + chain_hash(self.port_name(old) + self.protocol + endpoint)


def nat_rules(services: list[Service], old: bool = False) -> tuple[list[str], list[str]]:
    """(chain declarations, rules) of the nat table for these services."""
    chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"]
    rules = [
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE",
    ]
    for s in services:
        if not s.endpoints:
            continue
        pn = s.port_name(old)
        cluster = f"{pn} cluster IP" if old else f"{s.namespace}/{s.name} cluster IP"
        if old:
            cluster = f"{pn} cluster IP"  # "default/example-service: cluster IP"
        svc = s.svc(old)
        chains.append(svc)
        rules.append(f"-A KUBE-SERVICES -d {s.cluster_ip}{s.host_bits} -p {s.protocol} -m comment --comment "
                     f"\"{cluster}\" -m {s.protocol} --dport {s.port} -j {svc}")
        n = len(s.endpoints)
        if s.affinity is not None:
            # ClientIP affinity: a client seen within the timeout goes back to its endpoint, before the
            # statistic rules share out new clients (kube-proxy's iptables proxier writes these first)
            for ep in s.endpoints:
                comment = pn if old else f"{s.namespace}/{s.name} -> {ep}"
                sep = s.sep(ep, old)
                rules.append(f"-A {svc} -m comment --comment \"{comment}\" -m recent --name {sep} --rcheck "
                             f"--seconds {s.affinity} --reap -j {sep}")
        mask = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" if s.family == 6 else "255.255.255.255"
        for i, ep in enumerate(s.endpoints):
            sep = s.sep(ep, old)
            chains.append(sep)
            comment = pn if old else f"{s.namespace}/{s.name} -> {ep}"
            prob = f" -m statistic --mode random --probability {1 / (n - i):0.11f}" if i < n - 1 else ""
            rules.append(f"-A {svc} -m comment --comment \"{comment}\"{prob} -j {sep}")
            sep_comment = pn if old else f"{s.namespace}/{s.name}"
            ip = ep.rsplit(":", 1)[0].strip("[]")
            rules.append(f"-A {sep} -s {ip}{s.host_bits} -m comment --comment \"{sep_comment}\" -j KUBE-MARK-MASQ")
            recent = (f" -m recent --set --name {sep} --mask {mask} --rsource" if s.affinity is not None else "")
            rules.append(f"-A {sep} -p {s.protocol} -m comment --comment \"{sep_comment}\"{recent} -m {s.protocol} "
                         f"-j DNAT --to-destination {ep}")
        if s.node_port:
            if old:
                rules.append(f"-A KUBE-NODEPORTS -p {s.protocol} -m comment --comment \"{pn}\" -m {s.protocol} "
                             f"--dport {s.node_port} -j KUBE-MARK-MASQ")
                rules.append(f"-A KUBE-NODEPORTS -p {s.protocol} -m comment --comment \"{pn}\" -m {s.protocol} "
                             f"--dport {s.node_port} -j {svc}")
            else:
                ext = s.ext()
                chains.append(ext)
                rules.append(f"-A KUBE-NODEPORTS -p {s.protocol} -m comment --comment \"{s.namespace}/{s.name}\" "
                             f"-m {s.protocol} --dport {s.node_port} -j {ext}")
                rules.append(f"-A {ext} -m comment --comment \"masquerade traffic for {s.namespace}/{s.name} "
                             f"external destinations\" -j KUBE-MARK-MASQ")
                if s.local:
                    svl = s.svl()
                    chains.append(svl)
                    rules.append(f"-A {ext} -j {svl}")
                    for ep in s.endpoints:
                        rules.append(f"-A {svl} -m comment --comment \"{s.namespace}/{s.name} -> {ep}\" -j {s.sep(ep, old)}")
                else:
                    rules.append(f"-A {ext} -j {svc}")
    rules.append("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last "
                 "rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    return chains, rules


def iptables_save(services: list[Service], old: bool = False, counters: bool = False, saved: bool = False) -> str:
    """The nat and filter tables. Rules come in the order kube-proxy writes them to iptables-restore
    (a service's chains together); with `saved`, grouped by chain as iptables-save prints them (the
    kernel keeps a chain's rules together: built-in chains, then kube-proxy's in the order it made them)."""
    chains, rules = nat_rules(services, old)
    builtin = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
    if saved:
        order = {name: i for i, name in enumerate(dict.fromkeys(builtin + chains))}
        rules = sorted(rules, key=lambda rule: order[rule.split(" ", 2)[1]])  # stable: in a chain, as written
    tool = "ip6tables-save" if services and services[0].family == 6 else "iptables-save"
    out = [f"# Generated by {tool} v1.8.9 on Thu Nov 26 12:00:00 2026", "*nat"]
    out += [f":{c} ACCEPT [0:0]" for c in builtin]
    out += [f":{c} - [0:0]" for c in dict.fromkeys(chains)]
    out += [("[0:0] " if counters else "") + r for r in rules]
    out += ["COMMIT", "# Completed on Thu Nov 26 12:00:00 2026"]
    empty = [s for s in services if not s.endpoints]
    out += ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]"]
    for s in empty:
        pn = s.port_name(old)
        comment = f"{pn} has no endpoints" if old else f"{s.namespace}/{s.name} has no endpoints"
        reject = "icmp6-port-unreachable" if s.family == 6 else "icmp-port-unreachable"
        out.append(f"-A KUBE-SERVICES -d {s.cluster_ip}{s.host_bits} -p {s.protocol} -m comment --comment "
                   f"\"{comment}\" -m {s.protocol} --dport {s.port} -j REJECT --reject-with {reject}")
    out += ["COMMIT", ""]
    return "\n".join(out)
