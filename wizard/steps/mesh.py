"""mesh: proves the overlay from this node to every other node that holds a lease, and names the hop
where a path breaks. It changes nothing.

flannel exists so that pods on different nodes can talk, and the failures operators meet most are
between nodes: UDP 8472 blocked, a path-MTU black hole, a stale vxlan neighbour, two nodes with one
PublicIP, FORWARD policy DROP. For each other lease under PREFIX/subnets/ the step looks, in order, at

  lease          the lease names a PublicIP and this config's backend
  underlay       the PublicIP answers ICMP (host-gw: and is on-link, as host-gw needs one L2 segment)
  port           the backend's UDP port is not refused there (vxlan 8472, udp 8285, wireguard 51820)
  overlay state  this node's kernel has what flannel programs for that lease (vxlan: the onlink route via
                 the peer's .0 on flannel.<VNI>, a permanent neighbour .0 -> VtepMAC, an fdb entry
                 VtepMAC -> PublicIP; host-gw: a route to the subnet via the PublicIP)
  overlay traffic  ICMP to the peer's flannel.<VNI> address (.0) comes back
  bridge         ICMP to the peer's bridge (.1) comes back through the overlay
  path MTU       a don't-fragment ICMP of FLANNEL_MTU bytes gets through (else: which size does)

and reports the first that fails. Every probe for every node goes out at once, with one deadline.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wizard import flannel
from wizard.errors import WizardError
from wizard.node.meshinfo import Overlay, Probe, ProbeResult
from wizard.steps import Note, Plan, Step
from wizard.steps.etcd import SHARED_FIX, in_force, shared_message, shared_public_ips
from wizard.steps.flanneld import read_subnet_env

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.steps import Check, Context

NAME = "mesh"
HOPS = ("lease", "underlay", "port", "overlay state", "overlay traffic", "bridge", "path MTU")
PROBE_TIMEOUT = 1.0  # nodes of one cluster answer in milliseconds; a second covers a loaded one
SWEEP_TIMEOUT = 0.5
MTU_ROUNDS = 5  # 16^5 covers any MTU to the byte
ICMP_OVERHEAD = 28  # IPv4 header + ICMP header: ping's -s is the packet size less these
VXLAN_OVERHEAD = 50


@dataclass(frozen=True)
class Peer:
    """Another node, as its lease in etcd describes it."""

    key: str
    subnet: ipaddress.IPv4Network
    public_ip: str
    backend: str
    vtep_mac: str = ""
    problem: str = ""  # why the lease cannot be followed (no PublicIP, unreadable value)

    @property
    def label(self) -> str:
        """How its lines start: `192.168.64.12 (172.30.2.0/24)`."""
        return f"{self.public_ip} ({self.subnet})"

    @property
    def vtep(self) -> str:
        """Its flannel.<VNI> address: the lease's first address (.0), which flannel gives the device."""
        return str(self.subnet.network_address)

    @property
    def bridge(self) -> str:
        """Its docker0: the lease's .1 (FLANNEL_SUBNET)."""
        return str(self.subnet.network_address + 1)


@dataclass
class Facts:
    ready: bool  # False: nothing to check yet (see `why`)
    why: Note | None = None
    backend: dict[str, Any] = field(default_factory=dict)
    network: str = ""
    me: Peer | None = None
    peers: list[Peer] = field(default_factory=list)
    mtu: int = 0  # FLANNEL_MTU
    shared: dict[str, list[str]] = field(default_factory=dict)  # PublicIP -> subnets, when several leases give it
    subnet: str = ""  # FLANNEL_SUBNET, as subnet.env names this node's lease
    own_others: list[Peer] = field(default_factory=list)  # other leases that name one of this node's addresses
    v6_only: int = 0  # IPv6-only leases: nothing for the IPv4 probes to reach
    bridge: str = "docker0"
    addresses: frozenset[str] = frozenset()  # this node's IPv4 addresses

    @property
    def direct_routing(self) -> bool:
        return self.kind == "vxlan" and bool(self.backend.get("DirectRouting"))

    @property
    def kind(self) -> str:
        return str(self.backend.get("Type") or "udp").lower()

    @property
    def device(self) -> str | None:
        return f"flannel.{int(self.backend.get('VNI') or 1)}" if self.kind == "vxlan" else None

    @property
    def port(self) -> int | None:
        ports = flannel.udp_ports(self.backend)
        return ports[0].port if ports and ports[0].flannels else None


