"""kube-proxy's IPVS mode: read `ipvsadm -Ln` or `ipvsadm-save -n` text and trace a service's path.

IPVS virtual servers carry no service names, so everything here goes by address: the caller turns a
service name into its addresses with the API server's own object (`spec_from_service` reads
`kubectl get service NAME -o json`), or takes the addresses the operator gives (`spec_from_address`).

What the formats are, from ipvsadm 1.31's `print_service_entry` and `list_all` (ipvsadm-save is a
shell script that runs `ipvsadm -S`):

    IP Virtual Server version 1.2.1 (size=4096)
    Prot LocalAddress:Port Scheduler Flags
      -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
    TCP  10.96.0.1:443 rr
      -> 192.168.0.2:6443             Masq    1      4          12
    TCP  10.106.7.33:6379 rr persistent 10800
    FWM  5 IPv6 rr

    -A -t 10.96.0.1:443 -s rr
    -a -t 10.96.0.1:443 -r 192.168.0.2:6443 -m -w 1
    -A -t 10.106.7.33:6379 -s rr -p 10800

A service line is "%-4s %s" (protocol, address) then the scheduler and its flags; a real server line is
"  -> %-28s %-7s %-6d %-10u %-10u" (so it ends in spaces). IPv6 addresses are `[addr]:port` in both.
The save form names no counters and writes `-g` for both direct routing and a local real server, so
the two formats give the same Table for anything kube-proxy programs (always masquerade, "Masq"/-m).

What kube-proxy programs, from pkg/proxy/ipvs/proxier.go: one virtual server per cluster IP, external IP
and load-balancer IP (× port), and per node port one on every node address but kube-ipvs0's, loopback
and IPv6 link-local left out (older kube-proxy also used 127.0.0.1); scheduler rr unless configured;
ClientIP affinity as `persistent <timeoutSeconds>`; each endpoint a real server of weight 1; an
endpoint going away keeps its real server at weight 0 until its connections end (graceful
termination). A service without endpoints keeps its virtual server with no real servers, and the
kernel (ip_vs_leave) answers a new connection to it with ICMP port unreachable: a reject, with no
iptables REJECT rule as in iptables mode. The iptables side is a handful of ipset matches in nat
KUBE-SERVICES and KUBE-NODE-PORT that mark for masquerade and ACCEPT; IPVS itself does the DNAT.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from wizard import iptables, proxypath
from wizard.proxypath import NotListing, host_port

PROTOCOLS = ("tcp", "udp", "sctp")
_HEADER = re.compile(r"IP Virtual Server version (\d+)\.(\d+)\.(\d+) \(size=(\d+)\)$")
_TITLE = "Prot LocalAddress:Port Scheduler Flags"
_TITLE_DEST = "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
# the other listings ipvsadm prints under the same first title word: readable, but without the
# scheduler or weights a trace needs
_OTHER_TITLES = {
    "Conns": "ipvsadm -Ln --stats",
    "CPS": "ipvsadm -Ln --rate",
    "Uthreshold": "ipvsadm -Ln --thresholds",
    "Weight": "ipvsadm -Ln --persistent-conn",
}
_SERVICE = re.compile(r"(TCP|UDP|SCTP) +(\S+) (\S+)(.*)$")
_FWM = re.compile(r"FWM +(\d+)( IPv6)? (\S+)(.*)$")
_DEST = re.compile(r"  -> (\S+) +(Masq|Local|Tunnel|Route) +(-?\d+) +(\d+) +(\d+) *$")
_FORWARD_SWITCH = {"-m": "Masq", "-g": "Route", "-i": "Tunnel"}
_SAVE_KIND = {"-t": "tcp", "-u": "udp", "--sctp-service": "sctp", "-f": "fwm"}


class NotIpvsadm(NotListing):
    """Not `ipvsadm -Ln` or `ipvsadm -S -n` output."""


@dataclass
class RealServer:
    ip: str
    port: int
    forward: str  # Masq, Route, Tunnel, Local (-Ln); the save form says Route for Local too
    weight: int
    active: int | None = field(default=None, compare=False)  # ActiveConn; None from ipvsadm-save
    inactive: int | None = field(default=None, compare=False)  # InActConn
    line: int = field(default=0, compare=False)

    @property
    def address(self) -> str:
        return host_port(self.ip, self.port)


@dataclass
class VirtualServer:
    protocol: str  # tcp, udp, sctp; "fwm" for a firewall-mark service
    ip: str | None  # None for fwm
    port: int | None  # None for fwm
    scheduler: str
    family: int  # 4 or 6
    fwmark: int | None = None
    persistent: int | None = None  # the persistence timeout in seconds: ClientIP affinity
    netmask: str | None = None  # persistence granularity, when not the whole address
    flags: list[str] = field(default_factory=list)  # anything else: "ops", "pe sip", "flag-1"
    real_servers: list[RealServer] = field(default_factory=list)
    line: int = field(default=0, compare=False)

    @property
    def address(self) -> str:
        """`10.96.0.10:53/udp`, `[fd00::10]:53/udp`, `fwmark 5`: as explain-service lists it."""
        if self.ip is None:
            return f"fwmark {self.fwmark}" + (" IPv6" if self.family == 6 else "")
        return f"{host_port(self.ip, self.port or 0)}/{self.protocol}"

    @property
    def entry(self) -> str:
        """The virtual server as a branch's entry: `virtual server TCP 10.96.0.10:53 rr`."""
        if self.ip is None:
            return f"virtual server {self.address} {self.scheduler}"
        return f"virtual server {self.protocol.upper()} {host_port(self.ip, self.port or 0)} {self.scheduler}"

    @property
    def live(self) -> list[RealServer]:
        """The real servers a new connection can get: a scheduler skips weight 0 (ip_vs_rr.c and
        the others test `weight > 0`)."""
        return [rs for rs in self.real_servers if rs.weight > 0]


