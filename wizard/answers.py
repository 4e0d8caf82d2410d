"""The answers: a typed model, loaded from YAML with every problem reported at once as FILE:LINE:COL.

Secrets are never values here, only references (`password_env`, `password_file`, `psk_env`, `psk_file`).
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from wizard import flannel, yamlpos
from wizard.errors import AnswersInvalidError, InputError

# the readers (and STDIN, Refused, source_name, which callers take from here) live in wizard/inputs.py,
# which imports no pydantic: explain-service reads a dump with them
from wizard.inputs import (  # noqa: F401
    STDIN,
    STDIN_NAME,
    Refused,
    read_input,
    read_regular,
    read_stdin,
    source_name,
)


class Section(BaseModel):
    # defer_build: schemas are built once, on first use, for the whole tree instead of per class
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)

    @field_validator("*", mode="after")
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        """No answer holds a control character (a NUL, a newline from a "\\n" escape, ...): every value
        ends up on a command line, in an option line or in a config file line."""
        texts = [value] if isinstance(value, str) else value if isinstance(value, list) else (
            [*value, *value.values()] if isinstance(value, dict) else [])
        for text in texts:
            control = _control(text) if isinstance(text, str) else None
            if control:
                raise _bad(f"{_show(text)} contains the control character {control} — an answer is one line of "
                           "text; remove it")
        return value


def _show(value: Any, limit: int = 60) -> str:
    """A value as it may appear inside a one-line message: quoted, escaped, and cut when long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 14]}…{text[-8:]} ({len(str(value))} chars)"


def _bad(message: str) -> PydanticCustomError:
    """A problem rendered as `KEY message` (the message names the value and says how to fix it)."""
    return PydanticCustomError("answer", "{message}", {"message": message})


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_SPACE = re.compile(r"\s")


def _control(value: str) -> str | None:
    found = _CONTROL.search(value)
    return None if found is None else yamlpos.describe_char(found.group())


def _node_path(example: str, words: bool = True, auto: bool = False) -> AfterValidator:
    """A path on the node, taken under --root: absolute, normalised, and never leaving the root.
    `words`: the path is also written into an option line (FLANNEL_OPTIONS, EnvironmentFile=) that is
    split at whitespace, so a space would smuggle in another option. `auto`: the word auto is allowed too
    (the step then takes the path from the node)."""

    def check(value: str) -> str:
        if auto and value == "auto":
            return value
        fix = f"give an absolute path such as {example}" + (", or auto" if auto else "")
        shown = _show(value)
        if not value:
            raise _bad(f"is empty — {fix}")
        if "\x00" in value:
            raise _bad(f"{shown} contains a NUL byte — {fix}")
        control = _control(value)
        if control:
            raise _bad(f"{shown} contains the control character {control} — {fix}")
        if words and _SPACE.search(value):
            raise _bad(f"{shown} contains whitespace, and the path is written into option lines that are split "
                       f"at spaces — use a path without spaces, such as {example}")
        if not value.startswith("/"):
            raise _bad(f"{shown} is not absolute: node paths are taken under --root — {fix}")
        parts = value.split("/")[1:]
        if ".." in parts:
            raise _bad(f"{shown} leaves the root: '..' is not allowed in a node path — {fix}")
        if "." in parts or "" in parts:
            normal = "/" + "/".join(p for p in parts if p not in ("", "."))
            if normal == "/":
                raise _bad(f"{shown} is a directory, not a file — {fix}")
            raise _bad(f"{shown} is not normalised — write it as {normal}")
        if len(value.encode()) > 4095 or any(len(p.encode()) > 255 for p in parts):
            raise _bad(f"{_show(value, 40)} is longer than Linux allows (255 bytes a name, 4095 a path) — {fix}")
        return value

    return AfterValidator(check)


# systemd's unit_name_is_valid (src/basic/unit-name.c): VALID_CHARS plus '@', at most 255 characters
# with the suffix, the prefix not empty and not starting with '.' or '@'.
_UNIT_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-_.\\@")
_UNIT_TYPES = ("socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope")


def _unit_name(example: str) -> AfterValidator:
    """A service name as systemctl takes it: `flanneld` or `flanneld.service`."""

    def check(value: str) -> str:
        fix = f"give the service's name, such as {example}"
        shown = _show(value)
        full = value if value.endswith(".service") else f"{value}.service"
        prefix = full[: -len(".service")]
        if not prefix:
            raise _bad(f"is empty — {fix}")
        if "/" in value:
            raise _bad(f"{shown} is not a unit name: '/' is not allowed — {fix}, not a path")
        suffix = value.rsplit(".", 1)[-1] if "." in value else ""
        if suffix in _UNIT_TYPES:
            raise _bad(f"{shown} is a .{suffix} unit, not a service — {fix}")
        wrong = sorted({c for c in prefix if c not in _UNIT_CHARS})
        if wrong:
            chars = ", ".join(_show(c) for c in wrong[:5])
            raise _bad(f"{shown} is not a systemd unit name: {chars} not allowed — use letters, digits and "
                       f"':', '-', '_', '.', '\\', '@', such as {example}")
        if len(full) > 255:
            raise _bad(f"{_show(value, 40)} is longer than systemd allows (255 characters with .service) — {fix}")
        if prefix[0] in ".@-":
            why = "systemctl would read it as an option" if prefix[0] == "-" else "systemd does not allow it"
            raise _bad(f"{shown} starts with '{prefix[0]}', and {why} — {fix}")
        if prefix.endswith("@"):
            raise _bad(f"{shown} is a template, which cannot be restarted — give an instance, such as {prefix}eth0")
        return value

    return AfterValidator(check)


def _k8s_name(kind: str, example: str) -> AfterValidator:
    """Kubernetes object names: `label` (RFC 1123, namespaces), `dns1035` (services), `subdomain`
    (RFC 1123, deployments) — the rules kubectl applies, checked before anything is created."""
    label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    rules = {
        "label": (label, 63, "lowercase letters, digits and '-', starting and ending with a letter or digit"),
        "dns1035": (r"[a-z]([-a-z0-9]*[a-z0-9])?", 63, "lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"),
        "subdomain": (rf"{label}(\.{label})*", 253, "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"),
    }
    pattern, most, words = rules[kind]

    def check(value: str) -> str:
        if len(value) > most or not re.fullmatch(pattern, value):
            raise _bad(f"{_show(value)} is not a Kubernetes name: at most {most} {words} — such as {example}")
        return value

    return AfterValidator(check)