def _peer(key: str, value: str, lease: flannel.Lease) -> Peer | None:
    if lease.subnet is None:
        return None  # an IPv6-only lease: the IPv4 overlay has nothing to reach there
    try:
        attrs = json.loads(value)
    except ValueError:
        attrs = None
    if not isinstance(attrs, dict):
        return Peer(key, lease.subnet, "?", "", problem="its value is not the JSON flanneld writes")
    data = attrs.get("BackendData") if isinstance(attrs.get("BackendData"), dict) else {}
    public = str(attrs.get("PublicIP") or "")
    problem = "" if public else "it names no PublicIP"
    if public:
        try:
            ipaddress.IPv4Address(public)
        except ValueError:
            problem = f"its PublicIP {public!r} is not an IPv4 address"
    return Peer(key, lease.subnet, public or "?", str(attrs.get("BackendType") or ""), str(data.get("VtepMAC") or ""),
                problem=problem)


def _config(text: str) -> dict[str, Any] | None:
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) and found.get("Network") else None


def _order(peer: Peer) -> tuple[int, int, ipaddress.IPv4Network]:
    return (peer.problem != "", 0 if peer.problem else int(ipaddress.IPv4Address(peer.public_ip)), peer.subnet)


def inspect(ctx: Context) -> Facts:
    a = ctx.answers
    cfg = in_force(ctx)
    backend = cfg.get("Backend") if isinstance(cfg.get("Backend"), dict) else {}
    env = read_subnet_env(ctx)
    if env is None:
        return Facts(False, Note("skipped", f"skipped: no {a.flanneld.subnet_file} yet (flanneld has no lease "
                                 "on this node)", "run the flanneld step first; the mesh is checked once it runs"),
                     backend)
    mine = flannel.env_lease(env)
    try:
        leases = ctx.store().list(f"{a.etcd.prefix}/subnets/")
        if ctx.outputs.get("etcd") is None:
            # no etcd step in this run: what flanneld runs with is the config in etcd, not the answers'
            stored = ctx.store().get(f"{a.etcd.prefix}/config")
            cfg = (_config(stored[0]) if stored else None) or cfg
            backend = cfg.get("Backend") if isinstance(cfg.get("Backend"), dict) else {}
    except WizardError as exc:
        return Facts(False, Note("failed", f"cannot read the leases under {a.etcd.prefix}/subnets/: {exc.what}",
                                 exc.fix), backend)
    local = {cidr.split("/")[0] for _dev, cidr in ctx.node.links.addresses()}
    me, peers, stale, v6_only = None, [], [], 0
    for key, value in leases:
        lease = flannel.parse_lease_key(key)
        if lease is None:
            continue
        peer = _peer(key, value, lease)
        if peer is None:
            v6_only += 1
        elif mine is not None and mine.subnet is not None and lease.subnet == mine.subnet:
            me = peer
        elif peer.public_ip in local:
            stale.append(peer)  # this node's own address: not another node to reach
        else:
            peers.append(peer)
    peers.sort(key=_order)
    return Facts(True, None, backend, str(cfg.get("Network") or ""), me, peers,
                 int(env.get("FLANNEL_MTU") or 0), shared_public_ips(leases), str(env.get("FLANNEL_SUBNET") or ""),
                 stale, v6_only, a.docker.bridge, frozenset(local))


def plan(answers: Answers, facts: Facts) -> Plan:
    result = Plan()
    if not facts.ready:
        assert facts.why is not None
        result.note(facts.why.status, facts.why.message, facts.why.detail)
        return result
    if facts.v6_only:
        result.note("warn", f"{facts.v6_only} lease(s) have no IPv4 subnet: the IPv6 overlay is not probed",
                    "the mesh step sends IPv4 probes only")
    if not facts.peers:
        result.note("ok", "no other node holds an IPv4 lease yet: nothing to reach across nodes",
                    "run the check again once the next node has joined")
        return result
    what = {"vxlan": f"vxlan on {facts.device} (UDP {facts.port})", "host-gw": "host-gw routes"}.get(
        facts.kind, f"the {facts.kind} backend")
    result.note("ok", f"{len(facts.peers)} other node(s) to reach over {what}",
                "\n".join(f"{p.public_ip}  {p.subnet}" for p in facts.peers))
    return result


