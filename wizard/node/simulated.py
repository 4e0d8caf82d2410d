"""The demo's node: the real engine runs against it and nothing on the machine changes.

Files are real files under a temporary root (so they can be inspected afterwards); etcd is an
in-memory store; links, the kernel and services are simulated from a scenario, with short delays
so the live status has something to show. systemctl restarts act as the services would, reading
what their unit files under the root name (see simsystemd): flanneld takes a lease and writes
subnet.env, docker moves its bridge to `bip` and picks up its cgroup driver.

Nothing here reaches the host: a journal the demo writes records the demo's identity, and `undo`
on the real machine refuses it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wizard import dockerunit, flannel
from wizard.node import simsystemd
from wizard.node.commands import Result
from wizard.node.etcd import Store, api_of, parse_flanneld_version
from wizard.node.files import Files
from wizard.node.linkinfo import LinkInfo, Route, default_mtu
from wizard.node.memstore import MemoryStore
from wizard.node.meshinfo import (
    FdbEntry,
    Neighbour,
    Overlay,
    OverlayRoute,
    Probe,
    ProbeResult,
    VxlanDevice,
)
from wizard.node.simcluster import SimCluster

if TYPE_CHECKING:
    from wizard.answers import Etcd


class Clock:
    """Scenario delays divided by --speed; 0 speed-ups are refused by the CLI."""

    def __init__(self, delays: dict[str, float], speed: float) -> None:
        self.delays = delays
        self.speed = speed

    def wait(self, what: str) -> None:
        seconds = float(self.delays.get(what, 0.0)) / self.speed
        if seconds > 0:
            time.sleep(seconds)

    def wait_at_most(self, what: str, limit: float) -> None:
        """The delay `what`, but never past `limit` real seconds (a caller's own deadline)."""
        seconds = min(float(self.delays.get(what, 0.0)) / self.speed, limit)
        if seconds > 0:
            time.sleep(seconds)


class SimKernel:
    def __init__(self, scenario: dict[str, Any]) -> None:
        self.s = scenario.get("kernel", {})
        self.user = scenario.get("user", "root")

    def is_root(self) -> bool:
        return self.user == "root"

    def sysctl(self, key: str) -> str | None:
        value = self.s.get("sysctls", {}).get(key)
        return None if value is None else str(value)

    def module_loaded(self, name: str) -> bool:
        return name in self.s.get("modules", [])

    def swaps(self) -> list[str]:
        return list(self.s.get("swap", []))

    def udp_port_free(self, port: int) -> bool:
        return port not in self.s.get("busy_udp_ports", [])

    def init_name(self) -> str | None:
        return self.s.get("init", "systemd")

    def cgroup_v2(self) -> bool:
        return bool(self.s.get("cgroup_v2", False))


class SimLinks:
    def __init__(self, scenario: dict[str, Any], clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._links: dict[str, LinkInfo] = {}
        for n, item in enumerate(scenario.get("links", []), start=1):
            self._links[item["name"]] = LinkInfo(item["name"], n, int(item["mtu"]), item.get("kind", ""),
                                                 tuple(item.get("ipv4", [])))
        self._routes = [
            Route(ipaddress.IPv4Network(r["dst"]), r.get("gateway"), r.get("dev")) for r in scenario.get("routes", [])
        ]

    def close(self) -> None:
        return None

    def link(self, name: str) -> LinkInfo | None:
        with self._lock:
            return self._links.get(name)

    def addresses(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(link.name, cidr) for link in self._links.values() for cidr in link.ipv4]

    def routes(self) -> list[Route]:
        with self._lock:
            return list(self._routes)

    def default_mtu(self) -> int | None:
        return default_mtu(self.routes(), self.link)

    def set_ipv4(self, name: str, wanted: list[str], mtu: int | None = None) -> None:
        from wizard.errors import WizardError

        self.clock.wait("link")
        with self._lock:
            current = self._links.get(name)
            if current is None:
                raise WizardError(f"link {name} does not exist", "start the container runtime so it creates its bridge")
            self._links[name] = LinkInfo(name, current.index, mtu or current.mtu, current.kind, tuple(wanted))
            # the kernel's connected routes follow the addresses
            self._routes = [r for r in self._routes if r.dev != name or r.gateway]
            self._routes += [Route(ipaddress.IPv4Interface(c).network, None, name) for c in wanted]


# ---------------------------------------------------------------- the other nodes, and the overlay to them

THIS_VTEP_MAC = "c6:d2:32:6f:8f:44"  # this node's flannel.<VNI> MAC, as its lease gives it to the others
# outer IPv4 + UDP + VXLAN + inner Ethernet: what vxlan adds to every packet
VXLAN_OVERHEAD = flannel.MTU_OVERHEAD["vxlan"]
HEADERS = 28  # IPv4 + ICMP (or UDP) headers on top of a probe's payload (ping's -s)
RTT_MS = {"underlay": 0.4, "overlay": 0.6}  # fixed: the demo gives the same answers every run
# the other tunnelling backends' devices: udp and wireguard route all of Network into theirs, ipip each lease
# via the peer's PublicIP onlink (udp/network.go, wireguard/wireguard_network.go, ipip/ipip.go)
TUNNELS = {"udp": "flannel0", "wireguard": "flannel-wg", "ipip": "flannel.ipip"}
PEER_KEYS = frozenset({"public_ip", "public_ipv6", "subnet", "vtep_mac", "down", "udp_blocked", "udp_rejected", "mtu",
                       "bridge"})


@dataclass(frozen=True)
class SimPeer:
    """Another node of the cluster as a scenario's `mesh: {peers: [...]}` describes it: where it is, the
    lease its flanneld holds, and what is wrong between this node and it."""

    public_ip: str
    subnet: ipaddress.IPv4Network | None  # the lease it holds (None: the first free one when it joins)
    vtep_mac: str
    down: bool = False  # powered off or unplugged: its lease stays in etcd until the 24 h TTL ends
    udp_blocked: frozenset[int] = frozenset()  # a firewall drops these UDP ports to it: nothing comes back
    udp_rejected: frozenset[int] = frozenset()  # ... or rejects them (iptables REJECT: ICMP port unreachable)
    mtu: int | None = None  # the largest packet the path to it carries; larger ones vanish without an ICMP
    bridge: bool = True  # its docker0 holds its lease's .1 (False: docker there never moved onto flannel)
    public_ipv6: str | None = None  # without one, its flanneld cannot start on a dual-stack network

    @classmethod
    def parse(cls, scenario: str, item: dict[str, Any], n: int) -> SimPeer:
        unknown = sorted(set(item) - PEER_KEYS)
        if unknown or "public_ip" not in item:
            # a typo in a scenario would otherwise make a healthy peer out of a broken one, without a word
            raise ValueError(f"scenario {scenario}: mesh peer {n}: " +
                             (f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(PEER_KEYS))})"
                              if unknown else "public_ip is required"))
        subnet = item.get("subnet")
        return cls(str(item["public_ip"]), ipaddress.IPv4Network(subnet) if subnet else None,
                   str(item.get("vtep_mac") or f"6e:4c:1a:0b:9d:{n:02x}"),
                   bool(item.get("down", False)), frozenset(int(p) for p in item.get("udp_blocked") or ()),
                   frozenset(int(p) for p in item.get("udp_rejected") or ()),
                   int(item["mtu"]) if item.get("mtu") else None, bool(item.get("bridge", True)),
                   str(item["public_ipv6"]) if item.get("public_ipv6") else None)


