"""Stand-in for a *running* flanneld with the vxlan or the host-gw backend, for the multi-node lab
(tests/meshlab.py). flanneld itself cannot run here: no Debian package ships it and nothing may be
downloaded. This one programs the kernel of the network namespace it runs in the way flannel's
backends do (pkg/backend/vxlan/{vxlan.go,vxlan_network.go,device.go}, pkg/backend/route_network.go,
pkg/subnet/etcd/local_manager.go), so the wizard's mesh check meets the state a real flanneld leaves:

- reads PREFIX/config over etcd's v3 API (its HTTP JSON gateway; standard library only) and retries
  every second while it is missing, as flanneld does;
- vxlan: creates `flannel.<VNI>` (`type vxlan id VNI dstport PORT local <PublicIP> dev <iface>
  nolearning`, MTU = Backend.MTU or the interface's MTU, minus 50), reusing a compatible one;
- takes a lease as flannel's etcd subnet manager does: the lease already registered for this
  PublicIP is *reused and overwritten* (findLeaseByIP: that is what two nodes with the same PublicIP
  do to each other), else the lowest free subnet (flannel picks a random one; the lab wants stable
  runs) is created by a transaction, with a 24 h etcd lease, value
  `{"PublicIP":…,"PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":…}}`
  (host-gw: `"BackendData":null`);
- vxlan: puts `<lease .0>/32` on the device and sets it up; writes the subnet file (FLANNEL_NETWORK,
  FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ);
- then watches PREFIX/subnets/ (a v3 range every 0.1 s, acted on only when the store's revision
  moved) and turns what changed into flannel's lease events: a new or changed lease is "added", a
  vanished one "removed"; its own lease is skipped. vxlan, per added lease: permanent neighbour
  `<.0> lladdr <VtepMAC>`, fdb `<VtepMAC> dst <PublicIP>`, then route `<subnet> via <.0> dev
  flannel.<VNI> onlink`; removed: the three deleted. host-gw: route `<subnet> via <PublicIP> dev
  <iface>`; when the kernel refuses it (gateway not on-link) it logs flannel's error and goes on,
  and like flannel's routeCheck it retries the routes it holds every 10 s.
  Nothing is re-asserted otherwise: a neighbour a test corrupts stays corrupted, as with flanneld.

Not done (the lab does not need them): iptables (it behaves as `-iptables-forward-rules=false`
without `-ip-masq` rules; -ip-masq only sets FLANNEL_IPMASQ), lease renewal (24 h outlives any
test), IPv6, recreating a deleted vxlan device, v2 etcd, TLS/auth beyond what the parent stand-in's
client does.

Flags, in flanneld's Go style (`-name value`, `-name=value`): -etcd-endpoints, -etcd-prefix,
-iface (a name), -public-ip, -subnet-file, -ip-masq; and one test control: -root DIR (files are
written under it, default /). SIGTERM or SIGINT: exits 0, leaving the kernel state and the lease in
place, as flanneld does.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.standins.flanneld import Etcd, Exit, one, parse_flags, v4_part

TTL = 24 * 3600
POLL_S = 0.1
ROUTE_CHECK_S = 10  # flannel's routeCheckRetries
VXLAN_OVERHEAD = 50
STOP = threading.Event()


def log(level: str, where: str, message: str) -> None:
    """glog's line format, as flanneld writes to stderr."""
    now = datetime.now()
    print(f"{level}{now:%m%d %H:%M:%S.%f} {os.getpid():7d} {where}] {message}", file=sys.stderr, flush=True)