@dataclass
class Table:
    virtual_servers: list[VirtualServer] = field(default_factory=list)
    source: str = field(default="", compare=False)  # "ipvsadm -Ln" or "ipvsadm-save -n"
    version: str | None = field(default=None, compare=False)  # the kernel's IPVS version (-Ln only)

    def find(self, protocol: str, ip: str, port: int) -> VirtualServer | None:
        ip = _canonical(ip)
        for vs in self.virtual_servers:
            if vs.protocol == protocol and vs.ip == ip and vs.port == port:
                return vs
        return None


# ---------------------------------------------------------------- reading the text

def looks_like(text: str) -> bool:
    """Whether `text` is ipvsadm's listing (`ipvsadm -Ln`, any of its title forms) or save form, by its
    first line; cheap, so a caller can try each reader in turn."""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        if _HEADER.match(line) or line.startswith("Prot LocalAddress:Port"):
            return True
        words = line.split()
        return len(words) >= 3 and words[0] == "-A" and words[1] in _SAVE_KIND
    return False


def parse(text: str) -> Table:
    """`ipvsadm -Ln` or `ipvsadm-save -n` (`ipvsadm -S -n`) text into a Table; both forms of the same
    state give equal Tables. Empty text is an empty table (ipvsadm-save prints nothing for one)."""
    lines = text.splitlines()
    first = next((n for n, raw in enumerate(lines) if raw.strip()), None)
    if first is None:
        return Table(source="ipvsadm-save -n")
    if lines[first].startswith("-"):
        return _parse_save(lines)
    return _parse_list(lines)


def _parse_list(lines: list[str]) -> Table:
    table = Table(source="ipvsadm -Ln")
    titled = False
    current: VirtualServer | None = None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not titled:
            header = _HEADER.match(line.strip())
            if header and table.version is None and not table.virtual_servers and n == _first_line(lines):
                table.version = ".".join(header.group(1, 2, 3))
                continue
            if line.startswith("Prot LocalAddress:Port"):
                words = line.split()  # Prot, LocalAddress:Port, then the first column's title
                if len(words) > 2 and words[2] in _OTHER_TITLES:
                    raise NotIpvsadm(n, f"this is {_OTHER_TITLES[words[2]]} output, which shows no scheduler or "
                                        "weights: save plain `ipvsadm -Ln` (or `ipvsadm-save -n`)")
                if line.rstrip() != _TITLE:
                    raise NotIpvsadm(n, f"unexpected title {line.strip()!r}: expected {_TITLE!r}")
                continue
            if line.rstrip() == _TITLE_DEST:
                titled = True
                continue
            if "TunnelInfo" in line:
                raise NotIpvsadm(n, "this is ipvsadm -Ln --tun-info output: save plain `ipvsadm -Ln`")
            raise NotIpvsadm(n, f"expected ipvsadm's title lines, got {line.strip()[:60]!r}")
        if line.startswith("  -> "):
            if current is None:
                raise NotIpvsadm(n, "a real server line before any virtual server line")
            current.real_servers.append(_list_dest(n, line, current))
            continue
        current = _list_service(n, line)
        table.virtual_servers.append(current)
    if not titled:
        raise NotIpvsadm(len(lines), "it ends before ipvsadm's title lines: a listing cut short?")
    return table