# ---------------------------------------------------------------- verify


@dataclass
class PeerProbes:
    """The probes of one peer, by what each asks."""

    underlay: int | None = None
    port: int | None = None
    vtep: int | None = None
    bridge: int | None = None
    mtu: int | None = None


def verify(ctx: Context, facts: Facts) -> list[Check]:
    if not facts.ready:
        return []
    checks = local_checks(ctx, facts)
    if facts.peers:
        node_level, judged = peer_checks(ctx, facts, facts.peers)
        checks += node_level
        bad = [c for c in judged if c.status == "failed"]
        checks.append(Note("failed" if bad else "ok",
                           f"{len(judged) - len(bad)} of {len(judged)} other node(s) reached over the overlay",
                           "failing: " + ", ".join(sorted({c.subject for c in bad})) if bad else ""))
        checks += judged
    return checks


def explain_pod(ctx: Context, pod_ip: str) -> list[Check]:
    """What breaks on the way to the node whose lease holds `pod_ip` (the smoke test asks when a pod on
    another node never answers); [] when no other node's lease holds it."""
    facts = inspect(ctx)
    if not facts.ready:
        return [facts.why] if facts.why is not None and facts.why.status == "failed" else []
    try:
        address = ipaddress.IPv4Address(pod_ip)
    except ValueError:
        return []
    peer = next((p for p in facts.peers if address in p.subnet), None)
    if peer is None:
        return []
    node_level, judged = peer_checks(ctx, facts, [peer])
    return local_checks(ctx, facts) + node_level + judged


def local_checks(ctx: Context, facts: Facts) -> list[Check]:
    """What this node alone can break for every path: its own device, FORWARD policy, UDP port rules,
    and PublicIPs that several leases give."""
    checks: list[Check] = []
    if facts.me is None:
        checks.append(Note("failed", f"no lease in etcd for this node's FLANNEL_SUBNET={facts.subnet or '?'}: the "
                           "other nodes have no route to this node's pods", "subnet.env is stale or the lease "
                           "expired; restart flanneld on this node so it takes a lease and rewrites subnet.env",
                           hop="lease"))
    for other in facts.own_others:
        checks.append(Note("warn", f"lease {other.subnet} also names this node's address {other.public_ip}, but "
                           f"this node runs on {facts.subnet or '?'}: an old lease of this node (it expires within "
                           "24 h), or one another node took with this address",
                           f"remove it when sure: `etcdctl del {other.key}`", subject=other.public_ip, hop="lease"))
    for ip, subnets in sorted(facts.shared.items()):
        checks.append(Note("failed", shared_message(ip, subnets) + ": traffic for those nodes' pods all goes to one "
                           "address", SHARED_FIX, subject=ip, hop="shared PublicIP"))
    checks += _rules_checks(ctx, facts)
    return checks