def _iface(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    # the kernel's dev_valid_name: 1 to 15 bytes, not . or .., no '/', ':' or whitespace
    if (0 < len(value.encode()) <= 15 and value not in (".", "..") and not _CONTROL.search(value)
            and not re.search(r"[/:\s]", value)):
        return value
    raise _bad(f"{_show(value)} is not an interface name or address — give a name of at most 15 characters "
               "without '/', ':' or spaces (e.g. eth0), or this node's IP address, or null for the default route's")


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise _bad(f"{_show(value)} is not an environment variable name — use letters, digits and _, such as ETCD_PASSWORD")
    return value


def _word(value: str) -> str:
    """A value written into flanneld's options, which systemd splits at whitespace."""
    if not value or _SPACE.search(value) or _CONTROL.search(value):
        raise _bad(f"{_show(value)} is empty or holds spaces or control characters, and flanneld's options are "
                   "split at spaces — give a single word")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


def _url(value: str) -> str:
    if _SPACE.search(value) or _CONTROL.search(value):
        raise ValueError(f"{_show(value)} holds spaces or control characters — write it like http://10.0.0.5:2379")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{_show(value)} is not an http:// or https:// URL — write it like http://10.0.0.5:2379")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{_show(value)} has a bad port — use a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"{_show(value)} has no host — write it like http://10.0.0.5:2379")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{_show(value)} has a path — an etcd endpoint is scheme://host:port only")
    if port is None:
        raise ValueError(f"{_show(value)} has no port — etcd clients listen on :2379 by default")
    return value.rstrip("/")


def _network(value: str, what: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise ValueError(f"{_show(value)} is not an IPv4 CIDR — write it like 172.30.0.0/16") from None
    if "/" not in value:
        raise ValueError(f"{_show(value)} has no prefix length — write {what} like 172.30.0.0/16")
    if str(net) != value:
        raise ValueError(f"{_show(value)} has host bits set — did you mean {net}?")
    return value


# Descriptions: the words of config.example.yaml's comments (tests/test_cli_messages.py holds them to it),
# shown by `flannel-wizard schema` and so by an editor on hover. Static strings: validation does not read them.
_TLS = "https:// endpoints need cert_file and key_file (flanneld uses TLS only with both)."
_AUTH = "The password is never written here; name an environment variable or a file instead."


class Etcd(Section):
    """etcd: the endpoints, the key prefix, TLS and auth, and what to do with a config already there."""

    endpoints: list[Annotated[str, AfterValidator(_url)]] = Field(
        default_factory=lambda: ["http://127.0.0.1:2379"], min_length=1,
        description="Where flanneld (and the wizard) reach etcd. Several endpoints: the first that answers is used. "
        "Each is scheme://host:port, e.g. http://10.0.0.5:2379.",
    )
    prefix: str = Field("/kube-centos/network", description="flanneld reads PREFIX/config and leases subnets under "
                        "PREFIX/subnets/. Leading slash, no trailing slash, without /config.")
    api: Literal["auto", "v3", "v2"] = Field(
        "auto", description="auto: the API the installed flanneld reads (`flanneld --version`: v2 before v0.18.0, "
        "v3 from then on; v3 when flanneld is not installed). v3 or v2 force it; flanneld before v0.18.0 reads only "
        "v2 (the keys API) and cannot see v3 keys.")
    ca_file: Annotated[str, _node_path("/etc/etcd/ca.pem")] | None = Field(
        None, description=f"TLS: {_TLS} This is the CA certificate that signed etcd's, e.g. /etc/etcd/ca.pem.")
    cert_file: Annotated[str, _node_path("/etc/etcd/client.pem")] | None = Field(
        None, description=f"TLS: this node's client certificate, e.g. /etc/etcd/client.pem. {_TLS}")
    key_file: Annotated[str, _node_path("/etc/etcd/client-key.pem")] | None = Field(
        None, description=f"TLS: the client certificate's key, e.g. /etc/etcd/client-key.pem. {_TLS}")
    username: Annotated[str, AfterValidator(_word)] | None = Field(
        None, description="Auth: the password is never written here; name an environment variable or a file "
        "instead. This is the etcd user; the password comes from password_env or password_file.")
    password_env: EnvName | None = Field(
        None, description=f"Auth: the environment variable holding the etcd password, e.g. ETCD_PASSWORD. {_AUTH}")
    # read by the wizard itself, never written into an option line: spaces are fine
    password_file: Annotated[str, _node_path("/root/.etcd-password", words=False)] | None = Field(
        None, description=f"Auth: a file holding the etcd password on one line, e.g. /root/.etcd-password. {_AUTH}")
    timeout_s: float = Field(3, gt=0, le=120, description="Seconds to wait for an etcd endpoint to answer "
                             "(more than 0, at most 120).")
    on_existing: Literal["fail", "keep", "replace"] = Field(
        "fail", description="When PREFIX/config already holds a different config: fail (show the diff), keep it, "
        "or replace it.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if _CONTROL.search(value) or _SPACE.search(value):
            raise ValueError(f"{_show(value)} holds spaces or control characters — write it like /kube-centos/network")
        if not value.startswith("/") or value.endswith("/") or "//" in value or " " in value:
            raise ValueError(
                f"{_show(value)} is not a key prefix — write it like /kube-centos/network "
                "(leading slash, no trailing slash); flanneld reads PREFIX/config"
            )
        if value.endswith("/config"):
            raise ValueError(
                f"{_show(value)} ends in /config — give the prefix only; the wizard writes PREFIX/config itself"
            )
        return value

    @property
    def secure(self) -> bool:
        return any(e.startswith("https://") for e in self.endpoints)


_TYPE = "The backend: vxlan | host-gw | udp | ipip | wireguard | ipsec."
# flannel reads Backend.MTU as the underlay's MTU and takes the backend's overhead off it (vxlan/device.go)
_MTU = "null = the interface's MTU."


class Vxlan(Section):
    """vxlan options: vni (1), port (0 = kernel default 8472), gbp, direct_routing, learning, mtu."""

    type: Literal["vxlan"] = Field(description=f"{_TYPE} vxlan: pod traffic between nodes in VXLAN packets "
                                   "(flannel's default).")
    vni: int = Field(1, ge=0, le=16777215, description="vxlan: flannel's VNI, the VXLAN network identifier (1).")
    port: int = Field(0, ge=0, le=65535, description="vxlan: flannel's Port, the UDP port of the VXLAN packets "
                      "(0 = kernel default 8472).")
    gbp: bool = Field(False, description="vxlan: flannel's GBP, VXLAN Group Based Policy.")
    direct_routing: bool = Field(False, description="vxlan: flannel's DirectRouting: to nodes on the same subnet, "
                                 "route directly (like host-gw) instead of through VXLAN.")
    learning: bool = Field(False, description="vxlan: flannel's Learning: address learning on the VXLAN device "
                           "(flannel.1).")
    mtu: int | None = Field(None, ge=576, le=9000, description="vxlan: flannel's MTU, the MTU of the network the "
                            "VXLAN packets travel on (576 to 9000); flannel.1 and FLANNEL_MTU get 50 less. "
                            f"{_MTU}")


class HostGw(Section):
    """host-gw: routes to the other nodes' subnets through their addresses; needs one layer-2 network. No options."""

    type: Literal["host-gw"] = Field(description=f"{_TYPE} host-gw: plain routes to each node's subnet; all nodes "
                                     "on one layer-2 network.")


class Udp(Section):
    """udp options: port (8285)."""

    type: Literal["udp"] = Field(description=f"{_TYPE} udp: flanneld itself carries the packets (slow; for "
                                 "debugging, or kernels without VXLAN).")
    port: int = Field(8285, ge=1, le=65535, description="udp: flannel's Port, the UDP port flanneld sends on (8285).")


class Ipip(Section):
    """ipip options: direct_routing."""

    type: Literal["ipip"] = Field(description=f"{_TYPE} ipip: pod traffic in IP-in-IP packets.")
    direct_routing: bool = Field(False, description="ipip: flannel's DirectRouting: to nodes on the same subnet, "
                                 "route directly (like host-gw) instead of through IPIP.")


class Wireguard(Section):
    """wireguard options: psk_env or psk_file, listen_port, listen_port_v6, mtu, persistent_keepalive_interval, mode."""

    type: Literal["wireguard"] = Field(description=f"{_TYPE} wireguard: pod traffic encrypted between nodes.")
    psk_env: EnvName | None = Field(
        None, description="wireguard: the environment variable holding flannel's PSK (the pre-shared key), e.g. "
        "FLANNEL_PSK. The key is never written here; keep one of psk_env and psk_file.")
    psk_file: Annotated[str, _node_path("/root/.flannel-psk", words=False)] | None = Field(
        None, description="wireguard: a file holding flannel's PSK (the pre-shared key), e.g. /root/.flannel-psk. "
        "The key is never written here; keep one of psk_env and psk_file.")
    listen_port: int = Field(51820, ge=1, le=65535, description="wireguard: flannel's ListenPort, the UDP port for "
                             "IPv4 (51820).")
    listen_port_v6: int = Field(51821, ge=1, le=65535, description="wireguard: flannel's ListenPortV6, the UDP "
                                "port for IPv6 (51821).")
    mtu: int | None = Field(None, ge=576, le=9000, description="wireguard: flannel's MTU, the MTU of the network "
                            "the encrypted packets travel on (576 to 9000); flannel-wg and FLANNEL_MTU get 80 less. "
                            f"{_MTU}")
    persistent_keepalive_interval: int | None = Field(
        None, ge=0, le=65535, description="wireguard: flannel's PersistentKeepaliveInterval, in seconds; null or 0 "
        "= no keepalives.")
    mode: Literal["separate", "auto", "ipv4", "ipv6"] = Field(
        "separate", description="wireguard: flannel's Mode: separate (one device per address family), auto, ipv4 "
        "or ipv6.")


def _proposal(value: str) -> str:
    # handed to strongSwan's charon as one proposal: algorithms joined by '-', several proposals by ','
    if not re.fullmatch(r"[A-Za-z0-9_]+(?:[-,][A-Za-z0-9_]+)*", value):
        raise _bad(f"{_show(value)} is not an ESP proposal — write it like aes128gcm16-sha256-prfsha256-ecp256 "
                   "(algorithms joined by '-')")
    return value


class Ipsec(Section):
    """ipsec options: psk_env or psk_file (required), udp_encap, esp_proposal."""

    type: Literal["ipsec"] = Field(description=f"{_TYPE} ipsec: pod traffic encrypted by the kernel's IPsec, keys "
                                   "agreed by strongSwan's charon (UDP 500 and 4500).")
    psk_env: EnvName | None = Field(
        None, description="ipsec: the environment variable holding flannel's PSK (required, at least "
        f"{flannel.IPSEC_PSK_MIN} characters), e.g. FLANNEL_PSK. The key is never written here; keep one of "
        "psk_env and psk_file.")
    psk_file: Annotated[str, _node_path("/root/.flannel-psk", words=False)] | None = Field(
        None, description=f"ipsec: a file holding flannel's PSK (required, at least {flannel.IPSEC_PSK_MIN} "
        "characters), e.g. /root/.flannel-psk. The key is never written here; keep one of psk_env and psk_file.")
    udp_encap: bool = Field(False, description="ipsec: flannel's UDPEncap: ESP inside UDP port 4500, through NAT "
                            "gateways; FLANNEL_MTU gets 8 less.")
    esp_proposal: Annotated[str, AfterValidator(_proposal)] | None = Field(
        None, description="ipsec: flannel's ESPProposal, the ESP proposal charon offers; null = "
        f"{flannel.IPSEC_ESP_PROPOSAL}.")


Backend = Annotated[Vxlan | HostGw | Udp | Ipip | Wireguard | Ipsec, Field(discriminator="type")]
BACKEND_MODELS: dict[str, type[Section]] = {
    "vxlan": Vxlan, "host-gw": HostGw, "udp": Udp, "ipip": Ipip, "wireguard": Wireguard, "ipsec": Ipsec,
}


class Network(Section):
    """network: the pod network (cidr), each node's subnet (subnet_len, subnet_min, subnet_max), the backend."""

    cidr: str = Field("172.30.0.0/16", description="flannel's Network: all pod addresses of the cluster, as a CIDR "
                      "like 172.30.0.0/16.")
    subnet_len: int | None = Field(24, ge=1, le=32, description="flannel's SubnetLen, the prefix length of the "
                                   "subnet each node leases: 24 = each node leases one /24 (255 nodes, 253 pods each).")
    subnet_min: str | None = Field(None, description="flannel's SubnetMin, the first subnet a node may lease, "
                                   "like 172.30.1.0; default: the second subnet (flannel never leases the first).")
    subnet_max: str | None = Field(None, description="flannel's SubnetMax, the last subnet a node may lease, "
                                   "like 172.30.254.0; default: the last subnet.")
    service_cidr: str | None = Field("10.254.0.0/16", description="kube-apiserver's --service-cluster-ip-range; "
                                     "must not overlap cidr (null: not checked).")
    enable_ipv4: bool = Field(True, description="flannel's EnableIPv4. Keep true: flannel's etcd subnet manager "
                              "leases an IPv4 subnet to every node (IPv6-only needs --kube-subnet-mgr).")
    enable_ipv6: bool = Field(False, description="flannel's EnableIPv6: dual-stack, each node also leases an "
                              "IPv6 subnet of ipv6_cidr (backends vxlan, wireguard, host-gw).")
    ipv6_cidr: str | None = Field(None, description="flannel's IPv6Network: all IPv6 pod addresses, as a CIDR "
                                  "like fc00::/48 (needed with enable_ipv6).")
    ipv6_subnet_len: int | None = Field(None, ge=1, le=128, description="flannel's IPv6SubnetLen; default: 64, or "
                                        "ipv6_cidr's prefix + 2 when that is longer than /62.")
    ipv6_subnet_min: str | None = Field(None, description="flannel's IPv6SubnetMin, the first IPv6 subnet a node "
                                        "may lease; default: the second subnet.")
    ipv6_subnet_max: str | None = Field(None, description="flannel's IPv6SubnetMax, the last IPv6 subnet a node "
                                        "may lease; default: the last subnet.")
    backend: Backend = Field(default_factory=lambda: Vxlan(type="vxlan"),
                             description="flannel's Backend: type: vxlan | host-gw | udp | ipip | wireguard | ipsec, "
                             "and that type's options.")

    @field_validator("cidr", "service_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        return None if value is None else _network(value, "it")

    @field_validator("ipv6_cidr")
    @classmethod
    def _cidr6(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            net = ipaddress.IPv6Network(value, strict=False)
        except ValueError:
            raise ValueError(f"{_show(value)} is not an IPv6 CIDR — write it like fc00::/48") from None
        if "/" not in value:
            raise ValueError(f"{_show(value)} has no prefix length — write it like fc00::/48")
        if ipaddress.IPv6Interface(value).ip != net.network_address:
            raise ValueError(f"{_show(value)} has host bits set — did you mean {net}?")
        return value

    @field_validator("ipv6_subnet_min", "ipv6_subnet_max")
    @classmethod
    def _address6(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            raise ValueError(f"{_show(value)} is not an IPv6 address — write it like fc00:0:0:1::") from None
        return value

    @field_validator("subnet_min", "subnet_max")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{_show(value)} is not an IPv4 address — write it like 172.30.1.0") from None
        return value

    def flannel_config(self, secrets: bool = True) -> dict[str, Any]:
        """The JSON flanneld reads from PREFIX/config; Backend.Type is always written."""
        cfg: dict[str, Any] = {"Network": self.cidr}
        if self.subnet_len is not None:
            cfg["SubnetLen"] = self.subnet_len
        if self.subnet_min:
            cfg["SubnetMin"] = self.subnet_min
        if self.subnet_max:
            cfg["SubnetMax"] = self.subnet_max
        # the dual-stack keys only when asked for, so a single-stack config reads as it always did
        if not self.enable_ipv4:
            cfg["EnableIPv4"] = False
        if self.enable_ipv6:
            cfg["EnableIPv6"] = True
            for key, value in (("IPv6Network", self.ipv6_cidr), ("IPv6SubnetLen", self.ipv6_subnet_len),
                               ("IPv6SubnetMin", self.ipv6_subnet_min), ("IPv6SubnetMax", self.ipv6_subnet_max)):
                if value is not None:
                    cfg[key] = value
        backend: dict[str, Any] = {"Type": self.backend.type}
        names = flannel.BACKEND_OPTIONS[self.backend.type]
        for key in names:
            if key == "psk":
                continue
            if key in self.backend.model_fields_set and getattr(self.backend, key) is not None:
                backend[names[key]] = getattr(self.backend, key)
        if isinstance(self.backend, (Wireguard, Ipsec)) and (self.backend.psk_env or self.backend.psk_file):
            backend["PSK"] = read_secret(self.backend.psk_env, self.backend.psk_file) if secrets else "********"
        cfg["Backend"] = backend
        return cfg


class Flanneld(Section):
    """flanneld: its options file (env_file), subnet.env, the interface, ip-masq, the service to restart."""

    env_file: Annotated[str, _node_path("/etc/sysconfig/flanneld")] = Field(
        "/etc/sysconfig/flanneld", description="EnvironmentFile of flanneld.service. The settings go there in the "
        "form its unit reads — FLANNEL_ETCD_ENDPOINTS, FLANNEL_ETCD_PREFIX and FLANNEL_OPTIONS for the CentOS "
        "flanneld-start wrapper, flanneld's own FLANNELD_* variables for the binary run directly (a drop-in makes "
        "the unit read this file when it does not). Your other lines are kept.")
    subnet_file: Annotated[str, _node_path("/run/flannel/subnet.env")] = Field(
        "/run/flannel/subnet.env", description="written by flanneld once it holds a lease (FLANNEL_SUBNET, "
        "FLANNEL_MTU, ...).")
    iface: Annotated[str, AfterValidator(_iface)] | None = Field(
        None, description="flanneld's -iface; default: the interface of the default route. An interface name "
        "(eth0) or this node's IP address.")
    ip_masq: bool = Field(False, description="-ip-masq (then docker gets --ip-masq=false): flanneld masquerades "
                          "traffic leaving the pod network.")
    service: Annotated[str, _unit_name("flanneld")] = Field(
        "flanneld", description="flanneld's systemd service, restarted after its options change.")
    wait_s: float = Field(30, gt=0, le=600, description="how long to wait for subnet_file after the restart, in "
                          "seconds (at most 600).")


class DockerOpts(Section):
    """The lines of opts_file, as mk-docker-opts.sh's flags choose them. Where flanneld's ExecStartPost= runs
    the script on opts_file, the booleans' default (true) follows its -i/-c/-m; false must agree with it."""

    individual: bool = Field(True, description="DOCKER_OPT_BIP=..., DOCKER_OPT_IPMASQ=..., DOCKER_OPT_MTU=... (-i)")
    combined: bool = Field(True, description='DOCKER_OPTS=" --bip=... --ip-masq=... --mtu=..." (-c)')
    combined_key: str = Field("auto", description="the variable name of the combined line (-k); auto = the "
                              "-k of flanneld's ExecStartPost= where it writes opts_file (DOCKER_NETWORK_OPTIONS on "
                              "the article's CentOS node), else the variable docker.service expands from it, else "
                              "DOCKER_OPTS")
    ip_masq: bool = Field(True, description="false = -m: leave --ip-masq out")

    @field_validator("combined_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"{_show(value)} is not a shell variable name — use letters, digits and _, or auto")
        return value


class Docker(Section):
    """docker: the bridge, docker_opts.env as mk-docker-opts.sh writes it, daemon.json, the service."""

    bridge: str = Field("docker0", description="docker's bridge, moved onto flannel's subnet (FLANNEL_SUBNET) "
                        "with its MTU (FLANNEL_MTU).")
    opts_file: Annotated[str, _node_path("/run/docker_opts.env", auto=True)] = Field(
        "auto", description="Written exactly as flannel's mk-docker-opts.sh writes it. auto = the file "
        "docker.service passes to dockerd as flags (/run/flannel/docker with the flannel package's drop-in), else "
        "the -d of flanneld's ExecStartPost= mk-docker-opts.sh, else /run/docker_opts.env. It holds docker's options from subnet.env (--bip, --ip-masq, --mtu).")
    opts: DockerOpts = Field(default_factory=DockerOpts, description="which lines go into opts_file, as "
                             "mk-docker-opts.sh's -i, -c, -k and -m choose them.")
    daemon_json: Annotated[str, _node_path("/etc/docker/daemon.json")] | None = Field(
        "/etc/docker/daemon.json", description="the daemon.json dockerd reads: bip and mtu merged in, every other "
        "key kept, unless docker.service already passes them as flags (then they are taken out: dockerd refuses "
        "a setting given both as a flag and in this file); null to leave daemon.json alone.")
    service: Annotated[str, _unit_name("docker")] = Field(
        "docker", description="docker's systemd service, restarted after its options change.")

    @field_validator("bridge")
    @classmethod
    def _bridge(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", value):
            raise ValueError(f"{_show(value)} is not an interface name — at most 15 letters, digits, '-', '_' or '.'")
        return value


class Cgroup(Section):
    """cgroup: the driver kubelet and the runtime share, and where kubelet's setting lives."""

    driver: Literal["auto", "systemd", "cgroupfs"] = Field(
        "auto", description="auto = systemd when PID 1 is systemd, else cgroupfs")
    runtime: Literal["auto", "docker", "containerd", "cri-o"] = Field(
        "auto", description="the container runtime set to the driver: auto | docker | containerd | cri-o (auto: "
        "kubelet's --container-runtime-endpoint, else the runtime whose unit or config is on the node)")
    kubelet_config: Annotated[str, _node_path("/var/lib/kubelet/config.yaml")] = Field(
        "/var/lib/kubelet/config.yaml", description="KubeletConfiguration (cgroupDriver:). kubelet's driver is "
        "read where kubelet reads it: the flags its unit passes (kubeadm-flags.env, /etc/default/kubelet, ...) beat "
        "the file its --config names. These two are read only where no kubelet unit exists.")
    kubelet_env: Annotated[str, _node_path("/etc/kubernetes/kubelet")] = Field(
        "/etc/kubernetes/kubelet", description='old packages: KUBELET_ARGS="--cgroup-driver=..." (read only where no '
        "kubelet unit exists)")
    kubelet_service: Annotated[str, _unit_name("kubelet")] = Field(
        "kubelet", description="kubelet's systemd service, restarted after its driver changes.")


class SmokeTest(Section):
    """smoke_test: the nginx deployment and NodePort service the smoke step creates, and how long to wait."""

    enabled: bool = Field(True, description="The article's check, run last: nginx pods behind a NodePort service, "
                          "traffic through kube-proxy. Needs kubectl on this node and a cluster; set enabled: false "
                          "on a node without one yet.")
    kubeconfig: Annotated[str, _node_path("/etc/kubernetes/admin.conf", words=False)] | None = Field(
        None, description="the kubeconfig kubectl uses, e.g. /etc/kubernetes/admin.conf; default: kubectl's own "
        "(~/.kube/config, $KUBECONFIG)")
    namespace: Annotated[str, _k8s_name("label", "default")] = Field(
        "default", description="the namespace of the test's deployment and service")
    deployment: Annotated[str, _k8s_name("subdomain", "nginx")] = Field(
        "nginx", description="the name of the test's deployment (a same-named object the wizard did not create is "
        "refused)")
    image: str = Field("nginx:1.9", description="the image the test's pods run: an HTTP server on container_port")
    replicas: int = Field(2, ge=1, le=50, description="how many pods the deployment runs (1 to 50)")
    labels: dict[str, str] = Field(default_factory=lambda: {"run": "load-balancer-example"},
                                   description="the pods' labels, which the service selects")
    container_port: int = Field(80, ge=1, le=65535, description="the port the pods listen on: nginx listens on 80 "
                                "(the article's 8080 gave endpoints that refused)")
    service: Annotated[str, _k8s_name("dns1035", "example-service")] = Field(
        "example-service", description="the name of the NodePort service in front of the pods")
    service_port: int = Field(8080, ge=1, le=65535, description="the service's port on its cluster IP")
    timeout_s: float = Field(120, gt=0, le=3600, description="how long to wait for the endpoints to be ready, in "
                             "seconds (at most 3600)")
    cleanup: bool = Field(True, description="delete the deployment and service after the test (false: keep them; "
                          "`flannel-wizard undo` removes them)")


class Answers(Section):
    """flannel-wizard answers — replay with: flannel-wizard apply FILE. Every key is optional except `version`."""

    version: Literal[1] = Field(description="The answers file's format: always 1, at the top of the file.")
    etcd: Etcd = Field(default_factory=Etcd, description="Where flanneld (and the wizard) reach etcd, and the key "
                       "prefix flannel's config lives under.")
    network: Network = Field(default_factory=Network, description="flannel's network config, written into "
                             "PREFIX/config in etcd: the pod network, each node's subnet, the backend.")
    flanneld: Flanneld = Field(default_factory=Flanneld, description="flanneld on this node: its options file, the "
                               "interface it uses, its restart.")
    docker: Docker = Field(default_factory=Docker, description="docker's bridge on flannel's subnet: the options "
                           "file, daemon.json, the bridge's address and MTU.")
    cgroup: Cgroup = Field(default_factory=Cgroup, description="kubelet and the container runtime on one cgroup "
                           "driver.")
    smoke_test: SmokeTest = Field(default_factory=SmokeTest, description="The article's check, run last: nginx pods "
                                  "behind a NodePort service, traffic through kube-proxy.")

    def etcd_password(self) -> str | None:
        return read_secret(self.etcd.password_env, self.etcd.password_file)


# Secrets typed into the wizard, by the variable name the saved answers will give for them. They live
# in this process only: not in os.environ, where every child process would inherit them.
_typed: dict[str, str] = {}


def remember_secret(env: str, value: str | None) -> None:
    if value:
        _typed[env] = value
    else:
        _typed.pop(env, None)


def env_secret(env: str) -> str | None:
    return _typed.get(env, os.environ.get(env))


def read_secret(env: str | None, file: str | None) -> str | None:
    if env:
        value = env_secret(env)
        if value is None:
            raise InputError(f"environment variable {env} is not set", f"export {env}=... before running")
        return value
    if file:
        try:
            data = read_regular(file, MAX_SECRET_BYTES, "a secret file")
        except Refused as exc:
            raise InputError(f"cannot read secret file {file}: {exc.what}", exc.fix) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            pos, byte = _undecodable(data, exc)
            raise InputError(f"secret file {file}: byte 0x{byte:02X} at {pos.line}:{pos.col} is not UTF-8",
                             "put only the password in it, as UTF-8 text on one line") from None
        value = text.rstrip("\r\n")
        control = _control(value)
        if control:
            raise InputError(f"secret file {file} holds the control character {control} (binary data, or more than one line?)",
                             "put only the password in it, on one line") from None
        return value
    return None


# ---------------------------------------------------------------- reading files we are handed

MAX_ANSWERS_BYTES = 256 << 10  # 64 times the example; parsing this much takes ~0.3 s in the worst case
MAX_SECRET_BYTES = 64 << 10


def _undecodable(data: bytes, exc: UnicodeDecodeError) -> tuple[yamlpos.Pos, int]:
    """Where the first byte that is not UTF-8 stands (line and column in characters), and the byte."""
    start = exc.start
    line_start = data.rfind(b"\n", 0, start) + 1
    col = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
    return yamlpos.Pos(data.count(b"\n", 0, start) + 1, col), data[start]


def decode(data: bytes, file: str = "<answers>") -> str:
    """UTF-8 text, or AnswersInvalid naming the position of the first byte that is not UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise AnswersInvalid(file, [Problem(1, 1, "the file is UTF-16 text — save it as UTF-8")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        pos, byte = _undecodable(data, exc)
        latin = bytes([byte]).decode("latin-1")
        seen = f" (in Latin-1 it would be {latin!r})" if latin.isprintable() else ""
        raise AnswersInvalid(file, [Problem(pos.line, pos.col, f"byte 0x{byte:02X} is not UTF-8{seen} — save the file "
                                            "as UTF-8, e.g. `iconv -f latin1 -t utf-8 FILE`")]) from None


def read(path: str) -> str:
    """The text of an answers file (standard input for `-`, named <stdin>); a file that is not one (by
    type, size or encoding) is refused as `FILE:LINE:COL: what — fix` before anything parses it."""
    name = source_name(path)
    try:
        data = read_input(path, MAX_ANSWERS_BYTES)
    except Refused as exc:
        raise AnswersInvalid(name, [Problem(1, 1, f"{exc.what} — {exc.fix}")]) from None
    return decode(data, name)


# ---------------------------------------------------------------- loading with positions


@dataclass(frozen=True)
class Problem:
    line: int
    col: int
    message: str
    loc: tuple[Any, ...] = ()  # where in the answers: ("etcd", "endpoints", 0)

    def render(self, file: str) -> str:
        return f"{file}:{self.line}:{self.col}: {self.message}"


class AnswersInvalid(AnswersInvalidError):
    def __init__(self, file: str, problems: list[Problem], data: Any = None) -> None:
        self.file = file
        self.data = data  # the mapping as read, so the TUI can still prefill from a file with problems
        self.problems = sorted(problems, key=lambda p: (p.line, p.col))
        super().__init__(f"{file}: {len(self.problems)} problem(s)")

    def __str__(self) -> str:
        return "\n".join(p.render(self.file) for p in self.problems)


def _fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _backend_type(data: Any) -> Any:
    net = data.get("network") if isinstance(data, dict) else None
    backend = net.get("backend") if isinstance(net, dict) else None
    return backend.get("type") if isinstance(backend, dict) else None


def _model_at(path: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    model: Any = Answers
    for part in path:
        if model is Network and part == "backend":
            kind = _backend_type(data)
            model = BACKEND_MODELS.get(kind if isinstance(kind, str) else "")
            if model is None:
                return None
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if model is None:
            return None
    return model


def _strip_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # a discriminated union puts the tag into the location: network.backend.vxlan.port
    if len(loc) >= 3 and loc[:2] == ("network", "backend") and loc[2] in BACKEND_MODELS:
        return loc[:2] + loc[3:]
    return loc


def _dotted(loc: tuple[Any, ...]) -> str:
    def part(p: Any) -> str:
        text = str(p)
        return text if len(text) <= 40 and text.isprintable() else _show(p, 40)

    return ".".join(part(p) for p in loc) or "(top level)"


_WANTED = {
    "int": "a whole number", "float": "a number", "bool": "true or false", "string": "a string",
    "list": "a list", "dict": "a mapping", "model": "a mapping", "literal": "one of the listed values",
}


def _message(err: dict[str, Any], loc: tuple[Any, ...], data: Any) -> str:
    """Every kind of validation error as `what — how to fix` (never pydantic's own wording alone)."""
    kind = err["type"]
    name = _dotted(loc)
    got = _show(err.get("input"))
    if kind == "answer":
        return f"{name} {err['ctx']['message']}"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = _model_at(loc[:-1], data)
        known = _fields(parent) if parent else []
        if loc[:2] == ("network", "backend") and parent is not None:
            btype = _backend_type(data)
            others = [t for t, m in BACKEND_MODELS.items() if key in m.model_fields and t != btype]
            hint = f" (it is a {others[0]} option)" if others else ""
            options = ", ".join(f for f in known if f != "type") or "none"
            return f"backend {btype} has no option {_show(key)}{hint} — options for {btype}: {options}"
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) if len(key) <= 100 else []
        if close:
            return f"unknown key '{name}' — did you mean '{close[0]}'?"
        if known:
            return f"unknown key '{name}' — allowed here: {', '.join(known)}"
        return f"unknown key '{name}' — remove it"
    if kind == "missing":
        if loc == ("version",):
            return "missing 'version' — add `version: 1` at the top of the file"
        return f"missing '{name}' — add it"
    if kind == "union_tag_invalid":
        tag = err.get("input", {}).get("type") if isinstance(err.get("input"), dict) else None
        return f"{name}.type must be one of {', '.join(BACKEND_MODELS)} — got {_show(tag)}"
    if kind == "union_tag_not_found":
        return f"{name} needs a type — add `type:` with one of {', '.join(BACKEND_MODELS)}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{name} must be {expected} — got {got}"
    if kind == "value_error":
        return f"{name}: {err['ctx']['error']}"
    if kind == "int_from_float":
        return f"{name} must be a whole number — got {got}; write it without a fraction"
    if kind == "finite_number":
        return f"{name} must be a finite number — got {got}"
    if kind in ("int_parsing_size",):
        return f"{name} is far too large — got {got}; give a small whole number"
    if kind.endswith(("_type", "_parsing")):
        base = kind.split("_")[0]
        return f"{name} must be {_WANTED.get(base, base)} — got {got}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{name} is out of range: {err['msg'].lower()} — got {got}"
    if kind in ("too_short", "too_long"):
        return f"{name} has the wrong number of items: {err['msg'].lower()} — got {got}"
    return f"{name}: {err['msg']} — got {got}; see config.example.yaml for what goes here"


def _oneline(message: str, limit: int = 400) -> str:
    """One line of bounded length, whatever the file held: control characters escaped, the middle of
    a very long message cut (its end says how to fix it)."""
    message = _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
    return message if len(message) <= limit else f"{message[: limit // 2]} … {message[-limit // 2:]}"


def _semantic(answers: Answers) -> list[tuple[tuple[Any, ...], str]]:
    """Rules that span several keys: flannel's own config rules, overlaps, secrets, TLS pairs."""
    out: list[tuple[tuple[Any, ...], str]] = []
    net = answers.network
    out.extend(_network_rules(net))
    if net.service_cidr:
        pod, svc = ipaddress.IPv4Network(net.cidr), ipaddress.IPv4Network(net.service_cidr)
        if pod.overlaps(svc):
            out.append((("network", "service_cidr"), f"service CIDR {svc} overlaps the flannel network {pod} — kube-proxy would capture pod traffic; choose ranges that do not overlap"))
    out.extend(_psk_rules(net.backend))
    etcd = answers.etcd
    if etcd.password_env and etcd.password_file:
        out.append((("etcd", "password_file"), "password_env and password_file are both given — keep one of them"))
    elif etcd.password_env and env_secret(etcd.password_env) is None:
        out.append((("etcd", "password_env"), f"environment variable {etcd.password_env} is not set — export {etcd.password_env}=... before running"))
    if (etcd.password_env or etcd.password_file) and not etcd.username:
        out.append((("etcd", "username"), "a password is given but no username — set etcd.username"))
    if etcd.username and not (etcd.password_env or etcd.password_file):
        out.append((("etcd", "username"), "username without a password — set password_env or password_file (never the password itself)"))
    if bool(etcd.cert_file) != bool(etcd.key_file):
        missing = "key_file" if etcd.cert_file else "cert_file"
        out.append((("etcd", missing), "cert_file and key_file go together — flanneld uses TLS only when both are given"))
    schemes = {e.split(":", 1)[0] for e in etcd.endpoints}
    if len(schemes) > 1:
        out.append((("etcd", "endpoints"), "endpoints mix http:// and https:// — use one scheme for all"))
    elif "https" in schemes and not (etcd.cert_file and etcd.key_file):
        out.append((("etcd", "endpoints"), "https endpoints need cert_file and key_file — flanneld uses TLS only when both are given (a CA alone means plain http)"))
    elif "http" in schemes and (etcd.cert_file or etcd.ca_file):
        out.append((("etcd", "endpoints"), "TLS files are given but the endpoints are http:// — use https:// endpoints"))
    opts = answers.docker.opts
    if not opts.individual and not opts.combined:
        out.append((("docker", "opts", "combined"), "individual and combined are both false — set at least one (mk-docker-opts.sh would write both)"))
    return out


# flannel's config key -> the answers key it comes from
_WHERE = {"Network": "cidr", "SubnetLen": "subnet_len", "SubnetMin": "subnet_min", "SubnetMax": "subnet_max",
          "EnableIPv4": "enable_ipv4", "EnableIPv6": "enable_ipv6", "IPv6Network": "ipv6_cidr",
          "IPv6SubnetLen": "ipv6_subnet_len", "IPv6SubnetMin": "ipv6_subnet_min", "IPv6SubnetMax": "ipv6_subnet_max"}


def _network_rules(net: Network) -> list[tuple[tuple[Any, ...], str]]:
    """flannel's first objection to the config, as flanneld would log it; when flannel has none, what the
    wizard finds that flannel accepts but that cannot work (said to be the wizard's own)."""
    out: list[tuple[tuple[Any, ...], str]] = []
    if not net.enable_ipv6:
        given = [k for k in ("ipv6_cidr", "ipv6_subnet_len", "ipv6_subnet_min", "ipv6_subnet_max") if getattr(net, k)]
        for key in given:
            out.append((("network", key), f"network.{key} is set but enable_ipv6 is false, and flannel reads no IPv6 key without "
                        "EnableIPv6 (the wizard's own check) — set network.enable_ipv6: true, or remove it"))
    cfg = net.flannel_config(secrets=False)
    try:
        checked = flannel.check_config(cfg)
    except flannel.ConfigProblem as exc:
        key = _WHERE.get(exc.field, "cidr")
        return [*out, (("network", key), f"{exc.message} (flannel's rule) — adjust network.{key}")]
    for problem in flannel.own_findings(cfg, checked):
        key = _WHERE.get(problem.field, "cidr")
        fix = f"adjust network.{key}"
        if problem.field == "EnableIPv6":
            fix = "choose backend vxlan, wireguard or host-gw, or set network.enable_ipv6: false"
        elif problem.field == "EnableIPv4":
            fix = "set network.enable_ipv4: true (dual-stack: add enable_ipv6: true)"
        out.append((("network", key), f"{problem.message} (the wizard's own check; flannel has no such rule) — {fix}"))
    return out


def _psk_rules(backend: Any) -> list[tuple[tuple[Any, ...], str]]:
    """The PSK as the backend reads it when flanneld registers the network: ipsec's length rule and
    wireguard's key format (wgtypes.ParseKey), in flannel's words. The key itself is never shown."""
    if not isinstance(backend, (Wireguard, Ipsec)):
        return []
    where = ("network", "backend", "psk_file" if backend.psk_file else "psk_env")
    if backend.psk_env and backend.psk_file:
        return [(("network", "backend", "psk_file"), "psk_env and psk_file are both given — keep one of them")]
    if backend.psk_env and env_secret(backend.psk_env) is None:
        return [(("network", "backend", "psk_env"), f"environment variable {backend.psk_env} is not set — export "
                 "it before running")]
    psk = ""
    if backend.psk_env or backend.psk_file:
        try:
            psk = read_secret(backend.psk_env, backend.psk_file) or ""
        except InputError as exc:
            return [(where, f"{exc.what} — {exc.fix}" if exc.fix else exc.what)]
    if isinstance(backend, Ipsec):
        if len(psk.encode()) < flannel.IPSEC_PSK_MIN:
            # flannel's RegisterNetwork refuses an empty or short PSK alike; the length is in bytes
            said = "no PSK is given" if not psk else f"the PSK has {len(psk.encode())} characters"
            return [(where, f"{flannel.IPSEC_PSK_SHORT} (flannel's rule: ipsec needs a PSK of at least "
                     f"{flannel.IPSEC_PSK_MIN} characters; {said}) — set psk_env or psk_file to one, e.g. from "
                     "`dd if=/dev/urandom count=48 bs=1 status=none | xxd -p -c 48`")]
        return []
    if psk:
        try:
            raw = base64.b64decode(psk, validate=True)
        except ValueError:
            return [(where, "could not parse psk: wgtypes: failed to parse base64-encoded key (flannel's error: the "
                     "PSK is not base64) — give a key from `wg genpsk`")]
        if len(raw) != 32:
            return [(where, f"could not parse psk: wgtypes: incorrect key size: {len(raw)} (flannel's error: a "
                     "wireguard PSK is 32 bytes) — give a key from `wg genpsk`")]
    return []


Loc = tuple[Any, ...]


def check(data: dict[str, Any]) -> tuple[Answers | None, list[tuple[Loc, str, str]]]:
    """Validate a mapping; every problem as (location, kind, message). The TUI maps the location to
    the field on screen, `parse` to a line and column."""
    found: list[tuple[Loc, str, str]] = []
    try:
        answers: Answers | None = Answers.model_validate(data)
    except ValidationError as exc:
        answers = None
        for err in exc.errors(include_url=False):
            loc = _strip_tag(tuple(err["loc"]))
            found.append((loc, err["type"], _oneline(_message(err, loc, data))))
    if answers is None:
        # Cross-key rules still apply to the sections that validated on their own.
        for name, model in (("etcd", Etcd), ("network", Network), ("docker", Docker)):
            section = data.get(name) or {}
            if not isinstance(section, dict):
                continue
            try:
                model.model_validate(section)
            except ValidationError:
                if name != "network" or "backend" not in section:
                    continue
                # A bad backend should not hide the CIDR rules, which do not depend on it.
                section = {k: v for k, v in section.items() if k != "backend"}
                try:
                    model.model_validate(section)
                except ValidationError:
                    continue
            sections: dict[str, Any] = {"etcd": Etcd(), "network": Network(), "docker": Docker()}
            sections[name] = model.model_validate(section)
            partial = Answers.model_construct(version=1, **sections)
            found.extend((loc, "rule", _oneline(msg)) for loc, msg in _semantic(partial) if loc[0] == name)
    else:
        found.extend((loc, "rule", _oneline(msg)) for loc, msg in _semantic(answers))
    return (answers if not found else None), found


def parse_data(text: str, file: str = "<answers>") -> tuple[Answers, dict[str, Any]]:
    """Parse and validate; the answers and the mapping as read. Raise AnswersInvalid listing every
    problem with its position (and the mapping, when there is one, to prefill the wizard)."""
    try:
        located = yamlpos.load(text)
    except yamlpos.YamlSyntaxError as exc:
        raise AnswersInvalid(file, [Problem(exc.pos.line, exc.pos.col, _oneline(str(exc)))]) from None
    data = located.data
    problems: list[Problem] = []
    for path, pos in located.duplicates:
        problems.append(Problem(pos.line, pos.col, f"duplicate key '{_dotted(path)}' — keep one", tuple(path)))
    if data is None:
        empty = ("standard input is empty — pipe in an answers file, e.g. `flannel-wizard validate - < "
                 "config.example.yaml`") if file == STDIN_NAME else "the file is empty — start from config.example.yaml"
        raise AnswersInvalid(file, [Problem(1, 1, empty)])
    if not isinstance(data, dict):
        raise AnswersInvalid(file, [Problem(1, 1, "the file must be a mapping of sections — start from config.example.yaml")])
    answers, found = check(data)
    for loc, kind, message in found:
        if kind == "extra_forbidden":
            pos = located.where(loc, key=True)
        elif kind == "missing":
            pos = located.where(loc[:-1])
        else:
            pos = located.where(loc)
        problems.append(Problem(pos.line, pos.col, message, loc))
    if problems:
        raise AnswersInvalid(file, list(dict.fromkeys(problems)), data)
    assert answers is not None
    return answers, data


def parse(text: str, file: str = "<answers>") -> Answers:
    """Parse and validate; raise AnswersInvalid listing every problem with its position."""
    return parse_data(text, file)[0]


def load(path: str) -> Answers:
    """Read (see `read`: type, size and encoding are checked first; `-` is standard input) and parse an
    answers file."""
    return parse(read(path), source_name(path))