def _first_line(lines: list[str]) -> int:
    return next(n for n, raw in enumerate(lines, start=1) if raw.strip())


def _list_service(n: int, line: str) -> VirtualServer:
    fwm = _FWM.match(line)
    if fwm:
        family = 6 if fwm.group(2) else 4
        vs = VirtualServer("fwm", None, None, fwm.group(3), family, fwmark=int(fwm.group(1)), line=n)
        _list_flags(n, fwm.group(4), vs)
        return vs
    found = _SERVICE.match(line)
    if not found:
        raise NotIpvsadm(n, f"not a virtual server or real server line: {line.strip()[:60]!r}")
    protocol, address, scheduler, rest = found.groups()
    ip, port, family = _address(n, address)
    vs = VirtualServer(protocol.lower(), ip, port, scheduler, family, line=n)
    _list_flags(n, rest, vs)
    return vs


def _list_flags(n: int, text: str, vs: VirtualServer) -> None:
    """`(flag-1,flag-2) persistent 10800 mask 255.255.255.0 pe sip ops`, each part optional."""
    words = text.split()
    i = 0
    while i < len(words):
        word = words[i]
        value = words[i + 1] if i + 1 < len(words) else None
        if word.startswith("(") and word.endswith(")"):
            vs.flags.append(word[1:-1])
        elif word == "persistent" and value is not None and value.isdigit():
            vs.persistent = int(value)
            i += 1
        elif word in ("mask", "pe") and value is not None:
            if word == "mask":
                vs.netmask = value
            else:
                vs.flags.append(f"pe {value}")
            i += 1
        elif word == "ops":
            vs.flags.append("ops")
        else:
            raise NotIpvsadm(n, f"unknown virtual server flag {word!r} (ipvsadm prints persistent N, mask M, "
                                "pe NAME, ops)")
        i += 1


def _list_dest(n: int, line: str, vs: VirtualServer) -> RealServer:
    found = _DEST.match(line)
    if not found:
        raise NotIpvsadm(n, "a real server line without its five columns (address, forward, weight, "
                            f"active and inactive connections): {line.strip()[:60]!r}")
    address, forward, weight, active, inactive = found.groups()
    ip, port, _ = _address(n, address)  # its family is not checked: IPVS lets a real server differ
    return RealServer(ip, port, forward, int(weight), int(active), int(inactive), line=n)