def _rules_checks(ctx: Context, facts: Facts) -> list[Check]:
    from wizard.firewall import Packet, parse_filter
    from wizard.iptables import NotIptablesSave

    result = ctx.node.commands.run("iptables-save", "-t", "filter", timeout=10)
    if result.rc == 127:
        return [Note("warn", "iptables-save not found: the FORWARD policy and firewall rules were not read",
                     "install iptables to have them checked", hop="forward policy")]
    if not result.ok:
        return [Note("warn", f"iptables-save failed: {result.err.strip()[:200] or result.rc}",
                     "run the check as root", hop="forward policy")]
    try:
        table = parse_filter(result.out)
    except NotIptablesSave as exc:
        return [Note("warn", f"iptables-save gave output that is not iptables-save text ({exc}): the FORWARD policy "
                     "and firewall rules were not read", "", hop="forward policy")]
    checks: list[Check] = []
    if "iptables-legacy tables present" in result.out:
        checks.append(Note("warn", "this node has iptables-legacy tables beside the nft ones: only the nft rules "
                           "were read", "run `iptables-legacy-save` to see the others", hop="forward policy"))
    network = _network(facts.network)
    mine = _network(facts.subnet)
    if network is not None and mine is not None:
        here = str(mine.network_address + 2)  # a pod on this node
        there = next((str(p.subnet.network_address + 2) for p in facts.peers), None) or _outside(network, mine)
        overlay_dev = facts.device  # host-gw and the others: the underlay interface, not known by name here
        for what, packet in (
                ("from other nodes to this node's pods", Packet(there, here, overlay_dev, facts.bridge)),
                ("from this node's pods to other nodes", Packet(here, there, facts.bridge, overlay_dev))):
            verdict = table.verdict("FORWARD", packet)
            if verdict.action == "ACCEPT":
                continue
            by = (f"the FORWARD policy {verdict.action}" if verdict.rule == "policy" else f"`{verdict.rule}`")
            checks.append(Note(
                "failed", f"iptables drops pod traffic {what}: {by} takes it before any rule accepts the flannel "
                f"network {facts.network}" + (" (docker 1.13 and later set this policy)" if verdict.rule == "policy"
                                               else ""),
                f"run flanneld with -iptables-forward-rules (the default since v0.11), or add `iptables -I FORWARD -s "
                f"{facts.network} -j ACCEPT` and `iptables -I FORWARD -d {facts.network} -j ACCEPT`",
                hop="forward policy"))
            break  # one line says it: both directions have the same fix
    me = facts.me.public_ip if facts.me is not None and not facts.me.problem else "0.0.0.0"
    peer = next((p.public_ip for p in facts.peers if not p.problem), "0.0.0.0")
    if facts.port:
        for chain, packet in (("INPUT", Packet(peer, me, None, None, "udp", facts.port)),
                              ("OUTPUT", Packet(me, peer, None, None, "udp", facts.port))):
            verdict = table.verdict(chain, packet)
            if verdict.action == "ACCEPT":
                continue
            by = f"the {chain} policy {verdict.action}" if verdict.rule == "policy" else f"`{verdict.rule}`"
            checks.append(Note("failed", f"this node's iptables drops UDP {facts.port} ({facts.kind}) "
                               f"{'from' if chain == 'INPUT' else 'to'} the other nodes: {by}",
                               f"remove that rule, or accept UDP {facts.port} from the other nodes before it",
                               hop="port"))
    return checks