@dataclass(frozen=True)
class FlannelRun:
    """What the simulated flanneld last started with: it decides what its backend programmed. (A flanneld
    that later fails to start leaves that state in the kernel, as the real one does.)"""

    store: MemoryStore
    prefix: str
    backend: dict[str, Any]
    lease: ipaddress.IPv4Network
    public_ip: str
    mtu: int  # FLANNEL_MTU, the vxlan device's MTU
    network: ipaddress.IPv4Network | None = None  # the config's Network

    @property
    def kind(self) -> str:
        return str(self.backend.get("Type") or "udp").lower()

    @property
    def vni(self) -> int:
        return int(self.backend.get("VNI") or 1)

    @property
    def port(self) -> int:
        return int(self.backend.get("Port") or 8472)  # 0: the kernel's default VXLAN port

    @property
    def device(self) -> str:
        return f"flannel.{self.vni}"

    @property
    def tunnel(self) -> str | None:
        """The device of a backend that tunnels without vxlan's neighbour and fdb tables."""
        return TUNNELS.get(self.kind)

    @property
    def ports(self) -> set[int]:
        """The UDP ports this backend's flanneld listens on (every node runs the same backend)."""
        return {p.port for p in flannel.udp_ports(self.backend) if p.flannels}

    @property
    def direct_routing(self) -> bool:
        return self.kind == "vxlan" and self.backend.get("DirectRouting") is True


def lease_value(public_ip: str, backend: dict[str, Any], vtep_mac: str, public_ipv6: str | None = None) -> str:
    """A lease's value as flanneld writes it (LeaseAttrs in Go's encoding/json: no spaces, fields in the
    struct's order): PublicIPv6 null on a single-stack node, BackendData the vxlan backend's VNI and
    VtepMAC (null for host-gw and the rest), and on a dual-stack one BackendV6Data for flannel-v6.<VNI>."""
    kind = str(backend.get("Type") or "udp")
    vxlan = kind.lower() == "vxlan"
    value: dict[str, Any] = {"PublicIP": public_ip, "PublicIPv6": public_ipv6, "BackendType": kind,
                             "BackendData": {"VNI": int(backend.get("VNI") or 1), "VtepMAC": vtep_mac} if vxlan else None}
    if public_ipv6:
        # flannel-v6.<VNI> is a device of its own, with a MAC of its own
        mac6 = vtep_mac[:-2] + f"{int(vtep_mac[-2:], 16) ^ 1:02x}"
        value["BackendV6Data"] = {"VNI": int(backend.get("VNI") or 1), "VtepMAC": mac6} if vxlan else None
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class _Remote:
    """One other lease as this node's flanneld sees it, with the peer behind it (None: no such machine)."""

    subnet: ipaddress.IPv4Network
    public_ip: str
    vtep_mac: str | None
    peer: SimPeer | None