def _parse_save(lines: list[str]) -> Table:
    table = Table(source="ipvsadm-save -n")
    services: dict[tuple[str, str], VirtualServer] = {}
    for n, raw in enumerate(lines, start=1):
        words = raw.split()
        if not words:
            continue
        if words[0] not in ("-A", "-a") or len(words) < 3 or words[1] not in _SAVE_KIND:
            raise NotIpvsadm(n, f"not an ipvsadm-save line (-A or -a, then -t, -u, --sctp-service or -f): "
                                f"{raw.strip()[:60]!r}")
        kind = _SAVE_KIND[words[1]]
        key_words = words[1:3]
        rest = words[3:]
        if kind == "fwm" and rest[:1] == ["-6"]:
            key_words, rest = words[1:4], words[4:]
        key = (kind, " ".join(key_words[1:]))
        options = _save_options(n, rest)
        if words[0] == "-A":
            if key in services:
                raise NotIpvsadm(n, f"virtual server {key[1]} is added twice")
            scheduler = options.pop("-s", None)
            if scheduler is None:
                raise NotIpvsadm(n, "a virtual server without its scheduler (-s)")
            if kind == "fwm":
                if not key_words[1].isdigit():
                    raise NotIpvsadm(n, f"firewall mark {key_words[1]!r} is not a number")
                vs = VirtualServer("fwm", None, None, scheduler, 6 if "-6" in key_words else 4,
                                   fwmark=int(key_words[1]), line=n)
            else:
                ip, port, family = _address(n, key_words[1])
                vs = VirtualServer(kind, ip, port, scheduler, family, line=n)
            timeout = options.pop("-p", None)
            if timeout is not None:
                if not timeout.isdigit():
                    raise NotIpvsadm(n, f"persistence timeout {timeout!r} is not a number")
                vs.persistent = int(timeout)
            vs.netmask = options.pop("-M", None)
            for name in ("--pe", "pe"):
                if name in options:
                    vs.flags.append(f"pe {options.pop(name)}")
            if "-b" in options:
                vs.flags.append(options.pop("-b"))
            if options.pop("-o", None) is not None or options.pop("ops", None) is not None:
                vs.flags.append("ops")
            if options:
                raise NotIpvsadm(n, f"unknown virtual server option {next(iter(options))}")
            services[key] = vs
            table.virtual_servers.append(vs)
            continue
        vs = services.get(key)
        if vs is None:
            raise NotIpvsadm(n, f"a real server for virtual server {key[1]}, which no -A line before it adds")
        target = options.pop("-r", None)
        if target is None:
            raise NotIpvsadm(n, "a real server line without its address (-r)")
        ip, port, _ = _address(n, target)
        forward = next((_FORWARD_SWITCH[s] for s in _FORWARD_SWITCH if options.pop(s, None) is not None), None)
        weight = options.pop("-w", None)
        if forward is None or weight is None or not weight.lstrip("-").isdigit():
            raise NotIpvsadm(n, "a real server line without its forwarding switch (-m, -g, -i) and weight (-w N)")
        vs.real_servers.append(RealServer(ip, port, forward, int(weight), line=n))
    return table


def _save_options(n: int, words: list[str]) -> dict[str, str]:
    """`-s rr -p 10800 -M 255.255.255.0` into {option: value}; switches without a value map to ""."""
    switches = {"-m", "-g", "-i", "-o", "ops"}
    valued = {"-s", "-p", "-M", "--pe", "pe", "-b", "-r", "-w", "--tun-type", "--tun-port"}
    options: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in switches:
            options[word] = ""
        elif word in valued and i + 1 < len(words):
            options[word] = words[i + 1]
            i += 1
        elif word in ("--tun-nocsum", "--tun-csum", "--tun-remcsum"):
            pass  # how a tunnel checksums: nothing a trace needs
        else:
            raise NotIpvsadm(n, f"unknown or incomplete option {word!r}")
        i += 1
    options.pop("--tun-type", None)
    options.pop("--tun-port", None)
    return options


def _address(n: int, text: str) -> tuple[str, int, int]:
    """(ip, port, family) from `ip:port` or `[ip6]:port`; a host or port name (ipvsadm without -n)
    is refused, since names say nothing a trace can match."""
    ip, port = proxypath.split_host_port(text)
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        raise NotIpvsadm(n, f"{text!r} is not an address: save the table with -n (numeric), as "
                            "`ipvsadm -Ln` or `ipvsadm-save -n`") from None
    if port and not port.isdigit():
        raise NotIpvsadm(n, f"port {port!r} of {text!r} is a name, not a number: save the table with -n")
    if not port:
        raise NotIpvsadm(n, f"{text!r} has no port")
    if int(port) > 65535:
        raise NotIpvsadm(n, f"port {port} of {text!r} is out of range")
    return str(parsed), int(port), parsed.version


