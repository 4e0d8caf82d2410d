"""The filter table as the mesh step reads it: what happens to the first packet of a pod's connection
across nodes (FORWARD), and to the backend's UDP datagrams (INPUT), found the way the kernel finds it —
rules in order, into the chains they jump or go to, back at RETURN, the first verdict wins, else the
chain's policy.

A rule counts only when every match in it is understood and holds for the packet (addresses, interfaces,
protocol, conntrack state, comments). A rule with a match this cannot judge (`-m mark`, `-m set`,
`-m physdev`, ...) may or may not apply: it neither accepts nor drops here, so kube-proxy's mark-based
ACCEPT does not hide docker's DROP policy, and a conditional DROP is not reported as a block.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from wizard.iptables import Rule, Ruleset, parse

TABLE = "filter"
VERDICTS = ("ACCEPT", "DROP", "REJECT")
BUILT_IN = ("INPUT", "FORWARD", "OUTPUT")
# matches that say nothing about which packets a rule takes
NEUTRAL = ("-m", "--match", "--comment", "-w", "--wait")
# match modules whose options are read below
KNOWN_MODULES = ("comment", "conntrack", "state", "tcp", "udp", "icmp", "multiport")


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection: addresses, interfaces (None: unknown here), protocol, port."""

    src: str
    dst: str
    in_iface: str | None
    out_iface: str | None
    proto: str = ""  # "": any protocol a pod may use (a rule with -p matches only part of it)
    dport: int | None = None


@dataclass(frozen=True)
class Verdict:
    action: str  # ACCEPT, DROP, REJECT
    rule: str  # the rule as iptables -S writes it, or "policy" for the chain's policy
    chain: str


@dataclass
class FilterTable:
    ruleset: Ruleset

    def policy(self, chain: str) -> str:
        return self.ruleset.policies.get((TABLE, chain), "ACCEPT")

    def verdict(self, chain: str, packet: Packet) -> Verdict:
        """What the built-in `chain` does with `packet`: the first rule that surely takes it, else the policy."""
        found = self._walk(chain, packet, frozenset())
        if found is not None:
            return found
        return Verdict(self.policy(chain), "policy", chain)

    def _walk(self, chain: str, packet: Packet, seen: frozenset[str]) -> Verdict | None:
        for rule in self.ruleset.rules(TABLE, chain):
            target = rule.option("-j", "--jump", "-g", "--goto") or ""
            sure = _matches(rule, packet)
            if sure is False:
                continue
            if (TABLE, target) in self.ruleset.chains:
                if target in seen or chain in seen:
                    continue
                if sure is None:
                    continue  # a jump that may not happen: its verdicts are not sure either
                found = self._walk(target, packet, seen | {chain})
                if found is not None:
                    return found
                if rule.option("-g", "--goto") is not None:
                    return None  # a goto that falls off its chain returns past this one
                continue
            if target == "RETURN":
                if sure:
                    return None
                continue
            if target in VERDICTS and sure:
                return Verdict(target, f"-A {chain} " + " ".join(rule.args), chain)
        return None


def parse_filter(text: str) -> FilterTable:
    return FilterTable(parse(text))


def _matches(rule: Rule, packet: Packet) -> bool | None:
    """True: the rule surely takes the packet · False: surely not · None: it cannot be told."""
    args = rule.args
    sure: bool | None = True
    i = 0
    while i < len(args):
        word = args[i]
        negate = word == "!"
        if negate:
            i += 1
            word = args[i] if i < len(args) else ""
        value = args[i + 1] if i + 1 < len(args) else ""
        if word in ("-j", "--jump", "-g", "--goto"):
            break  # the target and its options: nothing after it selects packets
        result: bool | None
        if word in ("-s", "--source"):
            result = _in(packet.src, value)
        elif word in ("-d", "--destination"):
            result = _in(packet.dst, value)
        elif word in ("-i", "--in-interface"):
            result = _iface(packet.in_iface, value)
        elif word in ("-o", "--out-interface"):
            result = _iface(packet.out_iface, value)
        elif word in ("-p", "--protocol"):
            result = None if not packet.proto else value.lower() in (packet.proto, "all")
        elif word in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            result = None if packet.dport is None else _port_in(packet.dport, value)
        elif word in ("--ctstate", "--state"):
            result = "NEW" in value.split(",")
        elif word in ("-m", "--match"):
            result = True if value in KNOWN_MODULES else None
        elif word in NEUTRAL:
            result = True
        else:
            result = None  # an option of a match this does not read
        i += 2
        if result is not None and negate:
            result = not result
        if result is False:
            return False
        if result is None:
            sure = None
    return sure


def _in(address: str, spec: str) -> bool | None:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return None


def _iface(name: str | None, spec: str) -> bool | None:
    if name is None:
        return None
    return name.startswith(spec[:-1]) if spec.endswith("+") else name == spec


def _port_in(port: int, spec: str) -> bool:
    for part in spec.split(","):
        low, _, high = part.partition(":")
        try:
            if int(low or 0) <= port <= int(high or low or 65535):
                return True
        except ValueError:
            continue
    return False