class SimMesh:
    """The overlay from this node to the scenario's other nodes: the demo's MeshLike.

    `overlay()` gives what flannel's backend programs on this node for every other lease in etcd (vxlan:
    a route `<subnet> via <.0> dev flannel.<VNI> onlink`, a permanent neighbour `<.0> lladdr <VtepMAC>`
    and an fdb entry `<VtepMAC> dst <PublicIP>`, as vxlan_network.go does; host-gw: `<subnet> via
    <PublicIP>`). `probe()` follows each packet along that state to the peer and answers as the network
    would for the peer's faults. Nothing is sent anywhere; one scenario gives the same answers every run."""

    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        name = str(node.scenario.get("name", ""))
        items = (node.scenario.get("mesh") or {}).get("peers") or []
        self.peers = [SimPeer.parse(name, item, n) for n, item in enumerate(items, start=1)]

    # ------------------------------------------------------------ the peers' flanneld

    def join(self, run: FlannelRun, checked: flannel.NetworkConfig, taken: dict[str, str]) -> None:
        """The other nodes' flanneld take their leases, in the store and under the prefix this node's reads,
        as they would have once the config was there (it is rolled out to every node). A lease a peer
        already holds (found by its PublicIP, as flanneld finds its own) is kept, re-registered with the
        config's backend if it names another, as its flanneld does when it restarts; a subnet that is
        taken or outside Network gives the first free."""
        held: dict[str, str] = {}
        for key, value in taken.items():
            try:
                held[str(json.loads(value).get("PublicIP"))] = key
            except (ValueError, AttributeError):
                continue
        network = checked.v4.network if checked.v4 is not None else None
        kind = str(run.backend.get("Type") or "udp")
        for peer in self.peers:
            key = held.get(peer.public_ip)
            if key is not None:
                attrs = json.loads(taken[key])
                lease = flannel.parse_lease_key(key)
                fits = lease is not None and lease.subnet is not None and network is not None and \
                    lease.subnet.subnet_of(network)
                if fits and str(attrs.get("BackendType", "")).lower() != kind.lower():
                    data = attrs.get("BackendData")
                    mac = data.get("VtepMAC") if isinstance(data, dict) and data.get("VtepMAC") else peer.vtep_mac
                    taken[key] = lease_value(peer.public_ip, run.backend, str(mac), attrs.get("PublicIPv6"))
                    run.store.put(key, taken[key])
                if fits:
                    continue
            if checked.v6 is not None and not peer.public_ipv6:
                continue  # a dual-stack flanneld with no IPv6 address to use fails before taking a lease
            used = [lease.subnet for lease in map(flannel.parse_lease_key, taken) if lease and lease.subnet]
            free = flannel.first_free_lease(checked, taken)
            subnet = peer.subnet
            if subnet is None or network is None or not subnet.subnet_of(network) or \
                    any(u.overlaps(subnet) for u in used):
                subnet = free.subnet if free is not None else None
            if free is None or (checked.v4 is not None and subnet is None):
                continue  # out of subnets: that node's flanneld fails and holds no lease
            key = f"{run.prefix}/subnets/{flannel.Lease(subnet, free.ipv6_subnet).key}"
            taken[key] = lease_value(peer.public_ip, run.backend, peer.vtep_mac, peer.public_ipv6)
            run.store.put(key, taken[key])

    def _remotes(self, run: FlannelRun) -> list[_Remote]:
        """Every other lease, as flanneld's watch holds them (no etcd round trip)."""
        by_ip = {p.public_ip: p for p in self.peers}
        out = []
        for key, value in run.store.snapshot(run.prefix + "/subnets/"):
            lease = flannel.parse_lease_key(key)
            try:
                attrs = json.loads(value)
            except ValueError:
                continue  # flanneld skips a lease it cannot decode
            if lease is None or lease.subnet is None or not isinstance(attrs, dict) or lease.subnet == run.lease:
                continue
            public = str(attrs.get("PublicIP") or "")
            data = attrs.get("BackendData") if str(attrs.get("BackendType", "")).lower() == run.kind else None
            mac = data.get("VtepMAC") if isinstance(data, dict) else None
            out.append(_Remote(lease.subnet, public, str(mac) if mac else None, by_ip.get(public)))
        return out

    # ------------------------------------------------------------ MeshLike

    def overlay(self, device: str | None) -> Overlay:
        self.node.clock.wait("command")  # `ip -d link show`, `ip route`, `ip neigh`, `bridge fdb`
        main = [OverlayRoute(r.dst, r.gateway, r.dev, False) for r in self.node.links.routes()]
        run = self.node.flannel
        if run is None:  # flanneld never ran here: no device, no routes to other nodes
            return Overlay(None, tuple(main), (), ())
        routes, neighbours, fdb = self._programmed(run)
        if device != run.device or run.kind != "vxlan":
            return Overlay(None, tuple(main + routes), (), ())
        vxlan = VxlanDevice(run.device, run.vni, run.port, run.public_ip, False, run.mtu, THIS_VTEP_MAC, True,
                            (f"{run.lease.network_address}/32",))
        return Overlay(vxlan, tuple(main + routes), tuple(neighbours), tuple(fdb))

    def _programmed(self, run: FlannelRun) -> tuple[list[OverlayRoute], list[Neighbour], list[FdbEntry]]:
        routes: list[OverlayRoute] = []
        neighbours: list[Neighbour] = []
        fdb: list[FdbEntry] = []
        for remote in self._remotes(run):
            direct = run.direct_routing and self.gateway_to(remote.public_ip) is None
            if run.kind == "vxlan" and remote.vtep_mac and not direct:
                gateway = str(remote.subnet.network_address)
                routes.append(OverlayRoute(remote.subnet, gateway, run.device, True))
                neighbours.append(Neighbour(gateway, remote.vtep_mac, True))
                fdb.append(FdbEntry(remote.vtep_mac, remote.public_ip))
            elif (run.kind == "host-gw" or direct) and self.gateway_to(remote.public_ip) is None:
                # host-gw routes only to nodes on the same link (flannel logs an error for the others);
                # vxlan with DirectRouting routes those the same way, with no neighbour or fdb entry
                dev = self._route(remote.public_ip)
                routes.append(OverlayRoute(remote.subnet, remote.public_ip, dev.dev if dev else None, False))
            elif run.kind == "ipip":
                routes.append(OverlayRoute(remote.subnet, remote.public_ip, run.tunnel, True))
        if run.kind in ("udp", "wireguard") and run.network is not None:
            routes.append(OverlayRoute(run.network, None, run.tunnel, False))
        return routes, neighbours, fdb

    def gateway_to(self, address: str) -> str | None:
        route = self._route(address)
        return route.gateway if route is not None else ""  # "": no route at all, as `ip route get` fails

    def _route(self, address: str, table: list[OverlayRoute] | None = None) -> OverlayRoute | None:
        """The longest-prefix match, as the kernel picks it."""
        ip = ipaddress.IPv4Address(address)
        routes = table if table is not None else [OverlayRoute(r.dst, r.gateway, r.dev, False)
                                                   for r in self.node.links.routes()]
        found = [r for r in routes if ip in r.dst]
        return max(found, key=lambda r: r.dst.prefixlen) if found else None

    def probe(self, probes: list[Probe], timeout: float) -> list[ProbeResult]:
        results = [self._answer(p) for p in probes]
        # all at once, as the real probes go out: the replies in a moment, an ICMP silence until the
        # deadline (the scenario's `silence:` delay stands for it, so a demo keeps moving); a silent UDP
        # probe waits only a grace once every ICMP one has its answer, as node/probes.py does
        silent = any(r.outcome == "silent" and r.probe.kind == "icmp" for r in results)
        self.node.clock.wait_at_most("silence" if silent else "probe", timeout)
        return results

    # ------------------------------------------------------------ one packet's way

    def _answer(self, probe: Probe) -> ProbeResult:
        try:
            target = ipaddress.IPv4Address(probe.address)
        except ValueError:
            return ProbeResult(probe, "error", f"not an IPv4 address: {probe.address}")
        run = self.node.flannel
        local = {ipaddress.IPv4Interface(c).ip for _n, c in self.node.links.addresses()}
        if run is not None and run.kind == "vxlan":
            local.add(run.lease.network_address)
        if target in local:
            return self._arrived(probe, None, "underlay", listening=run is not None and probe.port in run.ports)
        table = [OverlayRoute(r.dst, r.gateway, r.dev, False) for r in self.node.links.routes()]
        neighbours: list[Neighbour] = []
        fdb: list[FdbEntry] = []
        if run is not None:
            routes, neighbours, fdb = self._programmed(run)
            table += routes
        route = self._route(probe.address, table)
        if route is None:
            return ProbeResult(probe, "unreachable", "connect: Network is unreachable")
        length = probe.size + HEADERS
        if run is not None and run.kind == "vxlan" and route.dev == run.device:
            return self._through_vxlan(probe, run, route, length, neighbours, fdb)
        if run is not None and run.tunnel and route.dev == run.tunnel:
            return self._through_tunnel(probe, run, length)
        return self._through_underlay(probe, route, length, run)

    def _through_tunnel(self, probe: Probe, run: FlannelRun, length: int) -> ProbeResult:
        """udp, wireguard, ipip: the packet goes to the node whose lease holds the address, in a packet
        `overhead` bytes larger (UDP to flanneld's port for udp and wireguard; IP in IP for ipip)."""
        if length > run.mtu:
            if probe.df:
                return ProbeResult(probe, "too-big", str(run.mtu))
            length = run.mtu
        target = ipaddress.IPv4Address(probe.address)
        remote = next((r for r in self._remotes(run) if target in r.subnet), None)
        peer = remote.peer if remote is not None else None
        if peer is None or peer.down:
            return ProbeResult(probe, "silent")
        outer = length + flannel.MTU_OVERHEAD.get(run.kind, 0)
        if (peer.mtu is not None and outer > peer.mtu) or run.ports & (peer.udp_blocked | peer.udp_rejected):
            return ProbeResult(probe, "silent")
        return self._in_subnet(probe, peer, remote.subnet if remote else None, "overlay", vtep=False)

    def _through_underlay(self, probe: Probe, route: OverlayRoute, length: int, run: FlannelRun | None) -> ProbeResult:
        link = self.node.links.link(route.dev or "")
        mtu = link.mtu if link is not None else 1500
        if length > mtu:
            if probe.df:  # this kernel refuses it before it leaves: `ping: local error: message too long, mtu=1500`
                return ProbeResult(probe, "too-big", str(mtu))
            length = mtu  # sent in fragments of the link's MTU
        # the node the packet is for: a peer by its PublicIP, or (host-gw) the peer it is routed through
        peer = next((p for p in self.peers if p.public_ip == probe.address), None) or \
            next((p for p in self.peers if route.gateway and p.public_ip == route.gateway), None)
        on_link = route.gateway is None or (peer is not None and route.gateway == peer.public_ip)
        if peer is None or peer.down:
            # on the link and nobody answers ARP: the kernel says so; past a router nothing comes back
            return ProbeResult(probe, "unreachable", "Destination Host Unreachable") if on_link else \
                ProbeResult(probe, "silent")
        if peer.mtu is not None and length > peer.mtu:
            return ProbeResult(probe, "silent")
        if peer.public_ip == probe.address:
            return self._arrived(probe, peer, "underlay", listening=run is not None and probe.port in run.ports)
        # host-gw (or vxlan's DirectRouting): routed via the peer to an address in its lease
        return self._in_subnet(probe, peer, self._subnet_of(run, peer), "underlay",
                               vtep=run is not None and run.kind == "vxlan")

    def _through_vxlan(self, probe: Probe, run: FlannelRun, route: OverlayRoute, length: int,
                       neighbours: list[Neighbour], fdb: list[FdbEntry]) -> ProbeResult:
        if length > run.mtu:
            if probe.df:  # flannel.1's own MTU: `ping: local error: message too long, mtu=1450`
                return ProbeResult(probe, "too-big", str(run.mtu))
            length = run.mtu
        neighbour = next((n for n in neighbours if n.dst == route.gateway), None)
        if neighbour is None or not neighbour.lladdr:
            # nolearning and no entry: the ARP request has nowhere to go
            return ProbeResult(probe, "unreachable", "Destination Host Unreachable")
        entry = next((f for f in fdb if f.lladdr == neighbour.lladdr), None)
        if entry is None or entry.dst is None:
            return ProbeResult(probe, "silent")  # no VTEP for that MAC: the frame is dropped
        peer = next((p for p in self.peers if p.public_ip == entry.dst), None)
        outer = length + VXLAN_OVERHEAD
        underlay = self._route(entry.dst)
        link = self.node.links.link(underlay.dev or "") if underlay is not None else None
        if peer is None or peer.down or underlay is None:
            return ProbeResult(probe, "silent")
        if link is not None and outer > link.mtu:
            return ProbeResult(probe, "silent")  # a vxlan frame over the underlay's MTU is dropped on the way out
        if peer.mtu is not None and outer > peer.mtu:
            return ProbeResult(probe, "silent")
        if run.port in peer.udp_blocked or run.port in peer.udp_rejected:
            # the encapsulated packet never reaches its vxlan socket (a REJECT's port-unreachable goes to
            # this node's vxlan socket, not to the ping)
            return ProbeResult(probe, "silent")
        return self._in_subnet(probe, peer, self._subnet_of(run, peer), "overlay", vtep=True)

    def _subnet_of(self, run: FlannelRun | None, peer: SimPeer) -> ipaddress.IPv4Network | None:
        if run is None:
            return None
        return next((r.subnet for r in self._remotes(run) if r.peer == peer), None)

    def _in_subnet(self, probe: Probe, peer: SimPeer, subnet: ipaddress.IPv4Network | None, way: str,
                   vtep: bool) -> ProbeResult:
        """Delivered to the peer, for an address in its lease: its flannel.1 holds .0 (vxlan only: host-gw
        makes no device), its docker0 .1; the peer answers for its own addresses whichever link they came in by."""
        if subnet is None or ipaddress.IPv4Address(probe.address) not in subnet:
            return ProbeResult(probe, "silent")
        index = int(ipaddress.IPv4Address(probe.address)) - int(subnet.network_address)
        held = (index == 0 and vtep) or (index == 1 and peer.bridge)
        if not held:
            return ProbeResult(probe, "silent")  # no pod and no address there: nobody answers
        if probe.kind == "udp":
            return ProbeResult(probe, "refused", "ICMP port unreachable")
        return ProbeResult(probe, "answered", rtt_ms=RTT_MS[way])

    def _arrived(self, probe: Probe, peer: SimPeer | None, way: str, listening: bool) -> ProbeResult:
        """Delivered to a node's own address (this one's when `peer` is None)."""
        if probe.kind == "icmp":
            return ProbeResult(probe, "answered", rtt_ms=RTT_MS[way])
        if peer is not None and probe.port in peer.udp_blocked:
            return ProbeResult(probe, "silent")
        if peer is not None and probe.port in peer.udp_rejected:
            return ProbeResult(probe, "refused", "ICMP port unreachable")
        if listening:
            # the backend's socket takes the datagram and drops it (vxlan: not a VXLAN frame for its VNI;
            # wireguard: no handshake; udp: not a packet for its TUN): no answer
            return ProbeResult(probe, "silent")
        return ProbeResult(probe, "refused", "ICMP port unreachable")


