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

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.steps import Check, Context

NAME = "mesh"
HOPS = ("lease", "underlay", "port", "overlay state", "overlay traffic", "bridge", "path MTU")
# node-level checks name what they are about in the same field
LOCAL = ("shared PublicIP", "forward policy", "port", "overlay state", "lease")
PROBE_TIMEOUT = 1.0  # nodes of one cluster answer in milliseconds; a second covers a loaded one
SWEEP_TIMEOUT = 0.5
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
    return Peer(key, lease.subnet, public or "?", str(attrs.get("BackendType") or ""), str(data.get("VtepMAC") or ""),
                problem="" if public else "it names no PublicIP")


def inspect(ctx: Context) -> Facts:
    from wizard.steps.etcd import in_force, shared_public_ips
    from wizard.steps.flanneld import read_subnet_env

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
    except WizardError as exc:
        return Facts(False, Note("failed", f"cannot read the leases under {a.etcd.prefix}/subnets/: {exc.what}",
                                 exc.fix), backend)
    me, peers = None, []
    for key, value in leases:
        lease = flannel.parse_lease_key(key)
        if lease is None:
            continue
        peer = _peer(key, value, lease)
        if peer is None:
            continue
        if mine is not None and mine.subnet is not None and lease.subnet == mine.subnet:
            me = peer
        else:
            peers.append(peer)
    peers.sort(key=lambda p: (ipaddress.ip_address(p.public_ip) if p.public_ip != "?" else ipaddress.IPv4Address(0),
                              p.subnet))
    return Facts(True, None, backend, str(cfg.get("Network") or ""), me, peers,
                 int(env.get("FLANNEL_MTU") or 0), shared_public_ips(leases))


