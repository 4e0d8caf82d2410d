"""The filter table as the mesh step reads it: the FORWARD policy, whether any rule accepts the flannel
network there, and rules that drop a backend's UDP port. Rules are followed into the chains they jump to
(flanneld's FLANNEL-FWD, docker's DOCKER-USER), as the kernel walks them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from wizard.iptables import Rule, Ruleset, parse

TABLE = "filter"
STOPS = ("DROP", "REJECT")


@dataclass
class FilterTable:
    ruleset: Ruleset

    def policy(self, chain: str) -> str:
        return self.ruleset.policies.get((TABLE, chain), "ACCEPT")

    def walk(self, chain: str, seen: frozenset[str] = frozenset()) -> list[Rule]:
        """The chain's rules with the rules of each chain it jumps to in their place (RETURN ends one)."""
        out: list[Rule] = []
        for rule in self.ruleset.rules(TABLE, chain):
            target = rule.target
            if (TABLE, target) in self.ruleset.chains and target not in seen:
                out += self.walk(target, seen | {chain})
            else:
                out.append(rule)
        return out

    def accepts_network(self, chain: str, network: str) -> bool:
        """Some rule ACCEPTs new traffic from or to the network (or everything) before the policy."""
        net = ipaddress.ip_network(network, strict=False)
        for rule in self.walk(chain):
            if rule.target != "ACCEPT" or _stateful_only(rule) or rule.option("-i", "-o"):
                continue
            src, dst = rule.option("-s", "--source"), rule.option("-d", "--destination")
            if src is None and dst is None and not rule.option("-p", "--protocol"):
                return True
            for side in (src, dst):
                if side is not None and "!" not in rule.args and _covers(side, net):
                    return True
        return False

    def drops_udp(self, chain: str, port: int) -> str:
        """The first rule in `chain` that drops or rejects UDP to `port` (as iptables -S writes it), or ''."""
        for rule in self.walk(chain):
            if rule.target not in STOPS or (rule.option("-p", "--protocol") or "").lower() != "udp":
                continue
            if rule.option("-s", "--source", "-d", "--destination") is not None:
                continue  # aimed at some hosts: not the node-wide block this reports
            ports = rule.option("--dport", "--destination-port", "--dports", "--destination-ports")
            if ports is not None and _port_in(port, ports):
                return f"-A {rule.chain} " + " ".join(rule.args)
        return ""


def parse_filter(text: str) -> FilterTable:
    return FilterTable(parse(text))


def _stateful_only(rule: Rule) -> bool:
    """RELATED,ESTABLISHED rules (docker's) accept replies, never the first packet of a pod's connection."""
    state = rule.option("--ctstate", "--state") or ""
    return bool(state) and "NEW" not in state.split(",")


def _covers(text: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        side = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return side.version == net.version and net.subnet_of(side)  # type: ignore[arg-type]


def _port_in(port: int, spec: str) -> bool:
    for part in spec.split(","):
        low, _, high = part.partition(":")
        try:
            if int(low or 0) <= port <= int(high or low or 65535):
                return True
        except ValueError:
            continue
    return False