class SimCommands:
    def __init__(self, node: SimulatedNode) -> None:
        self.node = node

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.node.scenario.get("binaries", []) else None

    def run(self, *argv: str, timeout: float = 30.0, input: str | None = None) -> Result:
        if self.which(argv[0]) is None:
            return Result(tuple(argv), 127, "", f"{argv[0]}: command not found")
        self.node.clock.wait("command")
        if argv[0] == "systemctl":
            return self._systemctl(argv)
        if argv[0] == "flanneld" and any(a.lstrip("-") == "version" for a in argv[1:]):
            return Result(tuple(argv), 0, "", self.node.flanneld_version + "\n")  # flanneld prints it to stderr
        if argv[:2] == ("docker", "info"):
            return Result(tuple(argv), 0, self.node.docker_driver + "\n", "")
        if argv[0] == "kubectl":
            return self.node.cluster.kubectl(tuple(argv), input)
        if argv[0] == "iptables-save":
            return self.node.cluster.iptables_save(tuple(argv))
        return Result(tuple(argv), 0, "", "")

    def _systemctl(self, argv: tuple[str, ...]) -> Result:
        node = self.node
        if node.kernel.init_name() != "systemd":
            return Result(argv, 1, "", "System has not been booted with systemd as init system (PID 1). Can't operate.")
        if len(argv) >= 3 and argv[1] in ("restart", "start"):
            node.clock.wait("restart")
            return node.start_unit(argv[1], argv[2], argv)
        return Result(argv, 0, "", "")