def _canonical(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


# ---------------------------------------------------------------- what kube-proxy is in this mode

def detect(table: Table) -> bool:
    """kube-proxy's IPVS mode is present: IPVS has any virtual server."""
    return bool(table.virtual_servers)


def services_in(table: Table) -> list[str]:
    """Every virtual server's address, in ipvsadm's order, once each."""
    return list(dict.fromkeys(vs.address for vs in table.virtual_servers))


def service_ports(table: Table) -> list[proxypath.ServicePort]:
    """One row per virtual server for `explain-service --list`. IPVS knows no service names, so the
    service column is the address itself; which addresses are node ports IPVS does not say either."""
    rows = []
    for vs in table.virtual_servers:
        rows.append(proxypath.ServicePort(
            service=vs.address, port="", addresses=[vs.address],
            endpoints=[rs.address for rs in vs.live], rejected=not vs.live))
    return rows


# ---------------------------------------------------------------- what the API server says

@dataclass(frozen=True)
class SpecPort:
    name: str  # "" when unnamed
    protocol: str  # tcp, udp, sctp
    port: int
    node_port: int | None = None


@dataclass
class ServiceSpec:
    """A service's addresses as kube-proxy reads them from the API server, or as an operator gives one."""

    namespace: str  # "" for an address given by hand
    name: str
    ports: list[SpecPort] = field(default_factory=list)
    cluster_ips: list[str] = field(default_factory=list)  # both families on a dual-stack service
    external_ips: list[str] = field(default_factory=list)
    load_balancer_ips: list[str] = field(default_factory=list)  # status.loadBalancer.ingress[].ip
    session_affinity: str | None = None  # "ClientIP"
    affinity_timeout: int | None = None  # seconds, with ClientIP

    @property
    def service(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def families(self) -> list[int]:
        return sorted({_family(ip) for ip in self.cluster_ips + self.external_ips + self.load_balancer_ips})


def _family(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def spec_from_service(obj: dict) -> ServiceSpec:
    """The ServiceSpec of `kubectl get service NAME -o json` (a List of exactly one Service is taken
    too, as `kubectl get service -l … -o json` gives)."""
    if obj.get("kind") == "List":
        items = obj.get("items") or []
        if len(items) != 1:
            raise ValueError(f"a List of {len(items)} objects: give one service (kubectl get service NAME -o json)")
        obj = items[0]
    if obj.get("kind") not in (None, "Service"):
        raise ValueError(f"a {obj.get('kind')}, not a Service")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not meta.get("name"):
        raise ValueError("the object has no metadata.name: not a Service from the API server")
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    # a headless service ("None") and an ExternalName one get no virtual server at all
    cluster_ips = [_checked_ip(ip, "spec.clusterIPs") for ip in ips if ip and ip != "None"]
    ports = []
    for i, port in enumerate(spec.get("ports") or []):
        try:
            number = int(port["port"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"spec.ports[{i}] has no port number") from None
        node_port = port.get("nodePort")
        ports.append(SpecPort(port.get("name") or "", str(port.get("protocol") or "TCP").lower(), number,
                              int(node_port) if node_port else None))
    affinity = spec.get("sessionAffinity")
    timeout = None
    if affinity == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        timeout = int(config.get("timeoutSeconds") or 10800)  # the API server's default
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    return ServiceSpec(
        namespace=meta.get("namespace") or "default",
        name=meta["name"],
        ports=ports,
        cluster_ips=cluster_ips,
        external_ips=[_checked_ip(ip, "spec.externalIPs") for ip in spec.get("externalIPs") or []],
        load_balancer_ips=[_checked_ip(i["ip"], "status.loadBalancer.ingress") for i in ingress if i.get("ip")],
        session_affinity=affinity if affinity == "ClientIP" else None,
        affinity_timeout=timeout,
    )


def _checked_ip(text: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an IP address") from None


def spec_from_address(text: str) -> ServiceSpec:
    """A ServiceSpec for an address the operator gives instead of a name: `10.96.0.10:53/udp`,
    `[fd00::10]:53/udp`, `10.96.0.1:443` (tcp when no protocol is given). It is traced as a cluster
    IP: which kind of address it is, only the API server knows."""
    original = text
    text = text.strip()
    address, _, protocol = text.partition("/")
    protocol = (protocol or "tcp").lower()
    example = "give it as IP:PORT[/PROTOCOL], e.g. 10.96.0.10:53/udp or [fd00::10]:53/udp"
    if protocol not in PROTOCOLS:
        raise ValueError(f"{original!r}: protocol {protocol!r} is not tcp, udp or sctp; {example}")
    if address.count(":") > 1 and not address.startswith("["):
        raise ValueError(f"{original!r}: an IPv6 address needs brackets before its port; {example}")
    ip, port = proxypath.split_host_port(address)
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        raise ValueError(f"{original!r}: {ip!r} is not an IP address; {example}") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{original!r}: {'no port' if not port else f'port {port!r} is not 1-65535'}; {example}")
    name = f"{host_port(ip, port)}/{protocol}"
    return ServiceSpec("", name, ports=[SpecPort("", protocol, int(port))], cluster_ips=[ip])


# ---------------------------------------------------------------- the path

_KINDS = {"cluster IP": "cluster_ips", "external IP": "external_ips", "load balancer": "load_balancer_ips"}


def trace(table: Table, spec: ServiceSpec, iptables_rules: iptables.Ruleset | None = None,
          node_ips: list[str] | None = None) -> proxypath.Path:
    """The service's path through IPVS: a branch per address kind × port × family, each virtual
    server's real servers as its endpoints; a refusal where a virtual server has no real server
    to give a new connection. `iptables_rules` (the nat table of iptables-save, or ip6tables-save for
    IPv6) adds the ipset rules kube-proxy writes for each kind; `node_ips` says which addresses are
    the node's, which IPVS cannot (otherwise every address with the node port that is none of the
    service's own counts)."""
    path = proxypath.Path(service=spec.service, mode="ipvs")
    by_address = not spec.namespace  # an address given by hand: what kind of address it is is not known
    if by_address:
        iptables_rules = None  # which of kube-proxy's ipset rules apply depends on that kind
    own_ips = {ip for attr in _KINDS.values() for ip in getattr(spec, attr)}
    nodes = {_canonical(ip) for ip in node_ips} if node_ips is not None else None
    for port in spec.ports:
        for kind, attr in _KINDS.items():
            for ip in getattr(spec, attr):
                vs = table.find(port.protocol, ip, port.port)
                _add(path, kind, vs, [vs] if vs else [], spec, port, ip, _family(ip), iptables_rules, nodes)
        if port.node_port is None:
            continue
        # kube-proxy runs one proxier per family, and each gives node ports to the services of its family
        families = sorted({_family(ip) for ip in spec.cluster_ips}) or sorted(
            {vs.family for vs in table.virtual_servers})
        for family in families:
            found = [vs for vs in table.virtual_servers
                     if vs.protocol == port.protocol and vs.port == port.node_port and vs.family == family
                     and vs.ip not in own_ips and (nodes is None or vs.ip in nodes)]
            _add(path, "node port", found[0] if found else None, found, spec, port, None, family,
                 iptables_rules, nodes)
    if by_address:
        for branch in path.branches:
            branch.kind = "address"
            branch.notes.append("a cluster IP, a node's address (node port), an external or a load-balancer IP: "
                                "only the API server says which, and so which of kube-proxy's ipset rules apply "
                                "(give the service's name and --kubeconfig to see them)")
        for refusal in path.refusals:
            refusal.kind = "address"
    return path


def _add(path: proxypath.Path, kind: str, vs: VirtualServer | None, each: list[VirtualServer],
         spec: ServiceSpec, port: SpecPort, ip: str | None, family: int,
         rules: iptables.Ruleset | None, nodes: set[str] | None) -> None:
    number = port.node_port if kind == "node port" else port.port
    branch = proxypath.Branch(kind=kind, ip=ip, port=number, protocol=port.protocol, family=family,
                              entry=vs.entry if vs else "no virtual server", line=vs.line if vs else None)
    if kind == "node port" and vs is not None:
        branch.entry = f"virtual servers {port.protocol.upper()} <node address>:{number} {vs.scheduler}"
        branch.notes.append("on node addresses " + ", ".join(
            f"{v.ip} (line {v.line})" if v.line else str(v.ip) for v in each))
        if nodes is None:
            branch.notes.append("IPVS does not say which addresses are the node's: these are every address "
                                "with this port that is none of the service's own")
        differ = [v for v in each[1:] if v.real_servers != vs.real_servers or v.persistent != vs.persistent]
        for v in differ:
            branch.notes.append(f"{host_port(v.ip or '', number or 0)} has other real servers: "
                                + (", ".join(rs.address for rs in v.real_servers) or "none"))
    if vs is None:
        where = f"{port.protocol.upper()} {branch.address.rsplit('/', 1)[0]}"
        if kind == "node port":
            where = f"{port.protocol.upper()} port {number} on any node address" + (
                " given" if nodes is not None else "")
        branch.notes.append(f"IPVS has no virtual server {where}: kube-proxy has not programmed it "
                            "(is it running, in IPVS mode, on this node?)")
        path.branches.append(branch)
        return
    if vs.persistent is not None:
        branch.affinity = f"ClientIP, {vs.persistent} s" + (f", mask {vs.netmask}" if vs.netmask else "")
    wanted = f"ClientIP, {spec.affinity_timeout} s" if spec.session_affinity == "ClientIP" else ""
    if spec.namespace and wanted != branch.affinity.split(", mask")[0]:
        branch.notes.append(f"the Service asks for session affinity {wanted or 'None'}, but the virtual server "
                            f"has {branch.affinity or 'none'}: kube-proxy has not caught up with the Service")
    branch.notes += _iptables_notes(rules, kind, family, port.protocol)
    branch.endpoints = _endpoints(vs)
    if not vs.live:
        where = f"IPVS {vs.entry}"
        if kind == "node port":
            where = f"IPVS {branch.entry}"
        if vs.real_servers:
            text = ("every real server has weight 0 (their endpoints are terminating): the connections they have "
                    "go on, a new one gets ICMP port unreachable")
        else:
            text = "no real server (the service has no endpoints): a new connection gets ICMP port unreachable"
        path.refusals.append(proxypath.Refusal(kind=kind, address=branch.address, verdict="reject", where=where,
                                               text=text, line=vs.line))
        if not vs.real_servers:
            return  # nothing to draw under it: the refusal says it all, as a REJECT does in iptables mode
    path.branches.append(branch)


def _endpoints(vs: VirtualServer) -> list[proxypath.Endpoint]:
    """Each real server with its share of new connections. rr takes the live ones in turn whatever
    their weights; the weighted schedulers share by weight; the others (lc, sh, dh…) pick by
    connections or hash, where weight over total weight is the best estimate there is."""
    live = vs.live
    total = sum(rs.weight for rs in live)
    endpoints = []
    for rs in vs.real_servers:
        if rs.weight <= 0:
            share = 0.0
        elif vs.scheduler == "rr":
            share = 1 / len(live)
        else:
            share = rs.weight / total
        pick = f"{vs.scheduler}, weight {rs.weight}"
        if rs.weight <= 0:
            pick += ", draining: no new connections" + (f", {rs.active} active left" if rs.active else "")
        if rs.forward != "Masq":
            pick += f", {rs.forward.lower()} (not masquerade)"
        endpoints.append(proxypath.Endpoint(address=rs.address, share=share, via="real server", pick=pick,
                                            line=rs.line or None))
    return endpoints


# ---------------------------------------------------------------- the iptables rules kube-proxy adds

# the ipsets kube-proxy matches for each way in (proxier.go's ipsetWithIptablesChain and
# writeIptablesRules); IPv6 sets are named KUBE-6-… (ipset.go's NewIPSet)
_SETS: dict[str, tuple[str, ...]] = {
    "cluster IP": ("KUBE-CLUSTER-IP",),
    "external IP": ("KUBE-EXTERNAL-IP", "KUBE-EXTERNAL-IP-LOCAL"),
    "load balancer": ("KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER-LOCAL"),
}
_NODE_PORT_SETS = {
    "tcp": ("KUBE-NODE-PORT-TCP", "KUBE-NODE-PORT-LOCAL-TCP"),
    "udp": ("KUBE-NODE-PORT-UDP", "KUBE-NODE-PORT-LOCAL-UDP"),
    "sctp": ("KUBE-NODE-PORT-SCTP-HASH", "KUBE-NODE-PORT-LOCAL-SCTP-HASH"),
}
_WHY = {
    "ACCEPT": "lets it on to IPVS, which does the DNAT",
    "KUBE-MARK-MASQ": "marks it for masquerade in KUBE-POSTROUTING",
    "KUBE-LOAD-BALANCER": "goes on to KUBE-LOAD-BALANCER",
    "KUBE-NODE-PORT": "traffic to a node address goes on to KUBE-NODE-PORT",
    "RETURN": "externalTrafficPolicy=Local: not masqueraded, the client's address is kept",
}


def _set_name(name: str, family: int) -> str:
    return name.replace("KUBE-", "KUBE-6-", 1)[:31] if family == 6 else name


def _iptables_notes(rules: iptables.Ruleset | None, kind: str, family: int, protocol: str) -> list[str]:
    """The nat rules kube-proxy wrote for this way in, in the order a packet meets them: KUBE-SERVICES,
    and the chain a rule there sends it on to right after that rule."""
    if rules is None:
        return []
    names = _NODE_PORT_SETS.get(protocol, ()) if kind == "node port" else _SETS[kind]
    sets = {_set_name(name, family) for name in names}
    tool = "ip6tables" if family == 6 else "iptables"
    given = _dump_family(rules)
    if given is not None and given != family:
        other = "ip6tables" if given == 6 else "iptables"
        return [f"the rules given are {other}-save's (IPv{given}); IPv{family}'s are in {tool}-save: not checked"]
    notes: list[str] = []
    matched = marks = False
    for rule in rules.rules("nat", "KUBE-SERVICES"):
        if rule.option("--match-set") in sets:
            matched = True
        elif not (kind == "node port" and rule.target == "KUBE-NODE-PORT"):
            continue
        marks = marks or rule.target == "KUBE-MARK-MASQ"
        notes.append(_note(tool, "KUBE-SERVICES", rule))
        if rule.target not in ("KUBE-NODE-PORT", "KUBE-LOAD-BALANCER"):
            continue
        for then in rules.rules("nat", rule.target):
            # KUBE-LOAD-BALANCER marks everything it gets; KUBE-NODE-PORT's rules each match a set
            if then.option("--match-set") in sets or (rule.target == "KUBE-LOAD-BALANCER" and
                                                       "--match-set" not in then.args):
                matched = matched or "--match-set" in then.args
                marks = marks or then.target == "KUBE-MARK-MASQ"
                notes.append(_note(tool, rule.target, then))
    if not matched:
        return [f"{tool}-save nat has no rule matching ipset {' or '.join(sorted(sets))}: kube-proxy's "
                "IPVS-mode iptables rules are missing (is kube-proxy running in IPVS mode? IPv4 rules are "
                "in iptables-save, IPv6 ones in ip6tables-save)"]
    if marks:
        for rule in rules.rules("nat", "KUBE-POSTROUTING"):
            if rule.target == "MASQUERADE" and "--match-set" not in rule.args:
                notes.append(_note(tool, "KUBE-POSTROUTING", rule, "masquerades what was marked"))
    return notes


def _dump_family(rules: iptables.Ruleset) -> int | None:
    """Which family's dump this is, by the ipsets its KUBE-SERVICES matches (IPv6's are KUBE-6-…)."""
    for rule in rules.rules("nat", "KUBE-SERVICES"):
        name = rule.option("--match-set")
        if name and name.startswith("KUBE-"):
            return 6 if name.startswith("KUBE-6-") else 4
    return None


def _note(tool: str, chain: str, rule: iptables.Rule, why: str | None = None) -> str:
    why = _WHY.get(rule.target, "") if why is None else why
    shown = " ".join(_without_comment(rule.args))
    return f"{tool} nat {chain}, line {rule.line}: {shown}" + (f" ({why})" if why else "")


def _without_comment(args: Iterable[str]) -> list[str]:
    """The rule's words without `-m comment --comment "…"`: the comment is kube-proxy's description of
    the ipset, longer than the rule and saying less than the note's own explanation."""
    words = list(args)
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] == "-m" and i + 1 < len(words) and words[i + 1] == "comment":
            i += 2
            if i < len(words) and words[i] == "--comment":
                i += 2
            continue
        out.append(words[i])
        i += 1
    return out