def plan(answers: Answers, facts: Facts) -> Plan:
    result = Plan()
    if not facts.ready:
        assert facts.why is not None
        result.note(facts.why.status, facts.why.message, facts.why.detail)
        return result
    if not facts.peers:
        result.note("ok", "no other node holds a lease yet: nothing to reach across nodes",
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
        checks += peer_checks(ctx, facts, facts.peers)
        others = {p.public_ip for p in facts.peers}
        bad = sorted({c.subject for c in checks if c.subject in others and c.status == "failed"})
        checks.insert(0, Note("failed" if bad else "ok",
                              f"{len(facts.peers) - len(bad)} of {len(facts.peers)} other node(s) reached over the overlay",
                              "failing: " + ", ".join(bad) if bad else ""))
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
    return local_checks(ctx, facts) + peer_checks(ctx, facts, [peer])


def local_checks(ctx: Context, facts: Facts) -> list[Check]:
    """What this node alone can break for every path: its own device, FORWARD policy, UDP port rules,
    and PublicIPs that several leases give."""
    checks: list[Check] = []
    for ip, subnets in sorted(facts.shared.items()):
        from wizard.steps.etcd import SHARED_FIX, shared_message

        checks.append(Note("failed", shared_message(ip, subnets) + ": traffic for those nodes' pods all goes to one "
                           "address", SHARED_FIX, subject=ip, hop="shared PublicIP"))
    checks += _rules_checks(ctx, facts)
    return checks


def _rules_checks(ctx: Context, facts: Facts) -> list[Check]:
    from wizard.firewall import parse_filter

    result = ctx.node.commands.run("iptables-save", "-t", "filter", timeout=10)
    if result.rc == 127:
        return [Note("warn", "iptables-save not found: the FORWARD policy and firewall rules were not read",
                     "install iptables to have them checked", hop="forward policy")]
    if not result.ok:
        return [Note("warn", f"iptables-save failed: {result.err.strip()[:200] or result.rc}",
                     "run the check as root", hop="forward policy")]
    table = parse_filter(result.out)
    checks: list[Check] = []
    if facts.network and table.policy("FORWARD") == "DROP" and not table.accepts_network("FORWARD", facts.network):
        checks.append(Note(
            "failed", f"iptables FORWARD policy is DROP and no rule accepts the flannel network {facts.network}: pod "
            "traffic between docker0 and the overlay is dropped (docker 1.13 and later set this policy)",
            f"run flanneld with -iptables-forward-rules (the default since v0.11), or add `iptables -A FORWARD -s "
            f"{facts.network} -j ACCEPT` and `iptables -A FORWARD -d {facts.network} -j ACCEPT`",
            hop="forward policy"))
    if facts.port:
        for chain in ("INPUT", "OUTPUT"):
            rule = table.drops_udp(chain, facts.port)
            if rule:
                checks.append(Note("failed", f"this node's iptables drops UDP {facts.port} ({facts.kind}): `{rule}`",
                                   f"remove that rule, or accept UDP {facts.port} from the other nodes before it",
                                   hop="port"))
    return checks


def peer_checks(ctx: Context, facts: Facts, peers: list[Peer]) -> list[Check]:
    overlay = ctx.node.mesh.overlay(facts.device)
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
    for peer in peers:
        if peer.problem:
            continue
        pp = plans[peer.key] = PeerProbes()
        pp.underlay = add(Probe("icmp", peer.public_ip))
        if facts.port:
            pp.port = add(Probe("udp", peer.public_ip, facts.port))
        if facts.kind == "vxlan":
            pp.vtep = add(Probe("icmp", peer.vtep))
        pp.bridge = add(Probe("icmp", peer.bridge))
        if payload:
            pp.mtu = add(Probe("icmp", peer.vtep if facts.kind == "vxlan" else peer.bridge, size=payload, df=True))
    own = _own_address_probe(ctx, facts)
    own_index = add(own) if own is not None else None
    results = ctx.node.mesh.probe(probes, PROBE_TIMEOUT) if probes else []
    if own_index is not None:
        checks.append(_not_ours(facts, results[own_index]))
    sweeps = _mtu_sweeps(ctx, facts, peers, plans, results)
    own_lease = taken or (checks[-1] if own_index is not None and checks[-1].status == "failed" else None)
    for peer in peers:
        found = _judge(ctx, facts, overlay, peer, plans.get(peer.key), results, sweeps.get(peer.key),
                       device_problem is not None)
        if own_lease is not None and found.hop in ("port", "overlay traffic"):
            # the peer is fine: its answers go to whichever node holds this node's lease now
            found = Note("failed", f"{found.message.split(':', 1)[0]}: nothing comes back through the overlay, "
                         "because this node's lease is also another node's (above): the answers go to that node",
                         own_lease.detail, subject=peer.public_ip, hop="shared PublicIP")
        checks.append(found)
    return checks


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
    if facts.me is not None and dev.local and dev.local != facts.me.public_ip:
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
    from wizard.steps.etcd import SHARED_FIX

    return Note("failed", f"this node's lease {me.subnet} names VtepMAC {me.vtep_mac}, but {dev.name} here is "
                f"{dev.mac}: another node registered with this node's PublicIP {me.public_ip} and took the lease "
                "over (flannel reuses the lease an address holds), so the others send this node's pod traffic "
                "to that node's VTEP", SHARED_FIX, subject=me.public_ip, hop="shared PublicIP")


def _own_address_probe(ctx: Context, facts: Facts) -> Probe | None:
    """A probe of this node's PublicIP when no interface here has it (flanneld's -public-ip): an answer
    means another host has the address."""
    me = facts.me
    if me is None or me.public_ip == "?":
        return None
    local = {cidr.split("/")[0] for _dev, cidr in ctx.node.links.addresses()}
    return None if me.public_ip in local else Probe("icmp", me.public_ip)


def _not_ours(facts: Facts, result: ProbeResult) -> Check:
    assert facts.me is not None
    ip = facts.me.public_ip
    if result.outcome == "answered":
        from wizard.steps.etcd import SHARED_FIX

        return Note("failed", f"this node's lease gives PublicIP {ip}, which no interface here has, and another "
                    f"host answers at {ip}: this node registered with that host's address (flanneld -public-ip), "
                    "so the two share one lease and one subnet", SHARED_FIX, subject=ip, hop="shared PublicIP")
    return Note("warn", f"this node's lease gives PublicIP {ip}, which no interface here has (flanneld -public-ip)",
                "right only when the other nodes reach this one at that address (a NAT); otherwise set "
                "flanneld.iface to the interface they reach it on", subject=ip, hop="lease")


def _mtu_sweeps(ctx: Context, facts: Facts, peers: list[Peer], plans: dict[str, PeerProbes],
                results: list[ProbeResult]) -> dict[str, int]:
    """For each peer whose full-size DF probe was lost while small packets got through: the largest
    payload that does get through, found in a few rounds of parallel probes."""
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    target: dict[str, str] = {}
    for peer in peers:
        pp = plans.get(peer.key)
        if pp is None or pp.mtu is None:
            continue
        small = pp.vtep if facts.kind == "vxlan" else pp.bridge
        if small is None or results[small].outcome != "answered" or results[pp.mtu].outcome == "answered":
            continue
        low[peer.key], high[peer.key] = 0, results[pp.mtu].probe.size
        target[peer.key] = results[pp.mtu].probe.address
    for _round in range(3):
        open_ = [k for k in low if high[k] - low[k] > 1]
        if not open_:
            break
        probes: list[tuple[str, Probe]] = []
        for k in open_:
            step = max((high[k] - low[k]) // 16, 1)
            for size in range(low[k] + step, high[k], step):
                probes.append((k, Probe("icmp", target[k], size=size, df=True)))
        got = ctx.node.mesh.probe([p for _k, p in probes], SWEEP_TIMEOUT)
        for (k, p), r in zip(probes, got, strict=True):
            if r.outcome == "answered":
                low[k] = max(low[k], p.size)
        for (k, p), r in zip(probes, got, strict=True):
            if r.outcome != "answered" and p.size > low[k]:
                high[k] = min(high[k], p.size)
    return low


def _ok(results: list[ProbeResult], index: int | None) -> bool:
    return index is not None and results[index].outcome == "answered"


def _judge(ctx: Context, facts: Facts, overlay: Overlay, peer: Peer, pp: PeerProbes | None,
           results: list[ProbeResult], largest: int | None, device_broken: bool) -> Check:
    """One line for one peer: ok with what was proved, or the first hop that fails."""
    who = f"{peer.public_ip} ({peer.subnet})"

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
        return bad("lease", f"its PublicIP is given by {len(facts.shared[peer.public_ip])} leases", _shared_fix())
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
    state = _state_problem(facts, overlay, peer)
    if state and not device_broken:
        return bad("overlay state", state[0], state[1])
    if device_broken:
        return bad("overlay state", f"{facts.device} on this node is broken (see above)",
                   "restart flanneld on this node")
    if facts.kind == "vxlan" and not _ok(results, pp.vtep):
        others = sorted({f.lladdr for f in overlay.fdb
                         if f.dst == peer.public_ip and f.lladdr.lower() != peer.vtep_mac.lower()})
        if others:
            return bad("shared PublicIP", f"nothing comes back from its {facts.device} {peer.vtep}, and this node's "
                       f"fdb sends another VTEP too ({', '.join(others)}) to {peer.public_ip}: the lease's VtepMAC "
                       f"changed to {peer.vtep_mac}, as it does when a second node registers with PublicIP "
                       f"{peer.public_ip} and takes this lease over", _shared_fix())
        return bad("port", f"the underlay answers, and this node's route, neighbour and fdb entry for it are "
                   f"right, but nothing comes back from its {facts.device} {peer.vtep}: vxlan packets (UDP "
                   f"{facts.port}) are dropped between the nodes",
                   f"open UDP {facts.port} between the nodes in both directions (iptables/firewalld on each, "
                   f"security groups between); `flannel-wizard check` on {peer.public_ip} names a rule there, "
                   "or a stale entry for this node")
    if not _ok(results, pp.bridge):
        if facts.kind != "vxlan" and not via_overlay:
            return bad("overlay traffic", f"its bridge {peer.bridge} does not answer through the {facts.kind} "
                       "overlay", f"check the {facts.kind} backend's routes on both nodes (`ip route get "
                       f"{peer.bridge}`), and run `flannel-wizard check` there")
        return bad("bridge", f"its {facts.device or 'overlay'} answers, but its bridge {peer.bridge} does not: "
                   "docker's bridge there is down or not on its lease",
                   f"run `flannel-wizard check` (or apply --only docker) on {peer.public_ip}")
    if pp.mtu is not None and not _ok(results, pp.mtu):
        return bad("path MTU", _mtu_message(facts, largest), _mtu_fix(facts, largest))
    rtt = results[pp.underlay].rtt_ms if underlay is not None and underlay.outcome == "answered" else None
    proved = [f"underlay{f' {rtt:g} ms' if rtt is not None else ' (ICMP filtered; the overlay answers)'}"]
    if facts.kind == "vxlan":
        proved += [f"route, neighbour and fdb for {peer.vtep}", f"{facts.device} {peer.vtep}"]
    elif facts.kind == "host-gw":
        proved.append(f"on-link, route via {peer.public_ip}")
    proved.append(f"bridge {peer.bridge}")
    if pp.mtu is not None:
        proved.append(f"{facts.mtu}-byte packets")
    return Note("ok", f"{who}: " + ", ".join(proved), subject=peer.public_ip)


def _shared_fix() -> str:
    from wizard.steps.etcd import SHARED_FIX

    return SHARED_FIX


def _state_problem(facts: Facts, overlay: Overlay, peer: Peer) -> tuple[str, str] | None:
    """How this node's kernel state for `peer` differs from what flannel's backend programs."""
    if facts.kind == "vxlan":
        dev = facts.device
        route = next((r for r in overlay.routes if r.dst == peer.subnet), None)
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
    if facts.kind == "host-gw":
        route = next((r for r in overlay.routes if r.dst == peer.subnet), None)
        if route is None or route.gateway != peer.public_ip:
            found = f"`{route}`" if route else "no route"
            return (f"{found} to its subnet, not `{peer.subnet} via {peer.public_ip}`",
                    f"restart flanneld on this node, or `ip route replace {peer.subnet} via {peer.public_ip}`")
    return None


def _mtu_message(facts: Facts, largest: int | None) -> str:
    if not largest:
        return (f"small packets get through but {facts.mtu}-byte ones (FLANNEL_MTU) are lost, and no size "
                "tried in between got through either")
    return (f"{facts.mtu}-byte packets (FLANNEL_MTU) are lost on the way; the largest that gets through is "
            f"{largest + ICMP_OVERHEAD} bytes ({largest} of payload): a path-MTU black hole on the underlay")


def _mtu_fix(facts: Facts, largest: int | None) -> str:
    if not largest:
        return "find the underlay link with the small MTU (`ip link` on the nodes and the switches between)"
    inner = largest + ICMP_OVERHEAD
    if facts.kind == "vxlan":
        return (f"set network.backend.mtu: {inner + VXLAN_OVERHEAD} (vxlan's MTU is the underlay's; flannel.1 "
                f"and FLANNEL_MTU get {inner}) on every node and restart flanneld and docker, or raise the "
                "underlay link's MTU to match the others")
    return (f"the overlay can carry {inner}-byte packets: raise the underlay link's MTU to match the others, "
            "or lower the interface MTU flanneld starts from")


STEP = Step(NAME, "overlay to every other node", inspect, plan, verify, needs=("etcd", "flanneld"),
            makes_changes=False)