def _network(text: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return None


def _outside(network: ipaddress.IPv4Network, mine: ipaddress.IPv4Network) -> str:
    """An address in the flannel network but not in this node's subnet: another node's pod."""
    for candidate in (network.network_address + 2, network.broadcast_address - 1):
        if candidate not in mine:
            return str(candidate)
    return str(network.network_address + 2)


def peer_checks(ctx: Context, facts: Facts, peers: list[Peer]) -> tuple[list[Check], list[Check]]:
    """(checks about this node found on the way, one check per peer)."""
    try:
        overlay = ctx.node.mesh.overlay(facts.device)
    except Exception as exc:  # noqa: BLE001 - netlink's own errors: said as a finding, never a traceback
        raise WizardError(f"cannot read this node's routes and {facts.device or 'links'}: {exc}",
                          "run the check as root") from None
    checks: list[Check] = []
    device_problem = _device_problem(facts, overlay)
    if device_problem is not None:
        checks.append(device_problem)
    taken = _lease_taken(facts, overlay)
    if taken is not None:
        checks.append(taken)
    probes: list[Probe] = []
    plans: dict[str, PeerProbes] = {}

    def add(p: Probe) -> int:
        probes.append(p)
        return len(probes) - 1

    payload = max(facts.mtu - ICMP_OVERHEAD, 0)
    direct: set[str] = set()
    for peer in peers:
        if peer.problem:
            continue
        if facts.direct_routing and ctx.node.mesh.gateway_to(peer.public_ip) is None:
            direct.add(peer.key)  # flannel routes to an on-link node directly, without vxlan
        pp = plans[peer.key] = PeerProbes()
        pp.underlay = add(Probe("icmp", peer.public_ip))
        encapsulated = facts.kind == "vxlan" and peer.key not in direct
        if facts.port and (encapsulated or facts.kind != "vxlan"):
            pp.port = add(Probe("udp", peer.public_ip, facts.port))
        if encapsulated:
            pp.vtep = add(Probe("icmp", peer.vtep))
        pp.bridge = add(Probe("icmp", peer.bridge))
        if payload:
            pp.mtu = add(Probe("icmp", peer.vtep if encapsulated else peer.bridge, size=payload, df=True))
    own = _own_address_probe(facts)
    own_index = add(own) if own is not None else None
    results = ctx.node.mesh.probe(probes, PROBE_TIMEOUT) if probes else []
    errors = sorted({r.detail for r in results if r.outcome == "error"})
    if errors:
        # probes that could not be sent prove nothing about the peers: one finding, not one per peer
        checks.append(Note("failed", f"the mesh probes could not be sent: {'; '.join(errors)}",
                           "run the check as root (raw ICMP sockets need CAP_NET_RAW)", hop="underlay"))
        return checks, []
    own_lease = taken
    if own_index is not None:
        found = _not_ours(ctx, facts, results[own_index])
        checks.append(found)
        if found.status == "failed":
            own_lease = own_lease or found
    sweeps = _mtu_sweeps(ctx, plans, results)
    judged = []
    for peer in peers:
        found = _judge(ctx, facts, overlay, peer, plans.get(peer.key), results, sweeps.get(peer.key),
                       device_problem is not None, peer.key in direct)
        if own_lease is not None and found.hop in ("port", "overlay traffic"):
            # the peer is fine: its answers go to whichever node holds this node's lease now
            found = Note("failed", f"{peer.label}: nothing comes back through the overlay, "
                         "because this node's lease is also another node's (above): the answers go to that node",
                         own_lease.detail, subject=peer.public_ip, hop="shared PublicIP")
        judged.append(found)
    return checks, judged


def _device_problem(facts: Facts, overlay: Overlay) -> Check | None:
    if facts.kind != "vxlan":
        return None
    dev, name = overlay.device, facts.device
    fix = "restart flanneld on this node: it makes the device again from its config and lease"
    if dev is None:
        return Note("failed", f"{name} does not exist on this node: vxlan traffic has no device to leave by",
                    fix, hop="overlay state")
    vni = int(facts.backend.get("VNI") or 1)
    port = facts.port or 8472
    wrong = []
    if dev.vni is not None and dev.vni != vni:
        wrong.append(f"VNI {dev.vni}, not {vni}")
    if dev.port is not None and dev.port != port:
        wrong.append(f"dstport {dev.port}, not {port}")
    if facts.me is not None and not facts.me.problem and dev.local and dev.local != facts.me.public_ip:
        # flannel gives the device the PublicIP as its local address (vxlan.go: ExtAddr)
        wrong.append(f"local {dev.local}, not this node's PublicIP {facts.me.public_ip}")
    if dev.learning:
        wrong.append("learning on (flannel makes it with nolearning and programs the fdb itself)")
    if not dev.up:
        wrong.append("down")
    if facts.mtu and dev.mtu != facts.mtu:
        wrong.append(f"MTU {dev.mtu}, not FLANNEL_MTU {facts.mtu}")
    if facts.me is not None and f"{facts.me.vtep}/32" not in dev.ipv4:
        wrong.append(f"address {', '.join(dev.ipv4) or 'none'}, not {facts.me.vtep}/32")
    if not wrong:
        return None
    return Note("failed", f"{name} is not as flannel makes it: " + "; ".join(wrong), fix, hop="overlay state")


def _lease_taken(facts: Facts, overlay: Overlay) -> Check | None:
    """This node's lease names another VTEP than this node's device: a second flanneld with this node's
    PublicIP found the lease by that address (flannel reuses the lease a PublicIP holds) and wrote its own
    VtepMAC into it, so the other nodes now send this node's pod traffic to a MAC nobody here answers to."""
    me, dev = facts.me, overlay.device
    if facts.kind != "vxlan" or me is None or dev is None or not me.vtep_mac or not dev.mac:
        return None
    if me.vtep_mac.lower() == dev.mac.lower():
        return None
    return Note("failed", f"this node's lease {me.subnet} names VtepMAC {me.vtep_mac}, but {dev.name} here is "
                f"{dev.mac}: another node registered with this node's PublicIP {me.public_ip} and took the lease "
                "over (flannel reuses the lease an address holds), so the others send this node's pod traffic "
                "to that node's VTEP", SHARED_FIX, subject=me.public_ip, hop="shared PublicIP")


def _own_address_probe(facts: Facts) -> Probe | None:
    """A probe of this node's PublicIP when no interface here has it (flanneld's -public-ip): an answer
    from the same L2 segment means another host there has the address."""
    me = facts.me
    if me is None or me.problem:
        return None
    return None if me.public_ip in facts.addresses else Probe("icmp", me.public_ip)


def _not_ours(ctx: Context, facts: Facts, result: ProbeResult) -> Check:
    assert facts.me is not None
    ip = facts.me.public_ip
    # an answer from beyond a router may be a NAT's outside address, which -public-ip is meant for;
    # an answer from this node's own segment is another host holding the address
    if result.outcome == "answered" and ctx.node.mesh.gateway_to(ip) is None:
        return Note("failed", f"this node's lease gives PublicIP {ip}, which no interface here has, and another "
                    f"host on this node's segment answers at {ip}: this node registered with that host's address "
                    "(flanneld -public-ip), so the two share one lease and one subnet", SHARED_FIX, subject=ip,
                    hop="shared PublicIP")
    return Note("warn", f"this node's lease gives PublicIP {ip}, which no interface here has (flanneld -public-ip)",
                "right when the other nodes reach this one at that address (a NAT); otherwise set "
                "flanneld.iface to the interface they reach it on", subject=ip, hop="lease")


def _mtu_sweeps(ctx: Context, plans: dict[str, PeerProbes], results: list[ProbeResult]) -> dict[str, int]:
    """For each peer whose full-size DF probe was lost while small packets got through on the same path:
    the largest payload that does get through, found by rounds of parallel probes (each round cuts the
    gap sixteen-fold: a few rounds even on a jumbo-frame underlay)."""
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    target: dict[str, str] = {}
    for key, pp in plans.items():
        if pp.mtu is None:
            continue
        full = results[pp.mtu]
        small = next((i for i in (pp.vtep, pp.bridge) if i is not None and results[i].probe.address == full.probe.address),
                     None)
        if small is None or results[small].outcome != "answered" or full.outcome == "answered":
            continue
        low[key], high[key], target[key] = 0, full.probe.size, full.probe.address
    for _round in range(MTU_ROUNDS):
        open_ = [k for k in low if high[k] - low[k] > 1]
        if not open_:
            break
        sent: list[tuple[str, Probe]] = []
        for k in open_:
            step = -(-(high[k] - low[k]) // 16)  # ceiling: the last round probes every size left
            sent += [(k, Probe("icmp", target[k], size=size, df=True)) for size in range(low[k] + step, high[k], step)]
        got = ctx.node.mesh.probe([p for _k, p in sent], SWEEP_TIMEOUT)
        for (k, p), r in zip(sent, got, strict=True):
            if r.outcome == "answered":
                low[k] = max(low[k], p.size)
        for (k, p), r in zip(sent, got, strict=True):
            if r.outcome != "answered" and p.size > low[k]:
                high[k] = min(high[k], p.size)
    return low


def _ok(results: list[ProbeResult], index: int | None) -> bool:
    return index is not None and results[index].outcome == "answered"


def _judge(ctx: Context, facts: Facts, overlay: Overlay, peer: Peer, pp: PeerProbes | None,
           results: list[ProbeResult], largest: int | None, device_broken: bool, direct: bool) -> Check:
    """One line for one peer: ok with what was proved, or the first hop that fails."""
    who = peer.label

    def bad(hop: str, message: str, fix: str) -> Check:
        return Note("failed", f"{who}: {message}", fix, subject=peer.public_ip, hop=hop)

    if peer.problem or pp is None:
        return bad("lease", f"its lease {peer.key} cannot be followed: {peer.problem}",
                   f"remove the key when the node is gone (`etcdctl del {peer.key}`), or restart flanneld there")
    if peer.backend and peer.backend.lower() != facts.kind:
        return bad("lease", f"its lease says BackendType {peer.backend}, but this node runs {facts.kind}",
                   "every node must run the backend of PREFIX/config: restart flanneld on that node so it "
                   "reads the config again")
    if peer.public_ip in facts.shared:
        return bad("lease", f"its PublicIP is given by {len(facts.shared[peer.public_ip])} leases", SHARED_FIX)
    encapsulated = facts.kind == "vxlan" and not direct
    underlay = results[pp.underlay] if pp.underlay is not None else None
    via_overlay = _ok(results, pp.vtep) or _ok(results, pp.bridge)
    if facts.kind == "host-gw":
        gateway = ctx.node.mesh.gateway_to(peer.public_ip)
        if gateway:
            return bad("underlay", f"host-gw needs every node on one L2 segment, but this node reaches "
                       f"{peer.public_ip} via gateway {gateway}",
                       "use vxlan (it crosses routers), or put the nodes on one segment; flannel's host-gw "
                       "cannot add a route via a gateway that is not on-link")
    if underlay is not None and underlay.outcome != "answered" and not via_overlay:
        how = {"silent": "no answer", "unreachable": underlay.detail or "unreachable"}.get(underlay.outcome,
                                                                                            underlay.detail or underlay.outcome)
        return bad("underlay", f"its PublicIP does not answer ICMP ({how}), and nothing answers through the "
                   "overlay: the node is down, or unreachable on the underlay",
                   f"check the node and the network between (`ip route get {peer.public_ip}`); a node that "
                   f"is gone for good: `etcdctl del {peer.key}` (its lease would expire within 24 h)")
    port = results[pp.port] if pp.port is not None else None
    if port is not None and port.outcome == "refused":
        return bad("port", f"nothing listens on UDP {facts.port} there (ICMP port unreachable came back): "
                   f"flanneld is not running there, or it runs {facts.kind} on another port",
                   "start flanneld on that node, and check it reads this PREFIX/config")
    if port is not None and port.outcome == "unreachable" and not via_overlay:
        return bad("port", f"UDP {facts.port} to it is rejected ({port.detail}): a firewall on the way or on "
                   "that node turns the backend's packets away",
                   f"accept UDP {facts.port} between the nodes; `flannel-wizard check` on {peer.public_ip} names "
                   "a rule there")
    state = _state_problem(facts, overlay, peer, direct)
    if device_broken and encapsulated:
        return bad("overlay state", f"{facts.device} on this node is broken (see above)",
                   "restart flanneld on this node")
    if state:
        return bad("overlay state", state[0], state[1])
    if encapsulated and not _ok(results, pp.vtep):
        others = sorted({f.lladdr for f in overlay.fdb
                         if f.dst == peer.public_ip and f.lladdr.lower() != peer.vtep_mac.lower()})
        if others:
            return bad("shared PublicIP", f"nothing comes back from its {facts.device} {peer.vtep}, and this node's "
                       f"fdb sends another VTEP too ({', '.join(others)}) to {peer.public_ip}: the lease's VtepMAC "
                       f"changed to {peer.vtep_mac}, as it does when a second node registers with PublicIP "
                       f"{peer.public_ip} and takes this lease over", SHARED_FIX)
        return bad("port", f"the underlay answers, and this node's route, neighbour and fdb entry for it are "
                   f"right, but nothing comes back from its {facts.device} {peer.vtep}: vxlan packets (UDP "
                   f"{facts.port}) are dropped between the nodes",
                   f"open UDP {facts.port} between the nodes in both directions (iptables/firewalld on each, "
                   f"security groups between); `flannel-wizard check` on {peer.public_ip} names a rule there, "
                   "or a stale entry for this node")
    if not _ok(results, pp.bridge):
        if not encapsulated:
            via = "direct route" if direct else f"{facts.kind} overlay"
            return bad("overlay traffic", f"its bridge {peer.bridge} does not answer through the {via}",
                       f"check the routes on both nodes (`ip route get {peer.bridge}`), and run `flannel-wizard "
                       f"check` on {peer.public_ip}")
        return bad("bridge", f"its {facts.device} answers, but its bridge {peer.bridge} does not: docker's bridge "
                   "there is down or not on its lease",
                   f"run `flannel-wizard check` (or apply --only docker) on {peer.public_ip}")
    if pp.mtu is not None and not _ok(results, pp.mtu):
        full = results[pp.mtu]
        return bad("path MTU", _mtu_message(facts, largest, full), _mtu_fix(facts, largest, direct))
    rtt = underlay.rtt_ms if underlay is not None and underlay.outcome == "answered" else None
    proved = [f"underlay{f' {rtt:g} ms' if rtt is not None else ' (ICMP filtered; the overlay answers)'}"]
    if encapsulated:
        proved += [f"route, neighbour and fdb for {peer.vtep}", f"{facts.device} {peer.vtep}"]
    elif facts.kind == "host-gw" or direct:
        proved.append(f"on-link, {'direct ' if direct else ''}route via {peer.public_ip}")
    proved.append(f"bridge {peer.bridge}")
    if pp.mtu is not None:
        proved.append(f"{facts.mtu}-byte packets")
    return Note("ok", f"{who}: " + ", ".join(proved), subject=peer.public_ip)


def _state_problem(facts: Facts, overlay: Overlay, peer: Peer, direct: bool) -> tuple[str, str] | None:
    """How this node's kernel state for `peer` differs from what flannel's backend programs."""
    route = next((r for r in overlay.routes if r.dst == peer.subnet), None)
    if facts.kind == "host-gw" or direct:
        # host-gw, and vxlan's DirectRouting to a node on this segment: `<subnet> via <PublicIP>`
        if route is None or route.gateway != peer.public_ip:
            found = f"`{route}`" if route else "no route"
            return (f"{found} to its subnet, not `{peer.subnet} via {peer.public_ip}`",
                    f"restart flanneld on this node, or `ip route replace {peer.subnet} via {peer.public_ip}`")
        return None
    if facts.kind != "vxlan":
        return None
    dev = facts.device
    fix = (f"restart flanneld on this node: it programs the route, neighbour and fdb entry again from the "
           f"lease; or by hand: `ip route replace {peer.subnet} via {peer.vtep} dev {dev} onlink`, `ip neigh "
           f"replace {peer.vtep} lladdr {peer.vtep_mac} dev {dev} nud permanent`, `bridge fdb replace "
           f"{peer.vtep_mac} dev {dev} dst {peer.public_ip}`")
    if route is None:
        return f"no route to its subnet {peer.subnet} on this node", fix
    if route.dev != dev or route.gateway != peer.vtep or not route.onlink:
        return f"the route to its subnet is `{route}`, not `{peer.subnet} via {peer.vtep} dev {dev} onlink`", fix
    if not peer.vtep_mac:
        return f"its lease has no VtepMAC ({peer.key})", "restart flanneld on that node so it registers again"
    neigh = next((n for n in overlay.neighbours if n.dst == peer.vtep), None)
    if neigh is None or not neigh.lladdr:
        return f"no neighbour entry for {peer.vtep} on {dev}", fix
    if neigh.lladdr.lower() != peer.vtep_mac.lower():
        return (f"a stale neighbour: {peer.vtep} on {dev} is {neigh.lladdr}, but its lease says VtepMAC "
                f"{peer.vtep_mac}: packets for its pods go to a VTEP that is not there"), fix
    fdb = [f for f in overlay.fdb if f.lladdr.lower() == peer.vtep_mac.lower()]
    if not fdb:
        return f"no fdb entry for {peer.vtep_mac} on {dev}: the kernel does not know where to send it", fix
    if peer.public_ip not in {f.dst for f in fdb}:
        return (f"the fdb entry for {peer.vtep_mac} on {dev} sends to {', '.join(str(f.dst) for f in fdb)}, "
                f"not its PublicIP {peer.public_ip}"), fix
    return None


def _mtu_message(facts: Facts, largest: int | None, full: ProbeResult) -> str:
    said = f" ({full.detail})" if full.outcome == "too-big" and full.detail else ""
    if not largest:
        return (f"small packets get through but {facts.mtu}-byte ones (FLANNEL_MTU) do not{said}, and no size "
                "tried in between got through either")
    lost = "are refused on the way" + said if full.outcome == "too-big" else "are lost on the way"
    return (f"{facts.mtu}-byte packets (FLANNEL_MTU) {lost}; the largest that gets through is "
            f"{largest + ICMP_OVERHEAD} bytes ({largest} of payload)"
            + (": a path-MTU black hole on the underlay" if full.outcome != "too-big" else ""))


def _mtu_fix(facts: Facts, largest: int | None, direct: bool) -> str:
    if not largest:
        return "find the underlay link with the small MTU (`ip link` on the nodes and the switches between)"
    inner = largest + ICMP_OVERHEAD
    if facts.kind == "vxlan" and not direct:
        return (f"set network.backend.mtu: {inner + VXLAN_OVERHEAD} (vxlan's MTU is the underlay's; flannel.1 "
                f"and FLANNEL_MTU get {inner}) on every node and restart flanneld and docker, or raise the "
                "underlay link's MTU to match the others")
    return (f"the path carries {inner}-byte packets: raise the underlay link's MTU to match the others, "
            "or lower the interface MTU flanneld starts from")


STEP = Step(NAME, "overlay to every other node", inspect, plan, verify, needs=("etcd", "flanneld"),
            makes_changes=False)
