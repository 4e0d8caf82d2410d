"""flannel's own rules: network config, subnet ranges, MTU, subnet.env and mk-docker-opts.sh output.

Error texts are flannel's (pkg/subnet/config.go) so operators can search for them.
"""

from __future__ import annotations

import ipaddress
import json
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
}

# flannel's defaults, so a config that spells a default out still compares equal to one that doesn't.
BACKEND_DEFAULTS: dict[str, dict[str, Any]] = {
    "vxlan": {"VNI": 1, "Port": 0, "GBP": False, "DirectRouting": False, "Learning": False},
    "udp": {"Port": 8285},
    "ipip": {"DirectRouting": False},
    "wireguard": {"ListenPort": 51820, "ListenPortV6": 51821, "Mode": "separate"},
    "host-gw": {},
}

# Bytes each backend's encapsulation takes from the interface MTU.
MTU_OVERHEAD = {"vxlan": 50, "udp": 28, "ipip": 20, "wireguard": 80, "host-gw": 0}

# The UDP port a backend listens on, for the preflight port check.
UDP_PORTS = {"vxlan": ("Port", 8472), "udp": ("Port", 8285), "wireguard": ("ListenPort", 51820)}


class ConfigProblem(Exception):
    """A rule of flannel's that the config breaks; `field` is the flannel key it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SubnetRange:
    network: ipaddress.IPv4Network
    subnet_len: int
    first: ipaddress.IPv4Address
    last: ipaddress.IPv4Address

    @property
    def count(self) -> int:
        return (int(self.last) - int(self.first)) // self.subnet_size + 1

    @property
    def subnet_size(self) -> int:
        return 1 << (32 - self.subnet_len)

    @property
    def addresses_per_subnet(self) -> int:
        # flannel gives the first address to the bridge; the network and broadcast addresses go unused.
        return max(self.subnet_size - 3, 0)


def subnet_range(cfg: dict[str, Any]) -> SubnetRange:
    """Apply flannel's CheckNetworkConfig rules; raise ConfigProblem with flannel's own text."""
    raw = cfg.get("Network")
    if not raw:
        raise ConfigProblem("Network", "please define a correct Network parameter in the flannel config")
    network = ipaddress.IPv4Network(raw, strict=False)
    prefix = network.prefixlen
    subnet_len = int(cfg.get("SubnetLen") or 0)
    if subnet_len > 0:
        if subnet_len > 30:
            raise ConfigProblem("SubnetLen", "SubnetLen must be less than /31")
        if subnet_len < prefix + 2:
            raise ConfigProblem("SubnetLen", "network must be able to accommodate at least four subnets")
    elif prefix > 28:
        raise ConfigProblem("Network", "network is too small. Minimum useful network prefix is /28")
    elif prefix <= 22:
        subnet_len = 24
    else:
        subnet_len = prefix + 2
    size = 1 << (32 - subnet_len)
    mask = (0xFFFFFFFF << (32 - subnet_len)) & 0xFFFFFFFF

    def bound(key: str, default: int) -> ipaddress.IPv4Address:
        value = cfg.get(key)
        if not value:
            return ipaddress.IPv4Address(default)
        addr = ipaddress.IPv4Address(value)
        if addr not in network:
            raise ConfigProblem(key, f"{key} is not in the range of the Network")
        if int(addr) & mask != int(addr):
            raise ConfigProblem(key, f"{key} is not on a SubnetLen boundary: {addr}")
        return addr

    first = bound("SubnetMin", int(network.network_address) + size)
    last = bound("SubnetMax", int(network.broadcast_address) + 1 - size)
    if first > last:
        raise ConfigProblem("SubnetMin", f"SubnetMin {first} is after SubnetMax {last}")
    return SubnetRange(network, subnet_len, first, last)


def effective(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config as flanneld will understand it, defaults filled in, for comparing two configs."""
    out = dict(cfg)
    try:
        rng = subnet_range(cfg)
        out.update(SubnetLen=rng.subnet_len, SubnetMin=str(rng.first), SubnetMax=str(rng.last))
        out["Network"] = str(rng.network)
    except (ConfigProblem, ValueError):
        pass
    out.setdefault("EnableIPv4", True)
    backend = dict(cfg.get("Backend") or {"Type": "udp"})  # flannel's code treats no Backend as udp
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
    """The config with secrets (wireguard PSK) masked, for output."""
    backend = cfg.get("Backend")
    if isinstance(backend, dict) and "PSK" in backend:
        return {**cfg, "Backend": {**backend, "PSK": "********"}}
    return cfg


def backend_mtu(backend: dict[str, Any], iface_mtu: int) -> int:
    kind = str(backend.get("Type", "udp")).lower()
    if backend.get("MTU") and kind in ("vxlan", "wireguard"):
        return int(backend["MTU"])
    return iface_mtu - MTU_OVERHEAD.get(kind, 0)


def udp_port(backend: dict[str, Any]) -> int | None:
    kind = str(backend.get("Type", "udp")).lower()
    if kind not in UDP_PORTS:
        return None
    key, default = UDP_PORTS[kind]
    return int(backend.get(key) or default)


def lease_key(subnet: str) -> str:
    """`172.30.46.0/24` -> `172.30.46.0-24`, the name flanneld gives a lease under PREFIX/subnets/."""
    return subnet.replace("/", "-")


def lease_subnet(key: str) -> str:
    return key.rsplit("/", 1)[-1].replace("-", "/")


def lease_holding(ip: str, leases: list[tuple[str, str]]) -> str | None:
    """'node subnet 172.30.38.0/24 (192.168.56.11)' for the lease (key, value) that holds `ip`."""
    address = ipaddress.IPv4Address(ip)
    for key, value in leases:
        subnet = ipaddress.IPv4Network(lease_subnet(key))
        if address in subnet:
            try:
                public = json.loads(value).get("PublicIP", "?")
            except (ValueError, AttributeError):
                public = "?"
            return f"node subnet {subnet} ({public})"
    return None


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