def sh(*argv: str, data: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, input=data, capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise Exit(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def link(name: str) -> dict[str, Any] | None:
    done = sh("ip", "-d", "-j", "addr", "show", "dev", name, check=False)
    return json.loads(done.stdout)[0] if done.returncode == 0 and done.stdout.strip() else None


def default_iface() -> str:
    routes = json.loads(sh("ip", "-j", "-4", "route", "show", "default").stdout or "[]")
    if not routes:
        raise Exit("failed to get default interface: Unable to find default route")
    return routes[0]["dev"]


def iface_ipv4(data: dict[str, Any]) -> str:
    for addr in data.get("addr_info", []):
        if addr.get("family") == "inet":
            return addr["local"]
    raise Exit(f"failed to find IPv4 address for interface {data['ifname']}")


class Store(Etcd):
    """The parent stand-in's v3 client, plus what a running flanneld needs: revisions and updates."""

    def leases(self, prefix: str) -> tuple[int, dict[str, str]]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        got = self._call("/v3/kv/range", {"key": self._b64(prefix), "range_end": self._b64(end)})
        kvs = got.get("kvs", [])
        return int(got["header"]["revision"]), {
            base64.b64decode(kv["key"]).decode().rsplit("/", 1)[-1]: base64.b64decode(kv["value"]).decode() for kv in kvs}

    def update(self, key: str, value: str) -> None:
        lease = self._call("/v3/lease/grant", {"TTL": TTL})["ID"]
        self._call("/v3/kv/put", {"key": self._b64(key), "value": self._b64(value), "lease": lease})


def ensure_vxlan(name: str, vni: int, port: int, local: str, iface: str, mtu: int) -> str:
    """flannel's ensureLink: keep a compatible device, replace an incompatible one; returns its MAC."""
    data = link(name)
    if data is not None:
        info = data.get("linkinfo", {}).get("info_data", {})
        if (data.get("linkinfo", {}).get("info_kind") != "vxlan" or info.get("id") != vni or info.get("port") != port
                or info.get("local") != local or info.get("learning")):
            log("W", "device.go", f"{name} exists but is incompatible; recreating it")
            sh("ip", "link", "del", name)
            data = None
    if data is None:
        sh("ip", "link", "add", name, "type", "vxlan", "id", str(vni), "dstport", str(port), "local", local,
           "dev", iface, "nolearning")
    sh("ip", "link", "set", name, "mtu", str(mtu))
    sh("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1", check=False)  # no link-local chatter
    return link(name)["address"]


def acquire(store: Store, prefix: str, public_ip: str, network: ipaddress.IPv4Network, subnet_len: int,
            attrs: str) -> str:
    """flannel's AcquireLease with the etcd subnet manager, retrying as it does; the key's last part."""
    subnets = list(network.subnets(new_prefix=subnet_len))
    while not STOP.is_set():
        try:
            return _try_acquire(store, prefix, public_ip, subnets, subnet_len, attrs)
        except (OSError, KeyError, ValueError) as exc:  # etcd slow or away: flanneld logs and retries
            log("E", "main.go", f"Failed to acquire lease: {exc}; retrying")
            STOP.wait(1)
        except TryAgain:
            pass
    raise Exit("stopped")


class TryAgain(Exception):
    """Someone created the subnet between our read and our transaction: flannel's errTryAgain."""


def _try_acquire(store: Store, prefix: str, public_ip: str, subnets: list[ipaddress.IPv4Network],
                 subnet_len: int, attrs: str) -> str:
    """One round of flannel's tryAcquireLease; returns the lease key's last part."""
    _, leases = store.leases(prefix + "/subnets/")
    for key, value in leases.items():
        if json.loads(value).get("PublicIP") == public_ip:
            log("I", "local_manager.go", f"Found lease (ip: {key.replace('-', '/')} ipv6: ) for current IP "
                f"({public_ip}), reusing")
            store.update(prefix + "/subnets/" + key, attrs)
            return key
    used = {v4_part(k) for k in leases}
    free = [f"{sn.network_address}-{subnet_len}" for sn in subnets[1:]]
    free = [k for k in free if k not in used]
    if not free:
        raise Exit("failed to acquire lease: out of subnets")
    if store.create(prefix + "/subnets/" + free[0], attrs):
        log("I", "local_manager.go", f"Allocated lease (ip: {free[0].replace('-', '/')} ipv6: ) to current node "
            f"({public_ip})")
        return free[0]
    raise TryAgain


def write_subnet_file(path: Path, network: ipaddress.IPv4Network, lease: ipaddress.IPv4Network, mtu: int,
                      masq: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(f"FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={lease.network_address + 1}/{lease.prefixlen}\n"
                   f"FLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={'true' if masq else 'false'}\n")
    os.replace(tmp, path)


def batch(tool: str, lines: list[str]) -> list[str]:
    """Run `ip`/`bridge` -batch with -force (every line is tried); returns the error lines."""
    if not lines:
        return []
    done = sh(tool, "-force", "-batch", "-", data="".join(line + "\n" for line in lines), check=False)
    return [line for line in done.stderr.splitlines() if line.strip()]


class Vxlan:
    def __init__(self, dev: str) -> None:
        self.dev = dev

    def added(self, leases: dict[str, dict[str, Any]]) -> None:
        neigh, fdb, routes = [], [], []
        for key, attrs in leases.items():
            sn = ipaddress.IPv4Network(v4_part(key).replace("-", "/"))
            mac = (attrs.get("BackendData") or {}).get("VtepMAC")
            if attrs.get("BackendType") != "vxlan" or not mac:
                log("W", "vxlan_network.go", f"ignoring non-vxlan v4Subnet({sn}) v6Subnet(): type={attrs.get('BackendType')}")
                continue
            log("I", "vxlan_network.go", f"adding subnet: {sn} PublicIP: {attrs['PublicIP']} VtepMAC: {mac}")
            neigh.append(f"neigh replace {sn.network_address} lladdr {mac} dev {self.dev} nud permanent")
            fdb.append(f"fdb replace {mac} dev {self.dev} dst {attrs['PublicIP']} self permanent")
            routes.append(f"route replace {sn} via {sn.network_address} dev {self.dev} onlink")
        program(neigh, fdb, routes)

    def removed(self, leases: dict[str, dict[str, Any]]) -> None:
        neigh, fdb, routes = [], [], []
        for key, attrs in leases.items():
            sn = ipaddress.IPv4Network(v4_part(key).replace("-", "/"))
            mac = (attrs.get("BackendData") or {}).get("VtepMAC")
            if attrs.get("BackendType") != "vxlan" or not mac:
                continue
            log("I", "vxlan_network.go", f"removing subnet: {sn} PublicIP: {attrs['PublicIP']} VtepMAC: {mac}")
            neigh.append(f"neigh del {sn.network_address} dev {self.dev}")
            fdb.append(f"fdb del {mac} dev {self.dev} dst {attrs['PublicIP']} self")
            routes.append(f"route del {sn} via {sn.network_address} dev {self.dev} onlink")
        program(neigh, fdb, routes)

    def tick(self) -> None:
        pass


def program(neigh: list[str], fdb: list[str], routes: list[str]) -> None:
    """Neighbours and fdb entries before the routes that need them, as vxlan_network.go orders them."""
    for tool, lines in (("ip", neigh), ("bridge", fdb), ("ip", routes)):
        for err in batch(tool, lines):
            log("E", "vxlan_network.go", err)


class HostGw:
    def __init__(self, iface: str) -> None:
        self.iface = iface
        self.ifindex = link(iface)["ifindex"]
        self.routes: dict[str, str] = {}  # subnet -> gateway: flannel's route list
        self.checked = time.monotonic()

    def _describe(self, sn: str, gw: str) -> str:
        return f"{{Ifindex: {self.ifindex} Dst: {sn} Src: <nil> Gw: {gw} Flags: [] Table: 0 Realm: 0}}"

    def _add(self, sn: str, gw: str, recovering: bool = False) -> None:
        done = sh("ip", "route", "add", sn, "via", gw, "dev", self.iface, check=False)
        if done.returncode == 0:
            if recovering:
                log("I", "route_network.go", f"Route recovered {sn} : {gw}")
        elif recovering:
            log("E", "route_network.go", f"Error recovering route to {sn}: {gw}, {errno_text(done.stderr)}")
        else:
            log("E", "route_network.go", f"Error adding route to {self._describe(sn, gw)}: {errno_text(done.stderr)}")

    def added(self, leases: dict[str, dict[str, Any]]) -> None:
        for key, attrs in leases.items():
            sn = v4_part(key).replace("-", "/")
            if attrs.get("BackendType") != "host-gw":
                log("W", "route_network.go", f"Ignoring non-host-gw subnet: type={attrs.get('BackendType')}")
                continue
            gw = attrs["PublicIP"]
            log("I", "route_network.go", f"Subnet added: {sn} via {gw}")
            self.routes[sn] = gw
            current = json.loads(sh("ip", "-j", "route", "show", "exact", sn).stdout or "[]")
            if current and (current[0].get("gateway") != gw or current[0].get("dev") != self.iface):
                log("W", "route_network.go", f"Replacing existing route to {sn} with {self._describe(sn, gw)}")
                sh("ip", "route", "del", sn, check=False)
                current = []
            if current:
                log("I", "route_network.go", f"Route to {self._describe(sn, gw)} already exists, skipping.")
            else:
                self._add(sn, gw)

    def removed(self, leases: dict[str, dict[str, Any]]) -> None:
        for key, attrs in leases.items():
            if attrs.get("BackendType") != "host-gw":
                continue
            sn = v4_part(key).replace("-", "/")
            log("I", "route_network.go", f"Subnet removed: {sn}")
            self.routes.pop(sn, None)
            done = sh("ip", "route", "del", sn, "via", attrs["PublicIP"], "dev", self.iface, check=False)
            if done.returncode != 0:
                log("E", "route_network.go", f"Error deleting route to {sn}: {errno_text(done.stderr)}")

    def tick(self) -> None:
        """flannel's routeCheck: every 10 s, add back the routes it holds that the table lacks."""
        if time.monotonic() - self.checked < ROUTE_CHECK_S:
            return
        self.checked = time.monotonic()
        for sn, gw in self.routes.items():
            current = json.loads(sh("ip", "-j", "route", "show", "exact", sn).stdout or "[]")
            if not any(r.get("gateway") == gw for r in current):
                self._add(sn, gw, recovering=True)


def errno_text(stderr: str) -> str:
    """What Go's syscall.Errno says for the error iproute2 printed (the kernel's extack differs)."""
    text = stderr.strip().removeprefix("Error: ").removeprefix("RTNETLINK answers: ")
    return {"Nexthop has invalid gateway.": "network is unreachable",
            "Network is unreachable": "network is unreachable",
            "No such process": "no such process",
            "File exists": "file exists"}.get(text, text.lower())


def run(args: list[str]) -> None:
    flags = parse_flags(args)
    prefix = one(flags, "etcd-prefix", "/coreos.com/network")
    root = Path(one(flags, "root", "/"))
    iface = one(flags, "iface") or default_iface()
    data = link(iface)
    if data is None:
        raise Exit(f"failed to find interface: {iface}")
    iface_ip = iface_ipv4(data)
    public_ip = one(flags, "public-ip") or iface_ip
    log("I", "main.go", f"Using interface with name {iface} and address {iface_ip}")
    log("I", "main.go", f"Using {public_ip} as external address")
    store = Store(flags, v2=False)
    while True:
        try:
            found = store.get(prefix + "/config")
        except OSError as exc:
            found = None
            log("E", "main.go", f"Couldn't fetch network config: {exc}")
        if found is not None:
            break
        log("E", "main.go", "Couldn't fetch network config: flannel config not found in etcd store. "
            "Did you create your config using etcdv3 API?")
        if STOP.wait(1):
            return
    cfg = json.loads(found)
    network = ipaddress.IPv4Network(cfg["Network"])
    subnet_len = int(cfg.get("SubnetLen") or 24)
    backend_cfg = cfg.get("Backend") or {"Type": "udp"}
    kind = str(backend_cfg.get("Type", "")).lower()
    lowered = {str(k).lower(): v for k, v in backend_cfg.items()}
    if kind == "vxlan":
        vni = int(lowered.get("vni") or 1)
        port = int(lowered.get("port") or 8472)
        mtu = int(lowered.get("mtu") or data["mtu"]) - VXLAN_OVERHEAD
        log("I", "vxlan.go", f"VXLAN config: VNI={vni} Port={lowered.get('port') or 0} GBP=false Learning=false "
            "DirectRouting=false")
        dev = f"flannel.{vni}"
        mac = ensure_vxlan(dev, vni, port, public_ip, iface, mtu)
        backend: Vxlan | HostGw = Vxlan(dev)
        attrs = {"PublicIP": public_ip, "PublicIPv6": None, "BackendType": "vxlan",
                 "BackendData": {"VNI": vni, "VtepMAC": mac}}
    elif kind == "host-gw":
        mtu = int(data["mtu"])
        backend = HostGw(iface)
        attrs = {"PublicIP": public_ip, "PublicIPv6": None, "BackendType": "host-gw", "BackendData": None}
    else:
        raise Exit(f"this stand-in runs the vxlan and host-gw backends, not {kind or 'udp'!r}")
    mine = acquire(store, prefix, public_ip, network, subnet_len, json.dumps(attrs, separators=(",", ":")))
    lease = ipaddress.IPv4Network(mine.replace("-", "/"))
    if kind == "vxlan":
        dev = f"flannel.{attrs['BackendData']['VNI']}"
        for addr in link(dev).get("addr_info", []):  # EnsureV4AddressOnLink
            if addr.get("family") == "inet" and ipaddress.IPv4Address(addr["local"]) in network \
                    and addr["local"] != str(lease.network_address):
                sh("ip", "addr", "del", f"{addr['local']}/{addr['prefixlen']}", "dev", dev)
        sh("ip", "addr", "replace", f"{lease.network_address}/32", "dev", dev)
        sh("ip", "link", "set", dev, "up")
    subnet_file = root / one(flags, "subnet-file", "/run/flannel/subnet.env").lstrip("/")
    write_subnet_file(subnet_file, network, lease, mtu, one(flags, "ip-masq") == "true")
    log("I", "main.go", f"Wrote subnet file to {subnet_file}")
    log("I", "main.go", "Running backend.")
    watch(store, prefix + "/subnets/", mine, backend)


def watch(store: Store, subnets: str, mine: str, backend: Vxlan | HostGw) -> None:
    """flannel's WatchLeases over a polled range: only what changed in etcd becomes an event."""
    known: dict[str, str] = {}
    revision = -1
    log("I", "vxlan_network.go" if isinstance(backend, Vxlan) else "route_network.go", "watching for new subnet leases")
    while not STOP.is_set():
        try:
            now, leases = store.leases(subnets)
            if now != revision:
                leases.pop(mine, None)
                gone = {k: json.loads(v) for k, v in known.items() if k not in leases}
                new = {k: json.loads(v) for k, v in leases.items() if known.get(k) != v}
                if gone:
                    backend.removed(gone)
                if new:
                    backend.added(new)
                known, revision = leases, now
            backend.tick()
        except Exception as exc:  # a daemon: etcd or a command failing once must not end it (tried again)
            log("E", "watch.go", f"Watch subnets: {type(exc).__name__}: {exc}")
            STOP.wait(1)
            continue
        STOP.wait(POLL_S)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    try:
        run(argv)
    except Exit as exc:
        log("E", "main.go", str(exc))
        return 1
    log("I", "main.go", "Exiting cleanly...")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
