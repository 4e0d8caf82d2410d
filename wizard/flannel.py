"""flannel's own rules: network config, subnet ranges, MTU, lease keys, subnet.env and mk-docker-opts.sh output.

Error texts and their order are flannel's (pkg/subnet/config.go, pkg/ip, the backends) so operators can
search for them; what the wizard finds beyond flannel's checks is marked as its own (ConfigProblem.ours).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wizard.errors import WizardError

# answers key -> flannel JSON key, per backend; the order is the order written to etcd.
BACKEND_OPTIONS: dict[str, dict[str, str]] = {
    "vxlan": {
        "vni": "VNI",
        "port": "Port",
        "gbp": "GBP",
        "direct_routing": "DirectRouting",
        "learning": "Learning",
        "mtu": "MTU",
    },
    "host-gw": {},
    "udp": {"port": "Port"},
    "ipip": {"direct_routing": "DirectRouting"},
    "wireguard": {
        "psk": "PSK",
        "listen_port": "ListenPort",
        "listen_port_v6": "ListenPortV6",
        "mtu": "MTU",
        "persistent_keepalive_interval": "PersistentKeepaliveInterval",
        "mode": "Mode",
    },
    "ipsec": {"psk": "PSK", "udp_encap": "UDPEncap", "esp_proposal": "ESPProposal"},
}

# pkg/backend/ipsec/ipsec.go: the proposal charon gets when the config names none
IPSEC_ESP_PROPOSAL = "aes128gcm16-sha256-prfsha256-ecp256"
# pkg/backend/ipsec/ipsec.go minPasswordLength, and the error RegisterNetwork returns below it
IPSEC_PSK_MIN = 96
IPSEC_PSK_SHORT = "config error, password is too short"

# flannel's defaults, so a config that spells a default out still compares equal to one that doesn't.
BACKEND_DEFAULTS: dict[str, dict[str, Any]] = {
    "vxlan": {"VNI": 1, "Port": 0, "GBP": False, "DirectRouting": False, "Learning": False},
    "udp": {"Port": 8285},
    "ipip": {"DirectRouting": False},
    "wireguard": {"ListenPort": 51820, "ListenPortV6": 51821, "Mode": "separate"},
    "ipsec": {"UDPEncap": False, "ESPProposal": IPSEC_ESP_PROPOSAL},
    "host-gw": {},
}

# Bytes each backend's encapsulation takes (the backends' encapOverhead / overhead constants).
MTU_OVERHEAD = {"vxlan": 50, "udp": 28, "ipip": 20, "wireguard": 80, "ipsec": 77, "host-gw": 0}
IPSEC_UDP_ENCAP_OVERHEAD = 8  # ipsec_network.go udpEncapOverhead: the UDP header UDPEncap adds

# Backends whose code has an IPv6 path (vxlan: flannel-v6.<VNI>, wireguard: flannel-wg-v6 or one device,
# host-gw: v6 routes). udp, ipip and ipsec never look at EnableIPv6 or at a lease's IPv6 subnet.
IPV6_BACKENDS = ("vxlan", "wireguard", "host-gw")

# flanneld's boolean flags (main.go): alone on a command line they never take the next word
FLANNELD_BOOLEANS = frozenset({"ip-masq", "kube-subnet-mgr", "version", "iptables-forward-rules", "ip-blackhole-route",
                               "ip-masq-fully-random-disable", "set-node-network-unavailable"})

# flannel's own keys in PREFIX/config; Go's encoding/json matches them case-insensitively.
CONFIG_KEYS = ("EnableIPv4", "EnableIPv6", "EnableNFTables", "Network", "IPv6Network", "SubnetMin", "SubnetMax",
               "IPv6SubnetMin", "IPv6SubnetMax", "SubnetLen", "IPv6SubnetLen", "Backend")
_CANONICAL = {k.lower(): k for k in CONFIG_KEYS}

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


class ConfigProblem(Exception):
    """A config flannel refuses (`ours` False: the text is flannel's), or one it accepts but that cannot
    work (`ours` True: the wizard's own finding, which says why). `field` is the flannel key it is about."""

    def __init__(self, field: str, message: str, ours: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.ours = ours


@dataclass(frozen=True)
class SubnetRange:
    """The subnets flannel leases from one address family's network: SubnetMin … SubnetMax, SubnetLen each."""

    network: Net
    subnet_len: int
    first: Addr
    last: Addr

    @property
    def bits(self) -> int:
        return self.network.max_prefixlen

    @property
    def count(self) -> int:
        if self.first > self.last:
            return 0  # flannel accepts such a range and then has nothing to lease
        return (int(self.last) - int(self.first)) // self.subnet_size + 1

    @property
    def subnet_size(self) -> int:
        return 1 << (self.bits - self.subnet_len)

    @property
    def addresses_per_subnet(self) -> int:
        # flannel gives the first address to the bridge; the network and broadcast addresses go unused.
        return max(self.subnet_size - 3, 0)

    def subnet(self, at: int) -> Net:
        return ipaddress.ip_network((at, self.subnet_len))


@dataclass(frozen=True)
class NetworkConfig:
    """A config as flanneld holds it after ParseConfig and CheckNetworkConfig: defaults filled in."""

    enable_ipv4: bool
    enable_ipv6: bool
    v4: SubnetRange | None  # None when EnableIPv4 is false
    v6: SubnetRange | None  # None when EnableIPv6 is false
    backend_type: str
    backend: dict[str, Any]


def _go_type(value: Any) -> str:
    # how Go's encoding/json names a JSON value in "cannot unmarshal X into ..."
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {json.dumps(value)}"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def _raw(value: Any) -> str:
    # what an UnmarshalJSON of flannel's pkg/ip sees: the JSON text with its quotes trimmed
    return value if isinstance(value, str) else json.dumps(value)


def _ip(text: str) -> Addr | None:
    """Go's net.ParseIP: an IPv4 or IPv6 address, else None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _cidr(text: str) -> Net | None:
    """Go's net.ParseCIDR: ADDRESS/PREFIX, host bits cleared (flannel keeps the network, not the address)."""
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _decode(cfg: dict[str, Any]) -> dict[str, Any]:
    """ParseConfig: Go's json.Unmarshal into flannel's Config, keys case-insensitive, in the document's
    order. An address that does not parse stops it at once with pkg/ip's text; a value of the wrong JSON
    type is remembered and reported at the end, as encoding/json does."""
    out: dict[str, Any] = {"EnableIPv4": True, "EnableIPv6": False, "EnableNFTables": False}
    type_error: ConfigProblem | None = None
    for raw_key, value in cfg.items():
        key = _CANONICAL.get(str(raw_key).lower())
        if key is None:
            continue  # Go drops keys it has no field for
        if key == "Backend":
            out[key] = value
            continue
        wanted = "bool" if key.startswith("Enable") else "uint" if key.endswith("SubnetLen") else ""
        if wanted:
            if value is None:
                continue  # null leaves a bool or a number as it was
            ok = isinstance(value, bool) if wanted == "bool" else (
                isinstance(value, int) and not isinstance(value, bool) and value >= 0)
            if not ok:
                type_error = type_error or ConfigProblem(
                    key, f"json: cannot unmarshal {_go_type(value)} into Go struct field Config.{key} of type {wanted}")
                continue
            out[key] = value
        elif key in ("Network", "IPv6Network"):
            net = _cidr(_raw(value))
            if net is None:
                raise ConfigProblem(key, f"invalid CIDR address: {_raw(value)}")
            if key == "Network" and net.version != 4:
                raise ConfigProblem(key, "invalid IPv4 CIDR format")
            out[key] = net
        elif key in ("SubnetMin", "SubnetMax"):
            addr = _ip(_raw(value))
            if addr is None:
                raise ConfigProblem(key, "invalid IP address format")
            if addr.version != 4:
                raise ConfigProblem(key, "invalid IPv4 address format")
            out[key] = addr
        else:  # IPv6SubnetMin/Max: pointers, so null leaves them unset; an IPv4 address is read as ::ffff:a.b.c.d
            if value is None:
                out.pop(key, None)
                continue
            addr = _ip(_raw(value))
            if addr is None:
                raise ConfigProblem(key, "invalid IP address format")
            out[key] = ipaddress.IPv6Address(f"::ffff:{addr}") if addr.version == 4 else addr
    if type_error:
        raise type_error
    backend = out.get("Backend")
    if "Backend" not in out:
        out["BackendType"] = "udp"  # parseBackendType: no Backend at all means udp
    elif backend is None:
        out["BackendType"] = ""  # "Backend": null is the text null, whose Type is empty
    elif not isinstance(backend, dict):
        raise ConfigProblem("Backend", "error decoding Backend property of config: json: cannot unmarshal "
                                       f"{_go_type(backend)} into Go value of type struct {{ Type string }}")
    else:
        kind = next((v for k, v in backend.items() if str(k).lower() == "type"), "")
        if not isinstance(kind, str):
            raise ConfigProblem("Backend", "error decoding Backend property of config: json: cannot unmarshal "
                                           f"{_go_type(kind)} into Go struct field .Type of type string")
        out["BackendType"] = kind
    return out


def _family(d: dict[str, Any], v6: bool) -> SubnetRange:
    """One family's half of CheckNetworkConfig, check for check and text for text."""
    p = "IPv6" if v6 else ""
    bits = 128 if v6 else 32
    net: Net | None = d.get(f"{p}Network")
    if net is None or (int(net.network_address) == 0 and net.prefixlen == 0):  # IP4Net/IP6Net.Empty()
        raise ConfigProblem(f"{p}Network", f"please define a correct {p}Network parameter in the flannel config")
    prefix = net.prefixlen
    if v6 and net.version == 4:
        # Go's ParseCIDR took an IPv4 CIDR: flannel goes on with a 4-byte network in a 128-bit type
        net = ipaddress.IPv6Network((int(ipaddress.IPv6Address(f"::ffff:{net.network_address}")), prefix),
                                    strict=False)
    subnet_len = int(d.get(f"{p}SubnetLen") or 0)
    if subnet_len > 0:
        if subnet_len > bits - 2:
            raise ConfigProblem(f"{p}SubnetLen", f"SubnetLen must be less than /{bits - 1}")
        if subnet_len < prefix + 2:
            raise ConfigProblem(f"{p}SubnetLen", "network must be able to accommodate at least four subnets")
    elif prefix > bits - 4:
        name = "IPv6Network" if v6 else "network"
        raise ConfigProblem(f"{p}Network", f"{name} is too small. Minimum useful network prefix is /{bits - 4}")
    elif prefix <= (62 if v6 else 22):
        subnet_len = 64 if v6 else 24
    else:
        subnet_len = prefix + 2
    size = 1 << (bits - subnet_len)
    top = (1 << bits) - 1
    base = int(net.network_address)
    mask = top ^ ((1 << (bits - prefix)) - 1)

    def contains(addr: int) -> bool:
        return addr & mask == base & mask

    def bound(key: str, default: int) -> int:
        value = d.get(key)
        if value is None or int(value) == 0:  # flannel treats 0.0.0.0 (and ::) as unset
            return default
        if not contains(int(value)):
            raise ConfigProblem(key, f"{key} is not in the range of the {p}Network")
        return int(value)

    first = bound(f"{p}SubnetMin", base + size)
    last = bound(f"{p}SubnetMax", (base + (1 << (bits - prefix)) - size) & top)
    make = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
    sub_mask = top ^ (size - 1)
    for key, value in ((f"{p}SubnetMin", first), (f"{p}SubnetMax", last)):
        if value & sub_mask != value:
            raise ConfigProblem(key, f"{key} is not on a SubnetLen boundary: {make(value)}")
    return SubnetRange(net, subnet_len, make(first), make(last))


def check_config(cfg: dict[str, Any]) -> NetworkConfig:
    """flanneld's reading of PREFIX/config up to the backend: ParseConfig, CheckNetworkConfig (IPv4 then
    IPv6) and main.go's address-family check, in that order. The first problem flanneld would log is
    raised, with flanneld's own words."""
    d = _decode(cfg)
    v4 = _family(d, v6=False) if d["EnableIPv4"] else None
    v6 = _family(d, v6=True) if d["EnableIPv6"] else None
    if v4 is None and v6 is None:
        raise ConfigProblem("EnableIPv4", "none defined stack")  # pkg/ipmatch GetIPFamily, flanneld exits
    backend = d.get("Backend") if isinstance(d.get("Backend"), dict) else {}
    return NetworkConfig(d["EnableIPv4"], d["EnableIPv6"], v4, v6, str(d["BackendType"]), dict(backend))


def subnet_range(cfg: dict[str, Any]) -> SubnetRange:
    """The IPv4 range of a config flannel accepts; ConfigProblem with flannel's text otherwise."""
    checked = check_config(cfg)
    if checked.v4 is None:
        raise ConfigProblem("EnableIPv4", "EnableIPv4 is false: this config has no IPv4 subnets", ours=True)
    return checked.v4


def own_findings(cfg: dict[str, Any], checked: NetworkConfig) -> list[ConfigProblem]:
    """What flannel accepts in a config but that cannot give a working node. Each is the wizard's own
    finding (flannel has no such check) and says what flannel would do instead."""
    out: list[ConfigProblem] = []
    for p, rng in (("", checked.v4), ("IPv6", checked.v6)):
        if rng is not None and rng.first > rng.last:
            # CheckNetworkConfig never compares the two; allocateSubnet (etcd/local_manager.go) then walks
            # an empty range and every flanneld fails at its first lease
            out.append(ConfigProblem(
                f"{p}SubnetMin", f"{p}SubnetMin {rng.first} is after {p}SubnetMax {rng.last}: flannel accepts "
                "this, and then every flanneld fails with \"failed to acquire lease: out of subnets\"", ours=True))
    if checked.v6 is not None and any(str(k).lower() == "ipv6network" for k in cfg):
        given = next(v for k, v in cfg.items() if str(k).lower() == "ipv6network")
        if isinstance(given, str) and ":" not in given.split("/")[0]:
            out.append(ConfigProblem("IPv6Network", f"IPv6Network {given} is an IPv4 CIDR: flannel's parser takes "
                                     "it and goes on with a nonsense IPv6 range", ours=True))
    if checked.v4 is None and checked.v6 is not None:
        # local_manager.go leases an IPv4 subnet to every node (EnableIPv4: true is hard-wired into each
        # lease), and flannel documents IPv6-only only for the kube subnet manager's net-conf.json
        out.append(ConfigProblem("EnableIPv4", "EnableIPv4 false (IPv6-only) does not work with flannel's etcd "
                                 "subnet manager, which leases an IPv4 subnet to every node; flannel documents "
                                 "IPv6-only for --kube-subnet-mgr only", ours=True))
    kind = checked.backend_type.lower()
    if checked.v6 is not None and kind in MTU_OVERHEAD and kind not in IPV6_BACKENDS:
        out.append(ConfigProblem("EnableIPv6", f"the {kind} backend has no IPv6 path in flannel: nodes would lease "
                                 "IPv6 subnets that no tunnel or route connects", ours=True))
    return out


def effective(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config as flanneld will understand it, defaults filled in, for comparing two configs."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        out[_CANONICAL.get(str(key).lower(), key)] = value
    try:
        checked = check_config(cfg)
    except ConfigProblem:
        checked = None
    if checked is not None:
        for p, rng in (("", checked.v4), ("IPv6", checked.v6)):
            if rng is not None:
                out.update({f"{p}Network": str(rng.network), f"{p}SubnetLen": rng.subnet_len,
                            f"{p}SubnetMin": str(rng.first), f"{p}SubnetMax": str(rng.last)})
    out.setdefault("EnableIPv4", True)
    out.setdefault("EnableIPv6", False)
    out.setdefault("EnableNFTables", False)
    raw = out.get("Backend") if "Backend" in out else {"Type": "udp"}  # flannel's code treats no Backend as udp
    raw = raw if isinstance(raw, dict) else {}
    # backend options are read case-insensitively too: "vni" is VNI
    names = {n.lower(): n for n in ("Type", *(n for opts in BACKEND_OPTIONS.values() for n in opts.values()))}
    backend = {names.get(str(k).lower(), k): v for k, v in raw.items()}
    kind = str(backend.get("Type", "")).lower()
    backend["Type"] = kind
    for key, value in BACKEND_DEFAULTS.get(kind, {}).items():
        backend.setdefault(key, value)
    out["Backend"] = backend
    return out


def same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a == b or effective(a) == effective(b)


def to_json(cfg: dict[str, Any]) -> str:
    return json.dumps(cfg, indent=None, separators=(", ", ": "))


def redacted(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config with secrets (the wireguard and ipsec PSK, however its key is cased) masked, for output."""
    backend = cfg.get("Backend")
    if isinstance(backend, dict) and any(str(k).lower() == "psk" for k in backend):
        return {**cfg, "Backend": {k: "********" if str(k).lower() == "psk" else v for k, v in backend.items()}}
    return cfg


def _option(backend: dict[str, Any], name: str) -> Any:
    # Go's json reads backend options case-insensitively too
    return next((v for k, v in backend.items() if str(k).lower() == name.lower()), None)


def backend_mtu(backend: dict[str, Any], iface_mtu: int) -> int:
    """FLANNEL_MTU for a backend on an interface of `iface_mtu`, as each backend's MTU() computes it.

    vxlan and wireguard read Backend.MTU as the *underlay* MTU (default: the interface's) and take their
    overhead off it for the device and for FLANNEL_MTU (vxlan/device.go `MTU - 50`, vxlan_network.go
    `mtu - encapOverhead`; wireguard/device.go and wireguard_network.go `- overhead`). ipsec has no MTU
    option: the interface's, less 77, less 8 more with UDPEncap (ipsec_network.go)."""
    kind = str(_option(backend, "Type") or "udp").lower()
    base = iface_mtu
    if kind in ("vxlan", "wireguard"):
        base = int(_option(backend, "MTU") or iface_mtu)
    mtu = base - MTU_OVERHEAD.get(kind, 0)
    if kind == "ipsec" and _option(backend, "UDPEncap") is True:
        mtu -= IPSEC_UDP_ENCAP_OVERHEAD
    return mtu


@dataclass(frozen=True)
class UdpPort:
    port: int
    what: str  # "vxlan", "wireguard flannel-wg-v6", "ipsec IKE (charon)"
    devices: tuple[str, ...] = ()  # flannel's own devices that hold the port once flanneld runs
    flannels: bool = True  # False: a daemon flanneld starts (charon) holds it, not flannel's own code


def udp_ports(backend: dict[str, Any], enable_ipv4: bool = True, enable_ipv6: bool = False) -> list[UdpPort]:
    """Every UDP port this node's flanneld (or what it starts) listens on for the backend."""
    kind = str(_option(backend, "Type") or "udp").lower()
    if kind == "vxlan":
        vni = int(_option(backend, "VNI") or 1)
        port = int(_option(backend, "Port") or 8472)  # 0: the kernel's default VXLAN port
        devices = (f"flannel.{vni}",) * enable_ipv4 + (f"flannel-v6.{vni}",) * enable_ipv6
        return [UdpPort(port, "vxlan", devices)]
    if kind == "udp":
        return [UdpPort(int(_option(backend, "Port") or 8285), "udp", ("flannel0",))]
    if kind == "wireguard":
        v4 = int(_option(backend, "ListenPort") or 51820)
        v6 = int(_option(backend, "ListenPortV6") or 51821)
        if str(_option(backend, "Mode") or "separate") != "separate":
            return [UdpPort(v4, "wireguard", ("flannel-wg",))]  # one device for both families
        out = [UdpPort(v4, "wireguard", ("flannel-wg",))] if enable_ipv4 else []
        if enable_ipv6:
            out.append(UdpPort(v6, "wireguard ListenPortV6", ("flannel-wg-v6",)))
        return out
    if kind == "ipsec":
        # flannel's code opens no port: its charon (strongSwan) does, on strongSwan's defaults, UDP 500
        # for IKE and 4500 for NAT traversal and UDPEncap (flannel's Documentation/backends.md says to open both)
        return [UdpPort(500, "ipsec IKE (charon)", flannels=False),
                UdpPort(4500, "ipsec NAT-T (charon)", flannels=False)]
    return []


# ---------------------------------------------------------------- leases

# pkg/subnet/subnet.go subnetRegex, dots and all: IPv4 part, then an optional `&IPv6-PREFIX`
_LEASE_KEY = re.compile(r"(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$")


@dataclass(frozen=True)
class Lease:
    """A node's lease as its etcd key names it. `subnet` is None when flannel wrote the empty IPv4 part
    (0.0.0.0-0), `ipv6_subnet` None in a single-stack lease."""

    subnet: ipaddress.IPv4Network | None
    ipv6_subnet: ipaddress.IPv6Network | None = None

    @property
    def key(self) -> str:
        return lease_key(self.subnet, self.ipv6_subnet)

    def __str__(self) -> str:
        parts = [str(n) for n in (self.subnet, self.ipv6_subnet) if n is not None]
        return " + ".join(parts) or "0.0.0.0/0"


def parse_lease_key(key: str) -> Lease | None:
    """A lease from its etcd key (or the key's last part), as flannel's ParseSubnetKey reads it:
    `172.30.5.0-24`, `172.30.5.0-24&fc00:0:0:5::-64`. None for anything else."""
    found = _LEASE_KEY.search(key)
    if not found:
        return None
    v4, len4, v6, len6 = found.groups()
    try:
        # ParseUint(.., 5) and (.., 7): prefixes up to 31 and 127 only
        if int(len4) > 31 or (v6 is not None and int(len6) > 127):
            return None
        net4 = ipaddress.IPv4Network(f"{v4}/{len4}", strict=False)
        net6 = ipaddress.IPv6Network(f"{v6}/{len6}", strict=False) if v6 is not None else None
    except ValueError:
        return None
    empty4 = int(net4.network_address) == 0 and net4.prefixlen == 0
    return Lease(None if empty4 else net4, net6)


def lease_key(subnet: ipaddress.IPv4Network | str | None, ipv6_subnet: ipaddress.IPv6Network | str | None = None) -> str:
    """flannel's MakeSubnetKey: `172.30.46.0-24`, with `&fc00:0:0:5::-64` when the lease has an IPv6 subnet."""
    v4 = ipaddress.IPv4Network(subnet) if subnet is not None else ipaddress.IPv4Network("0.0.0.0/0")
    key = f"{v4.network_address}-{v4.prefixlen}"
    if ipv6_subnet is not None:
        v6 = ipaddress.IPv6Network(ipv6_subnet)
        key += f"&{v6.network_address}-{v6.prefixlen}"
    return key


def lease_subnet(key: str) -> str:
    """The subnets a lease key names, `172.30.46.0/24` or `172.30.5.0/24 + fc00:0:0:5::/64` (the key's
    last part when it is not a lease key)."""
    lease = parse_lease_key(key)
    return key.rsplit("/", 1)[-1] if lease is None else str(lease)


# one IPv4 octet as ipaddress accepts it: 0-255, ASCII digits, no leading zero
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# the last part of the key flanneld writes on an IPv4 network, `172.30.5.0-24`: prefix 0..31, no leading zero
_PLAIN_KEY = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET})-([12]?\d|3[01])", re.ASCII)

# (network address as an int, prefix length, as shown: `172.30.5.0/24`) of one family of a lease
LeaseNet = tuple[int, int, str]


def lease_nets(key: str) -> tuple[LeaseNet | None, LeaseNet | None] | None:
    """The IPv4 and IPv6 subnets of a lease key, each (address, prefix length, shown) or None; None when
    the key is not a lease. The same answer as `parse_lease_key`, without its regex search and two
    ipaddress objects for the key flanneld writes on an IPv4 network: 16 000 of them are read per run.

    When the key's last part is `a.b.c.d-n` in that plain form, the search (`_LEASE_KEY`, unanchored at
    the start, as flannel's) can only match that part: a match starting further left would need the `/`
    to be one of the pattern's two any-character dots, leaving one or no dot after it, not three."""
    plain = _PLAIN_KEY.fullmatch(key, key.rfind("/") + 1)
    if plain is not None:
        v4, len4 = plain.groups()
        address, prefix = int.from_bytes(socket.inet_aton(v4), "big"), int(len4)  # canonical: no octal surprise
        net = address >> (32 - prefix) << (32 - prefix) if prefix else 0
        if net == 0 and prefix == 0:
            return None, None  # flannel's empty IPv4 part, 0.0.0.0-0
        shown = f"{v4}/{len4}" if net == address else f"{socket.inet_ntoa(net.to_bytes(4, 'big'))}/{prefix}"
        return (net, prefix, shown), None
    lease = parse_lease_key(key)  # dual stack, or a form only ipaddress decides on
    if lease is None:
        return None
    return tuple(  # type: ignore[return-value]
        None if n is None else (int(n.network_address), n.prefixlen, str(n)) for n in (lease.subnet, lease.ipv6_subnet))


def shown_lease(nets: tuple[LeaseNet | None, LeaseNet | None]) -> str:
    """`172.30.5.0/24`, `172.30.5.0/24 + fc00:0:0:5::/64`, or `0.0.0.0/0`: as Lease.__str__ says it."""
    return " + ".join(n[2] for n in nets if n is not None) or "0.0.0.0/0"


_GO_LEASE = '{"PublicIP":"'  # how flanneld's json.Marshal of LeaseAttrs starts
_GO_V6 = ',"PublicIPv6":'


def lease_addresses(value: str) -> tuple[str | None, str | None]:
    """(PublicIP, PublicIPv6) of a lease's value, None where absent, null or not a string.

    flanneld writes the value with Go's json.Marshal, PublicIP first, then PublicIPv6, then the rest
    (`{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":...}`); both are read from that text
    directly, where each key occurs once and neither string has an escape. Anything else goes through
    the JSON parser (a value that is not JSON has neither address)."""
    if value.startswith(_GO_LEASE) and value.count('"PublicIP') == 2:  # PublicIP and PublicIPv6 once each
        end = value.find('"', 13)
        ip = value[13:end]
        if end > 0 and "\\" not in ip and value.startswith(_GO_V6, end + 1):
            rest = end + 1 + len(_GO_V6)
            if value.startswith("null", rest):
                return ip, None
            if value.startswith('"', rest):
                stop = value.find('"', rest + 1)
                ip6 = value[rest + 1:stop]
                if stop > 0 and "\\" not in ip6:
                    return ip, ip6
    try:
        attrs = json.loads(value)
    except ValueError:
        return None, None
    if not isinstance(attrs, dict):
        return None, None
    ip, ip6 = attrs.get("PublicIP"), attrs.get("PublicIPv6")
    return (ip if isinstance(ip, str) else None), (ip6 if isinstance(ip6, str) else None)


class LeaseIndex:
    """Which node's lease holds an address, for many addresses against many leases: built once from
    the (key, value) pairs under PREFIX/subnets/, then a dictionary look-up per prefix length."""

    def __init__(self, leases: Iterable[tuple[str, str]]) -> None:
        # (version, prefix length) -> network address -> label
        self._tables: dict[tuple[int, int], dict[int, str]] = {}
        tables = self._tables
        for key, value in leases:
            nets = lease_nets(key)
            if nets is None:
                continue
            v4, v6 = nets
            public, public6 = lease_addresses(value) if v4 or v6 else (None, None)
            if v4 is not None:
                table = tables.get((4, v4[1]))
                if table is None:
                    table = tables[(4, v4[1])] = {}
                if v4[0] not in table:  # the first lease of a subnet names it, as before
                    table[v4[0]] = f"node subnet {v4[2]} ({public or '?'})"
            if v6 is not None:
                table = tables.setdefault((6, v6[1]), {})
                table.setdefault(v6[0], f"node subnet {v6[2]} ({public6 or public or '?'})")

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def holding(self, ip: str) -> str | None:
        """'node subnet 172.30.38.0/24 (192.168.56.11)' for the lease that holds `ip`, else None."""
        address = _ip(ip.strip("[]"))
        if address is None:
            return None
        bits = address.max_prefixlen
        for (version, prefix), table in self._tables.items():
            if version == address.version:
                found = table.get(int(address) >> (bits - prefix) << (bits - prefix))
                if found:
                    return found
        return None


def first_free_lease(checked: NetworkConfig, taken: Iterable[str]) -> Lease | None:
    """A free lease for a new node, as allocateSubnet picks it (etcd/local_manager.go), except that it
    takes the first free subnet of each family instead of a random one of the first 100 free: the demo's
    node must get the same subnet on every run."""
    leases = [lease for lease in (parse_lease_key(k) for k in taken) if lease is not None]

    def free(rng: SubnetRange | None, used: list[Net]) -> Net | None:
        if rng is None:
            return None
        at = int(rng.first)
        while at <= int(rng.last):
            candidate = rng.subnet(at)
            clash = next((u for u in used if u.overlaps(candidate)), None)
            if clash is None:
                return candidate
            # step past the lease in the way, not one subnet at a time: ranges of 2^16 IPv6 subnets
            at = max(at + rng.subnet_size, int(clash.broadcast_address) + 1)
        return None

    sn4 = free(checked.v4, [lease.subnet for lease in leases if lease.subnet is not None])
    sn6 = free(checked.v6, [lease.ipv6_subnet for lease in leases if lease.ipv6_subnet is not None])
    if (checked.v4 is not None and sn4 is None) or (checked.v6 is not None and sn6 is None):
        return None  # flanneld: "failed to acquire lease: out of subnets"
    return Lease(sn4 if isinstance(sn4, ipaddress.IPv4Network) else None,
                 sn6 if isinstance(sn6, ipaddress.IPv6Network) else None)


def subnet_env(checked: NetworkConfig, lease: Lease, mtu: int, ip_masq: bool) -> str:
    """subnet.env as flannel's WriteSubnetFile writes it: FLANNEL_NETWORK and FLANNEL_SUBNET (the lease's
    first address) when IPv4 is on, FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET when IPv6 is on, then
    FLANNEL_MTU and FLANNEL_IPMASQ."""
    lines = []
    if checked.v4 is not None and lease.subnet is not None:
        lines += [f"FLANNEL_NETWORK={checked.v4.network}",
                  f"FLANNEL_SUBNET={lease.subnet.network_address + 1}/{lease.subnet.prefixlen}"]
    if checked.v6 is not None and lease.ipv6_subnet is not None:
        lines += [f"FLANNEL_IPV6_NETWORK={checked.v6.network}",
                  f"FLANNEL_IPV6_SUBNET={lease.ipv6_subnet.network_address + 1}/{lease.ipv6_subnet.prefixlen}"]
    lines += [f"FLANNEL_MTU={mtu}", f"FLANNEL_IPMASQ={'true' if ip_masq else 'false'}"]
    return "".join(line + "\n" for line in lines)


def env_lease(env: dict[str, str]) -> Lease | None:
    """The lease a subnet.env names (FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET), or None when it names none
    or a value is not a subnet."""
    try:
        v4 = ipaddress.IPv4Interface(env["FLANNEL_SUBNET"]).network if env.get("FLANNEL_SUBNET") else None
        v6 = ipaddress.IPv6Interface(env["FLANNEL_IPV6_SUBNET"]).network if env.get("FLANNEL_IPV6_SUBNET") else None
    except ValueError:
        return None
    return None if v4 is None and v6 is None else Lease(v4, v6)


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE lines (as subnet.env and sysconfig files hold them); quotes removed, comments skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def mk_docker_opts(
    subnet_env: dict[str, str],
    individual: bool = True,
    combined: bool = True,
    combined_key: str = "DOCKER_OPTS",
    ip_masq: bool = True,
    inherited: str = "",
) -> str:
    """What flannel's dist/mk-docker-opts.sh writes, byte for byte.

    `ip_masq=False` is its `-m`; `inherited` is the value of `$combined_key` in its environment.
    Neither individual nor combined means both, as in the script.
    """
    if not individual and not combined:
        individual = combined = True
    opts: dict[str, str] = {}
    if subnet_env.get("FLANNEL_SUBNET"):
        opts["DOCKER_OPT_BIP"] = f"--bip={subnet_env['FLANNEL_SUBNET']}"
    if subnet_env.get("FLANNEL_MTU"):
        opts["DOCKER_OPT_MTU"] = f"--mtu={subnet_env['FLANNEL_MTU']}"
    masq = subnet_env.get("FLANNEL_IPMASQ", "")
    if masq and ip_masq:
        if masq == "true":
            opts["DOCKER_OPT_IPMASQ"] = "--ip-masq=false"
        elif masq == "false":
            opts["DOCKER_OPT_IPMASQ"] = "--ip-masq=true"
        else:
            raise WizardError(
                f"Invalid value of FLANNEL_IPMASQ: {masq}",
                "flanneld writes true or false there; check the subnet file",
            )
    value = f"{inherited} " if inherited else ""
    lines = []
    for name in sorted(opts):  # the script walks `set`, which lists variables sorted
        if individual:
            lines.append(f'{name}="{opts[name]}"\n')
        value += f" {opts[name]}"
    if combined:
        lines.append(f'{combined_key}="{value}"\n')
    return "".join(lines)


# ---------------------------------------------------------------- what each flanneld release has

# the first release with each backend (the backend's directory in flannel-io/flannel's tags: backend/hostgw
# first in v0.2.1, extension v0.8.0, ipip v0.10.0, ipsec v0.11.0, tencent-vpc v0.14.0, wireguard v0.16.0)
BACKEND_SINCE: dict[str, tuple[int, int, int]] = {
    "udp": (0, 1, 0), "alloc": (0, 1, 0), "vxlan": (0, 2, 0), "host-gw": (0, 2, 1), "extension": (0, 8, 0),
    "ipip": (0, 10, 0), "ipsec": (0, 11, 0), "tencent-vpc": (0, 14, 0), "wireguard": (0, 16, 0),
}
IPV6_SINCE = (0, 15, 0)  # EnableIPv6 / IPv6Network in subnet/config.go: dual-stack came in v0.15.0


def _shown(version: tuple[int, int, int]) -> str:
    return "v" + ".".join(map(str, version))


def not_in_release(config: dict[str, Any], version: tuple[int, int, int]) -> list[tuple[str, str]]:
    """(what, fix) for each part of `config` the flanneld of `version` does not have: a backend it does not
    know fails with flannel's own `unknown backend type: NAME`; EnableIPv6 is a key it silently ignores."""
    out: list[tuple[str, str]] = []
    running = _shown(version)
    kind = str((config.get("Backend") or {}).get("Type", ""))
    since = BACKEND_SINCE.get(kind)
    if since is not None and version < since:
        have = ", ".join(k for k, v in BACKEND_SINCE.items() if v <= version and k not in ("alloc", "extension"))
        out.append((f"unknown backend type: {kind} — that is what flanneld {running} would say: the {kind} backend "
                    f"came in {_shown(since)}", f"choose a backend this flanneld has ({have}), or install "
                    f"flanneld {_shown(since)} or later"))
    if config.get("EnableIPv6") and version < IPV6_SINCE:
        out.append((f"flanneld {running} ignores EnableIPv6 (dual-stack came in {_shown(IPV6_SINCE)}): this node "
                    "would get no IPv6 subnet", f"set network.enable_ipv6: false, or install flanneld "
                    f"{_shown(IPV6_SINCE)} or later"))
    return out