class _DemoFiles(Files):
    """The demo root's files. They carry the demo's identity, so a journal kept under this root is
    marked as the demo's even by a caller that did not pass one."""

    def __init__(self, root: str, identity: dict[str, str]) -> None:
        super().__init__(root)
        self.node_identity = identity


FLANNELD_BOOLEANS = flannel.FLANNELD_BOOLEANS | {"v"}
# a current upstream release unless the scenario says `flanneld_version:` (CentOS 7's package printed 0.7.1)
DEFAULT_FLANNELD_VERSION = "v0.26.1"
DOCKERD_BOOLEANS = dockerunit.BOOLEANS
DOCKER_CONFIG = "/etc/docker/daemon.json"


class SimulatedNode:
    simulated = True

    def __init__(self, scenario: dict[str, Any], speed: float = 1.0, root: str | None = None) -> None:
        self.scenario = scenario
        self.root = os.path.abspath(root or tempfile.mkdtemp(prefix=f"flannel-wizard-demo-{scenario['name']}-"))
        os.makedirs(self.root, exist_ok=True)
        self.clock = Clock(scenario.get("delays", {}), speed)
        self.files: Files = _DemoFiles(self.root, self.identity())
        self.kernel = SimKernel(scenario)
        self.links = SimLinks(scenario, self.clock)
        self.commands = SimCommands(self)
        self.cluster = SimCluster(self)
        self.http = _SimHttp(self.cluster)
        etcd = scenario.get("etcd", {})
        delay = float(scenario.get("delays", {}).get("etcd", 0)) / speed
        # a key set to null is not there: a scenario removes what its base scenario has
        self.store = MemoryStore("http://127.0.0.1:2379", str(etcd.get("version", "3.4.23")),
                                 {k: v for k, v in (etcd.get("keys") or {}).items() if v is not None}, delay)
        # the v2 keys API's keys (`keys_v2:`), apart from v3's as etcd keeps them: flanneld before v0.18 reads these
        self.store_v2 = MemoryStore(self.store.endpoint, str(etcd.get("version", "3.4.23")),
                                    {k: v for k, v in (etcd.get("keys_v2") or {}).items() if v is not None}, delay,
                                    parent=self.store)
        self.store.down = bool(etcd.get("down"))
        # what `flanneld --version` prints; v0.18.0 and later read the v3 API
        self.flanneld_version = str(scenario.get("flanneld_version", DEFAULT_FLANNELD_VERSION))
        self.flannel: FlannelRun | None = None  # set when the simulated flanneld starts
        self._mesh = SimMesh(self)
        self.docker_driver = scenario.get("docker", {}).get("default_cgroup_driver", "cgroupfs")
        # why each unit that failed to start did, as its journal would say
        self.unit_log: dict[str, str] = {}
        simsystemd.install(self.files, scenario)
        for path, text in scenario.get("files", {}).items():
            self.files.write(path, text.encode())
        self._docker_at_boot()

    @property
    def mesh(self) -> SimMesh:
        """The overlay to the scenario's other nodes: simulated probes, no socket and no netlink."""
        return self._mesh

    def identity(self) -> dict[str, str]:
        return {"kind": "demo", "scenario": str(self.scenario["name"]), "root": self.root}

    def etcd(self, settings: Etcd, password: str | None) -> Store:
        store = self.store_v2 if settings.api == "v2" else self.store
        self.store.endpoint = self.store_v2.endpoint = settings.endpoints[0]
        store.version()  # connect: refused when the scenario has etcd down
        return _Handle(store)

    def flanneld_store(self) -> MemoryStore:
        """The store the installed flanneld reads: v2 before v0.18.0, v3 from then on."""
        version = parse_flanneld_version(self.flanneld_version)
        return self.store_v2 if version is not None and api_of(version) == "v2" else self.store

    def close(self) -> None:
        return None

    # ------------------------------------------------------------ simulated services

    def start_unit(self, verb: str, name: str, argv: tuple[str, ...]) -> Result:
        """`systemctl start|restart NAME`, answered as systemd would from the unit files under the root."""
        unit = simsystemd.load(self.files, name)
        if unit is None:
            return Result(argv, 5, "", simsystemd.not_found(verb, name))
        if not unit.exec_start:
            return Result(argv, 1, "", f"Failed to {verb} {unit.name}: Unit {unit.name} has a bad unit file setting.")
        try:
            env = simsystemd.environment(self.files, unit)
        except simsystemd.MissingEnvironmentFile as exc:
            self.unit_log[unit.name] = f"Failed to load environment files: {exc}: No such file or directory"
            return Result(argv, 1, "", simsystemd.job_failed(unit.name, "of unavailable resources or another system error"))
        command = simsystemd.command(unit, env)
        program = os.path.basename(command[0]) if command else ""
        if program in ("flanneld", "flanneld-start"):
            error = self._start_flanneld(program, command[1:], env)
        elif program in ("dockerd", "dockerd-current"):
            error = self._start_docker(command[1:])
        else:
            error = ""
        if error:
            self.unit_log[unit.name] = error
            # flanneld's own words for a full network, as the test stand-in gives them too
            shown = error if "out of subnets" in error else simsystemd.job_failed(unit.name)
            return Result(argv, 1, "", shown)
        self.unit_log.pop(unit.name, None)
        return Result(argv, 0, "", "")

    # ---- docker

    def _docker_config(self, args: list[str]) -> tuple[dict[str, list[str]], str, dict[str, Any]]:
        """dockerd's flags, the config file it reads and that file's settings; ValueError as dockerd refuses."""
        opts = simsystemd.flags(args, DOCKERD_BOOLEANS)
        path = (opts.get("config-file") or [DOCKER_CONFIG])[-1]
        text = self.files.read_text(path)
        if text is None:
            if "config-file" in opts:
                raise ValueError(f"unable to configure the Docker daemon with file {path}: open {path}: no such file or directory")
            return opts, path, {}
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise ValueError(f"unable to configure the Docker daemon with file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"unable to configure the Docker daemon with file {path}: not a JSON object")
        # every flag against the key dockerd compares it with, as the real one does (wizard/dockerunit.py)
        both = [(dockerunit.JSON_KEYS.get(flag, flag), flag) for flag in opts
                if flag not in dockerunit.MERGED and dockerunit.JSON_KEYS.get(flag, flag) in data]
        if both:
            listed = ", ".join(f"{key}: (from flag: {', '.join(opts[flag])}, from file: {data[key]})" for key, flag in both)
            raise ValueError(f"unable to configure the Docker daemon with file {path}: the following directives are "
                             f"specified both as a flag and in the configuration file: {listed}")
        return opts, path, data

    def _docker_driver_from(self, opts: dict[str, list[str]], data: dict[str, Any]) -> str:
        from wizard.runtimes import docker_exec_opt

        default = self.scenario.get("docker", {}).get("default_cgroup_driver", "cgroupfs")
        if "exec-opt" in opts:
            return docker_exec_opt({"exec-opts": opts["exec-opt"]}) or default
        return docker_exec_opt(data) or default

    def _docker_at_boot(self) -> None:
        """The driver the running dockerd reports before anything is restarted: what its unit gives it."""
        unit = simsystemd.load(self.files, "docker")
        if unit is None:
            return
        try:
            env = simsystemd.environment(self.files, unit)
            opts, _path, data = self._docker_config(simsystemd.command(unit, env)[1:])
        except (simsystemd.MissingEnvironmentFile, ValueError):
            return  # dockerd would not be running; the docker step reports the file
        self.docker_driver = self._docker_driver_from(opts, data)

    def _start_docker(self, args: list[str]) -> str:
        try:
            opts, _path, data = self._docker_config(args)
        except ValueError as exc:
            return str(exc)
        self.docker_driver = self._docker_driver_from(opts, data)
        bip = (opts.get("bip") or [data.get("bip") or ""])[-1]
        mtu = (opts.get("mtu") or [data.get("mtu") or 1500])[-1]
        if bip:
            self.links.set_ipv4("docker0", [str(bip)], int(mtu))
        return ""

    # ---- flanneld

    def _start_flanneld(self, program: str, args: list[str], env: dict[str, str]) -> str:
        if program == "flanneld-start":
            # the package's wrapper hands flanneld its env file's endpoints and prefix as flags
            # (`${FLANNEL_ETCD_ENDPOINTS:-${FLANNEL_ETCD}}`), and execs it with its environment
            args = [f"-etcd-endpoints={env.get('FLANNEL_ETCD_ENDPOINTS') or env.get('FLANNEL_ETCD', '')}",
                    f"-etcd-prefix={env.get('FLANNEL_ETCD_PREFIX') or env.get('FLANNEL_ETCD_KEY', '')}", *args]
        opts = simsystemd.flags(args, FLANNELD_BOOLEANS)

        def flag(name: str, default: str) -> str:
            # a flag, else flanneld's own FLANNELD_<NAME> variable
            values = opts.get(name)
            value = values[-1] if values else env.get("FLANNELD_" + name.upper().replace("-", "_"), "")
            return value or default

        prefix = flag("etcd-prefix", "/coreos.com/network")
        store = self.flanneld_store()
        if store.down:
            return "Couldn't fetch network config: client: etcd cluster is unavailable or misconfigured"
        found = store.get(prefix + "/config")
        if found is None:
            # each flanneld's own words: the old one reads the v2 keys API, the new one v3
            if store is self.store_v2:
                return f"Couldn't fetch network config: 100: Key not found ({prefix}/config)"
            return ("Couldn't fetch network config: flannel config not found in etcd store. "
                    "Did you create your config using etcdv3 API?")
        cfg = json.loads(found[0])
        try:
            checked = flannel.check_config(cfg)
        except flannel.ConfigProblem as exc:
            return f"Couldn't fetch network config: {exc.message}"
        # -public-ip, else an -iface given as an address, else the scenario's address of the default route's device
        iface = flag("iface", "")
        public_ip = flag("public-ip", "") or (iface if iface[:1].isdigit() else "") or self.scenario.get("public_ip", "127.0.0.1")
        taken = dict(store.list(prefix + "/subnets/"))
        mine = next((k for k, v in taken.items() if json.loads(v).get("PublicIP") == public_ip), None)
        lease = flannel.parse_lease_key(mine) if mine else None
        if lease is None:
            lease = flannel.first_free_lease(checked, taken)
            if lease is None:
                return "failed to acquire lease: out of subnets"
            key = f"{prefix}/subnets/{lease.key}"
            taken[key] = lease_value(public_ip, cfg["Backend"], THIS_VTEP_MAC)
            store.put(key, taken[key])
        device_mtu = self.links.default_mtu() or 1500
        mtu = flannel.backend_mtu(cfg["Backend"], device_mtu)
        if lease.subnet is not None:
            self.flannel = FlannelRun(store, prefix, dict(cfg["Backend"]), lease.subnet, public_ip, mtu,
                                      checked.v4.network if checked.v4 is not None else None)
            # after this node's lease: it keeps the subnet it gets on every run (172.30.1.0/24 in the scenarios)
            self._mesh.join(self.flannel, checked, taken)
        masq = flag("ip-masq", "false") == "true"
        subnet_file = flag("subnet-file", "/run/flannel/subnet.env")
        self.files.write(subnet_file, flannel.subnet_env(checked, lease, mtu, masq).encode())
        return ""


class _SimHttp:
    """HTTP answered by the simulated pods: nothing leaves the process."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster

    def get(self, url: str, timeout: float) -> tuple[bool, str]:
        return self.cluster.http_get(url, timeout)


class _Handle(Store):
    """What `node.etcd()` hands out: the shared in-memory store, which closing a run must not end."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.endpoint = store.endpoint

    def version(self) -> str:
        return self.store.version()

    def get(self, key: str) -> tuple[str, int] | None:
        return self.store.get(key)

    def create(self, key: str, value: str) -> int | None:
        return self.store.create(key, value)

    def cas(self, key: str, value: str, revision: int) -> int | None:
        return self.store.cas(key, value, revision)

    def delete_if(self, key: str, revision: int) -> bool:
        return self.store.delete_if(key, revision)

    def list(self, prefix: str) -> list[tuple[str, str]]:
        return self.store.list(prefix)
