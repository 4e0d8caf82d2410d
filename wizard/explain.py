"""explain-service's engine: trace a service through kube-proxy's rules, in whichever mode kube-proxy
runs (iptables, nftables, IPVS; IPv4, IPv6 and dual-stack), and name what each endpoint is.

`explain()` returns a typed `Explanation` (the path as `proxypath.Path`, a label per endpoint, the
outcome, the hint, warnings), `list_services()` a typed `Listing`; front ends only render them. The mode
is the one `--mode` forces, else kube-proxy's ConfigMap's (given a kubeconfig), else the one whose rules
are present. It reaches the machine only through the node: iptables-save, ip6tables-save, nft, ipvsadm
and kubectl through `node.commands` (each with a timeout), flannel's leases through `node.etcd(...)`.
Saved dumps are read by `read_dump` (a file, or standard input for `-`); `read_texts` tells each one's
format by its look (iptables-save, `nft list ruleset`, ipvsadm).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from wizard import iptables, proxypath
from wizard.errors import InputError, Interrupted, WizardError
from wizard.proxypath import MODES, Mode, Path, ServicePort

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node import Node

Outcome = Literal["path", "no-endpoints", "no-rules"]
EXIT_CODES: dict[Outcome, int] = {"path": 0, "no-endpoints": 1, "no-rules": 1}
LIVE = "the live rules (iptables-save)"
# a nat table of 50,000 services with a few endpoints each is ~40 MiB; parsing it takes seconds, not minutes
MAX_DUMP_BYTES = 64 << 20
DUMP = "a dump of kube-proxy's rules"


def read_dump(path: str) -> tuple[str, str]:
    """The text of a saved dump and its name in messages (`<stdin>` for `-`), read like an answers file:
    a regular file or standard input, at most MAX_DUMP_BYTES. Bytes that are not UTF-8 (in a comment)
    are replaced: they cannot name a chain kube-proxy made."""
    if path != "-":
        data = _regular_file(path, MAX_DUMP_BYTES)
        if data is not None:
            return str(data, "utf-8", "replace"), path
    from wizard.inputs import Refused, read_input, source_name

    name = source_name(path)
    try:
        data = read_input(path, MAX_DUMP_BYTES, DUMP)
    except Refused as exc:
        fix = exc.fix
        if "named pipe" in exc.what or "character device" in exc.what:  # --from <(ssh node2 iptables-save)
            fix = "pipe it in instead: `iptables-save | flannel-wizard explain-service NAME --from -`"
        raise InputError(f"{name}: {exc.what}", fix) from None
    return data.decode("utf-8", errors="replace"), name


def _regular_file(path: str, limit: int) -> memoryview | None:
    """The bytes of a regular file of at most `limit` bytes, checked and opened as `read_input` does
    (stat first: a FIFO is never opened), read into one buffer: without importing wizard.answers, whose
    pydantic costs a trace a tenth of a second, and without a second copy of a big dump. None for
    anything else (no such file, a FIFO, a device, too big, it changed meanwhile): `read_input` then
    reads it or refuses it with its messages."""
    import os
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        buffer = memoryview(bytearray(info.st_size + 1))  # a byte more: a file that grew meanwhile shows
        got = 0
        while got < len(buffer):
            n = os.readv(fd, [buffer[got:]])
            if n == 0:
                break
            got += n
    except OSError:
        return None
    finally:
        os.close(fd)
    return buffer[:got] if got <= info.st_size else None


def service_ref(name: str, namespace: str | None) -> tuple[str, str]:
    """(namespace, name) from NAME or NAMESPACE/NAME (as kubectl and kube-proxy's comments write it) and
    -n (None when not given; the namespace is then `default`). A NAMESPACE/NAME that -n contradicts is
    an InputError, as is a name with an empty part."""
    if is_address(name):  # IPVS mode's virtual servers are found by address: no namespace to split off
        return namespace or "default", name
    if "/" not in name:
        if not name:
            raise InputError("the service name is empty", "give NAME or NAMESPACE/NAME, e.g. default/example-service")
        return namespace or "default", name
    ns, _, bare = name.partition("/")
    if not ns or not bare or "/" in bare:
        raise InputError(f"{name!r} is not NAME or NAMESPACE/NAME", "give it like default/example-service")
    if namespace is not None and namespace != ns:
        raise InputError(f"{name} is in namespace {ns}, but -n says {namespace}",
                         f"drop -n, or give the name alone: `{bare} -n {namespace}`")
    return ns, bare


def _machine(node: Node | None) -> Node:
    """The node, for what a saved dump does not hold (the live rules, pod names, leases)."""
    if node is None:
        raise TypeError("no node given: it reads the live rules, and asks kubectl and etcd for labels")
    return node


# ---------------------------------------------------------------- the texts a trace reads

Format = Literal["iptables", "nftables", "ipvs"]
# what each format is called, and how to save it, in messages
SAVE = {"iptables": "iptables-save", "nftables": "nft list ruleset", "ipvs": "ipvsadm -S -n"}


@dataclass
class Reading:
    """One text of rules, parsed: a saved dump or a live listing."""

    format: Format
    source: str  # its name in messages: a file, `<stdin>`, or LIVE / live(...)
    text: str
    parsed: Any  # iptables.Ruleset, nftables.Ruleset or ipvs.Table
    family: int | None = None  # iptables: 4 (iptables-save) or 6 (ip6tables-save), when known
    ipvs_style: bool = False  # iptables: IPVS mode's rules (ipset matches), not iptables mode's


def live(command: str) -> str:
    return f"the live rules ({command})"


def detect_format(text: str) -> Format | Literal["nft-json"]:
    """Which tool printed `text`: nft (its listing, or its JSON), ipvsadm, else iptables-save (whose
    reader then says what is wrong with text that is none of them)."""
    head = text.lstrip()[:4096]
    if head.startswith("{") and '"nftables"' in head:
        return "nft-json"
    if _NFT_TABLE.search(head):
        return "nftables"
    if _IPVS_HEAD.search(head):
        return "ipvs"
    return "iptables"


_NFT_TABLE = re.compile(r"^\s*table\s+(?:ip|ip6|inet|arp|bridge|netdev)\s+\S+\s*\{", re.MULTILINE)
_IPVS_HEAD = re.compile(r"^(?:IP Virtual Server version|Prot LocalAddress:Port|-A -[tuf] )", re.MULTILINE)


def _family_of(text: str) -> int | None:
    """4 or 6 from iptables-save's own header line, None without one."""
    head = text[:512]
    if "# Generated by ip6tables-save" in head:
        return 6
    if "# Generated by iptables-save" in head:
        return 4
    return None


def _segments(text: str) -> list[str]:
    """`iptables-save; ip6tables-save` saved to one file: one text per header line (a family each).
    Found with str.find: a multi-line regex over a dump of tens of MiB cost a trace a tenth of a second."""
    starts = []
    at = text.find("# Generated by ip")
    while at != -1:
        rest = text[at + 17:at + 29]
        if (at == 0 or text[at - 1] == "\n") and (rest.startswith("tables-save") or rest.startswith("6tables-save")):
            starts.append(at)
        at = text.find("# Generated by ip", at + 1)
    if len(starts) < 2:
        return [text]
    starts[0] = 0
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def _read(format: Format, text: str, source: str, family: int | None = None) -> Reading:
    """Parse one text in its format; InputError naming the source for text its tool would not print."""
    save = SAVE[format]
    if format == "nftables":
        from wizard import nftables

        try:
            return Reading(format, source, text, nftables.parse(text))
        except nftables.CutOff as exc:
            raise InputError(f"{source} is cut off at line {exc.line}: {exc.why}",
                             f"save the whole listing again (`{save} > FILE`)") from None
        except nftables.NotNftRuleset as exc:
            raise InputError(f"{source} is not `{save}` output: {exc}", f"save it with `{save} > FILE`") from None
    if format == "ipvs":
        from wizard import ipvs

        try:
            return Reading(format, source, text, ipvs.parse(text))
        except ipvs.NotIpvsadm as exc:
            raise InputError(f"{source} is not ipvsadm output: {exc}", f"save it with `{save} > FILE`") from None
    try:
        return Reading(format, source, text, iptables.parse(text), family or _family_of(text), _ipvs_rules(text))
    except iptables.CutOff as exc:
        raise InputError(f"{source} is cut off at line {exc.line}: {exc.why}",
                         "save the whole dump again (`iptables-save > FILE`); the part missing may hold the "
                         "rules asked about, so a cut-off dump is not traced") from None
    except iptables.NotIptablesSave as exc:
        raise InputError(f"{source} is not iptables-save output: {exc}", "save it with `iptables-save > FILE`") from None


def read_texts(dumps: list[tuple[str, str]]) -> list[Reading]:
    """Each saved dump (text, name) in the format it is in; `iptables-save; ip6tables-save` in one file
    gives a reading per family."""
    out = []
    for text, source in dumps:
        format = detect_format(text)
        if format == "nft-json":
            raise InputError(f"{source} is `nft -j` JSON", "save the listing as text instead: `nft list ruleset > FILE`")
        if format == "iptables":
            out += [_read("iptables", part, source) for part in _segments(text)]
        else:
            out.append(_read(format, text, source))
    return out


def _run(node: Node, *argv: str) -> str | None:
    """A listing command's output; None when the tool is not installed (exit 127)."""
    result = node.commands.run(*argv, timeout=15)
    if result.rc == 127:
        return None
    if not result.ok:
        raise WizardError(f"{argv[0]} failed: {(result.err or result.out).strip() or result.rc}",
                          "run as root on the node, or pass a saved dump with --from FILE")
    return result.out


def live_readings(node: Node, mode: Mode | None, warnings: list[str] | None = None) -> list[Reading]:
    """The node's rules, read the way each mode keeps them: iptables-save and ip6tables-save (iptables
    mode, and IPVS mode's ipset rules), the kube-proxy tables of `nft list tables` (nftables),
    `ipvsadm -S -n` (IPVS). Only what `mode` needs when given. Looking for the mode, a tool that is not
    installed or fails (no nf_tables or IPVS in this kernel) is no mode of this node: a warning at most."""
    warnings = warnings if warnings is not None else []
    out = []
    if mode in (None, "iptables", "ipvs"):
        text = _run(node, "iptables-save")
        if text is None and mode is not None:
            raise WizardError("iptables-save is not installed", "install iptables, or pass a saved dump with --from FILE")
        if text is not None:
            out.append(_read("iptables", text, LIVE, 4))
    if mode in (None, "iptables"):
        try:
            text = _run(node, "ip6tables-save")
        except WizardError:
            text = None  # a kernel without IPv6: no IPv6 services either
        if text is not None and text.strip():
            out.append(_read("iptables", text, live("ip6tables-save"), 6))
    if mode in (None, "nftables"):
        # the tables first: on an iptables-nft node `nft list ruleset` would translate every iptables rule
        tables = _looked_for(node, ("nft", "list", "tables"), "nftables", mode == "nftables", "nftables", warnings)
        if tables is not None:
            families = re.findall(r"^table (ip6?|inet) kube-proxy$", tables, re.MULTILINE)
            text = "".join(_run(node, "nft", "list", "table", family, "kube-proxy") or "" for family in families)
            out.append(_read("nftables", text, live("nft list ruleset")))
    # ipvsadm loads the ip_vs module when it is not loaded: only where the kernel already has IPVS, unless asked
    if mode == "ipvs" or (mode is None and node.files.exists("/proc/net/ip_vs")):
        try:
            text = _looked_for(node, ("ipvsadm", "-S", "-n"), "ipvs", mode == "ipvs", "ipvsadm", warnings)
        except WizardError as exc:
            if "initialize ipvs" not in exc.what:
                raise
            raise WizardError(f"this kernel has no IPVS ({exc.what.removeprefix('ipvsadm failed: ')})",
                              "kube-proxy cannot run in IPVS mode here: drop --mode ipvs, or trace a saved "
                              "`ipvsadm -S -n` from the node that runs it with --from") from None
        if text is not None:
            out.append(_read("ipvs", text, live("ipvsadm -S -n")))
    return out


def _looked_for(node: Node, argv: tuple[str, ...], mode: Format, wanted: bool, package: str,
                warnings: list[str]) -> str | None:
    """One mode's listing. For the mode asked for, a tool missing or failing is an error; while only
    looking for the mode, it means the node does not run it (a warning when the tool failed)."""
    try:
        text = _run(node, *argv)
    except WizardError as exc:
        if wanted:
            raise
        warnings.append(f"{package} not read: {exc.what}")
        return None
    if text is None and wanted:
        raise WizardError(f"{argv[0]} is not installed", f"install {package}, or pass a saved `{SAVE[mode]}` with --from")
    return text


def configured_mode(node: Node, kubeconfig: str, warnings: list[str]) -> Mode | None:
    """kube-proxy's `mode:` from its ConfigMap (kubeadm's `kube-proxy` in kube-system, key config.conf);
    an empty or absent `mode` is iptables, Linux's default. None, with a warning, when it cannot be read
    or names no mode known here: the rules present decide then."""
    result = node.commands.run("kubectl", "--kubeconfig", kubeconfig, "--request-timeout=10s", "-n", "kube-system",
                               "get", "configmap", "kube-proxy", "-o", "json", timeout=15)
    if not result.ok:
        warnings.append(f"kube-proxy's mode not read from its ConfigMap: {(result.err or result.out).strip()[:200]}")
        return None
    import yaml  # only here: a trace without a kubeconfig never reads YAML

    try:
        config = (json.loads(result.out).get("data") or {}).get("config.conf")
        settings = yaml.safe_load(config) if isinstance(config, str) else None
    except (ValueError, AttributeError, yaml.YAMLError):
        settings = None
    if not isinstance(settings, dict):
        warnings.append("kube-proxy's mode not read: its ConfigMap has no KubeProxyConfiguration under config.conf")
        return None
    mode = str(settings.get("mode") or "").lower() or "iptables"
    if mode not in MODES:
        warnings.append(f"kube-proxy's ConfigMap says mode {mode!r}, which is not traced here: the rules present decide")
        return None
    return cast("Mode", mode)


# ---------------------------------------------------------------- which mode the rules are in

def _ipvs_rules(text: str) -> bool:
    """kube-proxy's IPVS mode keeps a KUBE-SERVICES chain too, matching its ipsets instead of services
    (KUBE-CLUSTER-IP; KUBE-6-CLUSTER-IP in ip6tables)."""
    return "--match-set KUBE-CLUSTER-IP " in text or "--match-set KUBE-6-CLUSTER-IP " in text


def _text_family(text: str) -> int:
    """An iptables dump without its header line: IPv6 when its ipsets are kube-proxy's IPv6 ones."""
    return 6 if "KUBE-6-" in text else 4


def present(readings: list[Reading]) -> list[Mode]:
    """The modes whose kube-proxy rules these readings hold, the one kube-proxy most likely runs first.
    nftables first: kube-proxy in nftables mode removes the other modes' rules, while a switch away from
    it or from IPVS can leave them. IPVS counts when the iptables rules are IPVS mode's (ipset matches in
    KUBE-SERVICES); virtual servers beside iptables mode's own KUBE-SERVICES are leftovers, ranked last."""
    modes: list[Mode] = []
    if any(r.format == "nftables" and _nft().has_kube_proxy(r.parsed) for r in readings):
        modes.append("nftables")
    ipvs_rules = any(r.format == "iptables" and r.ipvs_style for r in readings)
    servers = any(r.format == "ipvs" and _ipvs().detect(r.parsed) for r in readings)
    iptables_mode = any(r.format == "iptables" and not r.ipvs_style and iptables.has_kube_proxy(r.parsed)
                        for r in readings)
    if ipvs_rules or (servers and not iptables_mode):
        modes.append("ipvs")
    if iptables_mode:
        modes.append("iptables")
    if servers and "ipvs" not in modes:
        modes.append("ipvs")
    return modes


def _nft() -> Any:
    from wizard import nftables

    return nftables


def _ipvs() -> Any:
    from wizard import ipvs

    return ipvs


# ---------------------------------------------------------------- tracing

def _merge(paths: list[Path], service: str, mode: Mode) -> Path:
    out = Path(service, mode)
    for path in paths:
        out.branches += path.branches
        out.refusals += path.refusals
    return out


def _trace_in(mode: Mode, readings: list[Reading], namespace: str, name: str, spec: Any,
              node_ips: list[str] | None = None) -> Path:
    service = f"{namespace}/{name}"
    if mode == "nftables":
        nft = _nft()
        return _merge([nft.trace(r.parsed, namespace, name) for r in readings if r.format == "nftables"], service, mode)
    if mode == "ipvs":
        # one family at a time, each with its own family's ipset rules (iptables-save or ip6tables-save)
        ipvs = _ipvs()
        paths = []
        for family in spec.families or [4]:
            mine = [ip for ip in spec.cluster_ips if (":" in ip) == (family == 6)]
            part = dataclasses.replace(
                spec, cluster_ips=mine,
                external_ips=[ip for ip in spec.external_ips if (":" in ip) == (family == 6)],
                load_balancer_ips=[ip for ip in spec.load_balancer_ips if (":" in ip) == (family == 6)])
            rules = next((r.parsed for r in readings if r.format == "iptables" and r.ipvs_style
                          and (r.family or _text_family(r.text)) == family), None)
            # the node's addresses known here are its IPv4 ones (Links.addresses)
            paths += [ipvs.trace(r.parsed, part, iptables_rules=rules, node_ips=node_ips if family == 4 else None)
                      for r in readings if r.format == "ipvs"]
        return _merge(paths, service, mode)
    paths = []
    for r in readings:
        if r.format == "iptables" and not r.ipvs_style:
            try:
                paths.append(iptables.trace(r.parsed, namespace, name, r.family))
            except iptables.NotIptablesSave as exc:  # a rule on the path that iptables would not have taken
                raise InputError(f"{r.source} is not iptables-save output: {exc}",
                                 "save it with `iptables-save > FILE`") from None
    return _merge(paths, service, mode)


def is_address(text: str) -> bool:
    """An address (`10.96.0.10:53/udp`, `[fd00::10]:80`) given instead of a service's name."""
    return text.startswith("[") or bool(re.fullmatch(r"[0-9.]+:[0-9]+(?:/[a-zA-Z]+)?", text))


def _ipvs_spec(node: Node | None, namespace: str, name: str, kubeconfig: str | None,
               service_object: dict[str, Any] | None = None) -> Any:
    """What IPVS needs to find a service: its addresses (from the Service object when the caller has
    it, else the API server). Its virtual servers carry no names."""
    ipvs = _ipvs()
    if service_object:
        try:
            return ipvs.spec_from_service(service_object)
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise WizardError(f"service {namespace}/{name} as the API returned it has no addresses to find: {exc}",
                              "check `kubectl get service NAME -o yaml`") from None
    if is_address(name):
        try:
            return ipvs.spec_from_address(name)
        except ValueError as exc:
            what, _, fix = str(exc).partition("; ")
            raise InputError(what, fix or "give it like 10.96.0.10:53/udp or [fd00::10]:80/tcp") from None
    if not kubeconfig:
        raise InputError(f"kube-proxy runs in IPVS mode, whose virtual servers carry no service names: "
                         f"{namespace}/{name} cannot be found by name without the API server",
                         "give --kubeconfig FILE (the service's addresses are read from it), or the service's "
                         "address instead of its name, e.g. 10.96.0.10:53/udp")
    result = _machine(node).commands.run("kubectl", "--kubeconfig", kubeconfig, "--request-timeout=10s", "get",
                                         f"service/{name}", "-n", namespace, "-o", "json", timeout=15)
    if not result.ok:
        raise WizardError(f"kubectl could not read service {namespace}/{name}: {(result.err or result.out).strip()[:300]}",
                          "check the name and namespace (`kubectl get services -A`) and the kubeconfig")
    try:
        return ipvs.spec_from_service(json.loads(result.out))
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise WizardError(f"kubectl's answer for service {namespace}/{name} is not a Service: {exc}",
                          "check kubectl and the API server") from None


@dataclass(frozen=True)
class EndpointLabel:
    """What an endpoint IP is: its pod and node (from the API server), the flannel lease holding it (from etcd)."""

    ip: str
    pod: str | None = None  # the pod's name ("?" when the endpoint names no pod)
    node: str | None = None  # the node the pod runs on
    lease: str | None = None  # "node subnet 172.30.38.0/24 (192.168.56.11)"

    def __str__(self) -> str:
        parts = []
        if self.pod is not None:
            parts.append(f"pod {self.pod}" + (f" on {self.node}" if self.node else ""))
        if self.lease:
            parts.append(self.lease)
        return ", ".join(parts)




def _no_kube_proxy(readings: list[Reading], live_node: bool) -> tuple[str, str]:
    """(problem, hint) when the rules hold nothing of kube-proxy's in any mode."""
    where = "on this node" if live_node else f"in {', '.join(dict.fromkeys(r.source for r in readings))}"
    first = next((r for r in readings if r.format == "iptables"), None)
    if first is None:  # an nft listing or ipvsadm listing only
        what = "; ".join(f"{r.source} has no " + ("table kube-proxy" if r.format == "nftables" else "virtual servers")
                         for r in readings) or "no rules were read"
        return (f"no kube-proxy rules {where}: {what}",
                "check `kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide` and its mode")
    ruleset, rules = first.parsed, first.text
    if not ruleset.tables:  # no chain in any table (`chains` would split every rule to say so)
        what = "iptables-save printed no rules at all" if live_node else "it holds no rules at all"
    elif "nat" not in ruleset.tables:
        what = "there is no nat table, where kube-proxy puts them"
    else:
        what = "the nat table has no KUBE-SERVICES chain"
    if live_node and len(readings) > 1:
        others = [r.source.removeprefix("the live rules (").rstrip(")") for r in readings[1:]]
        what += f", and {', '.join(others)} {'holds' if len(others) == 1 else 'hold'} none either"
    problem = f"no kube-proxy rules {where}: {what}"
    if "iptables-legacy tables present" in rules:
        hint = ("iptables-nft says other rules live in the legacy tables: "
                "`iptables-legacy-save | flannel-wizard explain-service NAME --from -`")
    elif not live_node and ruleset.tables and "nat" not in ruleset.tables:
        hint = "the dump has no nat table: save it with `iptables-save` (all tables) or `iptables-save -t nat`"
    elif not live_node and "kube-proxy" in rules:
        hint = ("kube-proxy may run in nftables mode (table kube-proxy): trace its listing instead, "
                "`nft list ruleset | flannel-wizard explain-service NAME --from -`")
    elif not live_node:
        hint = ("kube-proxy is not running there, or not in iptables mode: for nftables mode save `nft list ruleset`, "
                "for IPVS mode `ipvsadm -S -n`, and trace that with --from")
    else:
        hint = ("kube-proxy is not running here, or its rules were not readable: check "
                "`kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide` and its --proxy-mode")
    return problem, hint


@dataclass(frozen=True)
class Explanation:
    service: str  # "namespace/name"
    source: str  # where the rules came from: file names, or the live listing(s)
    trace: Path  # the path, in whichever mode kube-proxy runs
    outcome: Outcome
    labels: dict[str, EndpointLabel] = field(default_factory=dict)  # endpoint IP -> label
    problem: str = ""  # what is wrong, "" on a path
    hint: str = ""  # what to do about it
    suggestion: str | None = None  # "did you mean" a service the rules do hold
    warnings: list[str] = field(default_factory=list)
    kube_proxy: bool = True  # False: no kube-proxy rules at all, in any mode

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    @property
    def mode(self) -> Mode:
        return self.trace.mode

    def label_texts(self) -> dict[str, str]:
        """Endpoint IP -> label text, as `proxypath.tree` takes it."""
        return {ip: str(label) for ip, label in self.labels.items() if str(label)}

    def tree(self) -> proxypath.TreeNode:
        return proxypath.tree(self.trace, self.label_texts())


def _readings(node: Node | None, dumps: list[tuple[str, str]] | None, mode: Mode | None, kubeconfig: str | None,
              warnings: list[str]) -> tuple[list[Reading], list[Mode], bool]:
    """The readings, the modes to trace in (most likely first) and whether they are the live rules."""
    if dumps:
        readings = read_texts(dumps)
        found = present(readings)
        if mode and mode not in found:
            names = " and ".join(dict.fromkeys(r.source for r in readings))
            raise InputError(f"--mode {mode}: {names} hold{'s' if len(readings) == 1 else ''} no {mode} mode rules of "
                             f"kube-proxy (" + (f"they are {', '.join(found)} mode's" if found else "none at all") + ")",
                             f"drop --mode, or add the {mode} listing with --from (`{SAVE[mode]} > FILE` on the node)")
        return readings, [mode] if mode else found, False
    machine = _machine(node)
    told = None if mode else (configured_mode(machine, kubeconfig, warnings) if kubeconfig else None)
    if told:
        try:
            readings = live_readings(machine, told, warnings)
        except WizardError as exc:
            readings, why = [], f"its rules were not read ({exc.what})"
        else:
            why = f"this node has no {told} mode rules"
        if told in present(readings):
            return readings, [told], True
        # the ConfigMap may lag a kube-proxy started with --proxy-mode: the rules on the node decide
        warnings.append(f"kube-proxy's ConfigMap says {told} mode, but {why}: traced the rules present")
        readings = live_readings(machine, None, warnings)
        return readings, present(readings), True
    readings = live_readings(machine, mode, warnings)
    return readings, [mode] if mode else present(readings), True


def _source(readings: list[Reading], mode: Mode) -> str:
    wanted = {"iptables": ("iptables",), "nftables": ("nftables",), "ipvs": ("ipvs", "iptables")}[mode]
    names = [r.source for r in readings if r.format in wanted] or [r.source for r in readings]
    return ", ".join(dict.fromkeys(names)) or "the rules"


def explain(node: Node | None, namespace: str, name: str, *, rules: str | None = None, source: str | None = None,
            dumps: list[tuple[str, str]] | None = None, mode: Mode | None = None, answers: Answers | None = None,
            kubeconfig: str | None = None, name_pods: bool = True,
            service_object: dict[str, Any] | None = None) -> Explanation:
    """Trace `namespace/name` through kube-proxy's rules, in the mode they are in: `dumps` (text, name)
    saved from a node (`rules`/`source` for one), else this node's live rules. `mode` forces the mode;
    otherwise kube-proxy's ConfigMap says it (with `kubeconfig`), else the rules present do. With
    `answers`, label each endpoint with the flannel lease holding it; with `kubeconfig` (and
    `name_pods`), with its pod and node. `service_object` (the Service as the API returns it) gives IPVS
    mode the service's addresses without asking. `node` may be None when there is nothing to ask the machine.

    Raises InputError for text its tool would not print, or a dump cut off; WizardError when a listing
    command fails. etcd or the API server not answering costs the labels (a warning), not the trace."""
    if dumps is None and rules is not None:
        dumps = [(rules, source or "the saved rules")]
    warnings: list[str] = []
    readings, modes, live_node = _readings(node, dumps, mode, kubeconfig, warnings)
    by_address = is_address(name)
    service = name if by_address else f"{namespace}/{name}"
    if by_address and modes and "ipvs" not in modes:
        raise InputError(f"{name} is an address: only IPVS mode, whose rules carry no names, is traced by address",
                         f"kube-proxy here runs in {modes[0]} mode: give the service's NAME or NAMESPACE/NAME")
    paths: list[Path] = []
    for m in modes:
        spec = None
        if m == "ipvs":
            if not any(r.format == "ipvs" for r in readings):
                if mode == "ipvs" or len(modes) == 1:
                    raise InputError("kube-proxy runs in IPVS mode, and ipvsadm's listing is not among the rules read",
                                     "add it: `--from FILE` of `ipvsadm -S -n` (or run on the node, with ipvsadm installed)")
                continue
            try:
                spec = _ipvs_spec(node, namespace, name, kubeconfig, service_object)
            except InputError:
                if len(modes) == 1:
                    raise
                warnings.append("IPVS rules are here too, but a service is found in them only by address or "
                                "with --kubeconfig")
                continue
        # on the node itself its addresses are known: a node port's virtual servers are on those only
        node_ips = ([cidr.split("/")[0] for _link, cidr in _machine(node).links.addresses()]
                    if m == "ipvs" and live_node else None)
        path = _trace_in(m, readings, namespace, name, spec, node_ips)
        path.service = service
        paths.append(path)
    # the likeliest mode's path, unless it has nothing for the service and another mode's rules do: a
    # stale mode's rules must not win because they still reach a pod
    chosen = (next((p for p in paths if p.branches or p.refusals), None)
              or (paths[0] if paths else Path(service, mode or "iptables")))
    if len(modes) > 1:
        warnings.append(f"rules of several kube-proxy modes are here ({', '.join(modes)}): traced {chosen.mode} mode; "
                        "--mode picks one, and kube-proxy's ConfigMap says which it runs (--kubeconfig)")
    source = _source(readings, chosen.mode)
    labels = _labels(node, chosen, answers, kubeconfig if name_pods else None, namespace, name, warnings)
    common = {"service": service, "source": source, "trace": chosen, "labels": labels, "warnings": warnings}
    if chosen.complete:
        return Explanation(outcome="path", **common)
    if chosen.branches or chosen.refusals:
        verdicts = sorted({r.verdict for r in chosen.refusals})
        why = (f"kube-proxy {' and '.join(v + 's' for v in verdicts)} it: the service has no endpoints" if verdicts
               else "no rule DNATs to a pod")
        hint = (f"find the service (`kubectl get services -A | grep {proxypath.split_host_port(name)[0]}`) and check "
                "that its pods are ready (kubectl get endpoints NAME -n NAMESPACE)" if by_address else
                f"check that its pods are ready (kubectl get endpoints {name} -n {namespace})")
        return Explanation(outcome="no-endpoints", problem=f"{service} has rules but {why}", hint=hint, **common)
    if not modes:
        problem, hint = _no_kube_proxy(readings, live_node)
        return Explanation(outcome="no-rules", problem=problem, hint=hint, kube_proxy=False, **common)
    known = services(readings, chosen.mode)
    elsewhere = [s for s in known if s.split("/", 1)[1] == name]  # the right name, another namespace
    close = elsewhere or difflib.get_close_matches(service, known, n=1)
    suggestion = close[0] if close else None
    hint = f"did you mean {suggestion}? " if suggestion else ""
    hint += "check that kube-proxy runs on this node and that the service exists"
    return Explanation(outcome="no-rules", problem=f"no kube-proxy rules for {service} in {source}", hint=hint,
                       suggestion=suggestion, **common)


def services(readings: list[Reading], mode: Mode) -> list[str]:
    """Every `ns/name` the readings hold in `mode` (IPVS keeps no names: none)."""
    found: set[str] = set()
    for r in readings:
        if mode == "iptables" and r.format == "iptables" and not r.ipvs_style:
            found.update(iptables.services(r.parsed))
        elif mode == "nftables" and r.format == "nftables":
            found.update(_nft().services(r.parsed))
    return sorted(found)


def _labels(node: Node | None, path: Path, answers: Answers | None, kubeconfig: str | None, namespace: str,
            name: str, warnings: list[str]) -> dict[str, EndpointLabel]:
    endpoints = path.endpoints
    if not endpoints or (answers is None and not kubeconfig):
        return {}
    leases = _leases(_machine(node), answers, endpoints, warnings) if answers is not None else {}
    pods = _endpoint_pods(_machine(node), kubeconfig, namespace, name, warnings) if kubeconfig else {}
    labels = {}
    for ip in dict.fromkeys(proxypath.split_host_port(e)[0] for e in endpoints):
        if ip in pods or ip in leases:
            pod, on = pods.get(ip, (None, None))
            labels[ip] = EndpointLabel(ip, pod, on, leases.get(ip))
    return labels


@dataclass(frozen=True)
class Listing:
    """The services a set of rules holds (`explain-service --list`)."""

    source: str
    ports: list[ServicePort]
    namespace: str | None = None  # only this namespace's, when given
    problem: str = ""  # why there is nothing to list, "" when there is
    hint: str = ""
    kube_proxy: bool = True  # False: no kube-proxy rules at all
    mode: Mode = "iptables"
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.ports else 1


def list_services(node: Node | None, *, rules: str | None = None, source: str | None = None,
                  dumps: list[tuple[str, str]] | None = None, mode: Mode | None = None,
                  namespace: str | None = None, kubeconfig: str | None = None) -> Listing:
    """Every service port kube-proxy's rules hold (in `namespace` only, when given), with its addresses,
    node ports and endpoints, in the mode the rules are in. Raises as `explain` does for text that is
    not whole output of its tool. `node` may be None when dumps are given."""
    # every rule is split: no collection until they are all freed, when _listing returns
    with iptables.collector_paused():
        if dumps is None and rules is not None:
            dumps = [(rules, source or "the saved rules")]
        warnings: list[str] = []
        readings, modes, live_node = _readings(node, dumps, mode, kubeconfig, warnings)
        if len(modes) > 1:
            warnings.append(f"rules of several kube-proxy modes are here ({', '.join(modes)}): listed {modes[0]} "
                            "mode's; --mode picks one")
        return dataclasses.replace(_listing(readings, modes, live_node, namespace), warnings=warnings)


def _listing(readings: list[Reading], modes: list[Mode], live_node: bool, namespace: str | None) -> Listing:
    if not modes:
        problem, hint = _no_kube_proxy(readings, live_node)
        return Listing(_source(readings, "iptables"), [], namespace, problem, hint, kube_proxy=False)
    mode = modes[0]
    source = _source(readings, mode)
    every: list[ServicePort] = []
    for r in readings:
        if mode == "iptables" and r.format == "iptables" and not r.ipvs_style:
            every += iptables.service_ports(r.parsed)
        elif mode == "nftables" and r.format == "nftables":
            every += _nft().service_ports(r.parsed)
        elif mode == "ipvs" and r.format == "ipvs":
            every += _ipvs().service_ports(r.parsed)
    every = _merge_ports(every)
    ports = every if namespace is None else [p for p in every if p.service.split("/", 1)[0] == namespace]
    if ports:
        return Listing(source, ports, namespace, mode=mode)
    if namespace is not None:
        others = sorted({p.service.split("/", 1)[0] for p in every if "/" in p.service})
        hint = f"namespaces with services: {', '.join(others)}" if others else "kube-proxy has no services yet"
        return Listing(source, [], namespace, f"no services in namespace {namespace} in {source}", hint, mode=mode)
    return Listing(source, [], namespace, f"kube-proxy has rules in {source}, but no services",
                   "kube-proxy writes a service's rules once it exists: check `kubectl get services -A`", mode=mode)


def _merge_ports(ports: list[ServicePort]) -> list[ServicePort]:
    """One row per service port: a dual-stack service's two families' rows become one."""
    merged: dict[tuple[str, str], ServicePort] = {}
    for p in ports:
        have = merged.get((p.service, p.port))
        if have is None:
            merged[(p.service, p.port)] = ServicePort(p.service, p.port, list(p.addresses), list(p.node_ports),
                                                      list(p.endpoints), p.rejected)
            continue
        for mine, theirs in ((have.addresses, p.addresses), (have.node_ports, p.node_ports),
                             (have.endpoints, p.endpoints)):
            mine += [x for x in theirs if x not in mine]
        have.rejected = have.rejected or p.rejected
    return [merged[key] for key in sorted(merged)]


def _endpoint_pods(node: Node, kubeconfig: str, namespace: str, name: str,
                   warnings: list[str]) -> dict[str, tuple[str, str | None]]:
    """Endpoint IP -> (pod, node) from the API server; on failure a warning and no names (the tree is drawn without)."""
    result = node.commands.run("kubectl", "--kubeconfig", kubeconfig, "--request-timeout=10s", "get",
                               f"endpoints/{name}", "-n", namespace, "-o", "json", timeout=15)
    if not result.ok:
        warnings.append(f"no pod names: kubectl said {(result.err or result.out).strip()[:200]}")
        return {}
    try:
        subsets = json.loads(result.out).get("subsets") or []
    except (ValueError, AttributeError):
        return {}
    out: dict[str, tuple[str, str | None]] = {}
    for subset in subsets:
        for address in (subset.get("addresses") or []) + (subset.get("notReadyAddresses") or []):
            if address.get("ip"):
                out[address["ip"]] = ((address.get("targetRef") or {}).get("name", "?"), address.get("nodeName") or None)
    return out


def _leases(node: Node, answers: Answers, endpoints: list[str], warnings: list[str]) -> dict[str, str]:
    """`_lease_labels`, or on failure (etcd down, a password not set) a one-line warning and no labels:
    the trace is worth having without them."""
    try:
        return _lease_labels(node, answers, endpoints)
    except Interrupted:
        raise
    except WizardError as exc:
        warnings.append(f"no node subnets from etcd: {' '.join(str(exc).split())[:300]}")
        return {}


def _lease_labels(node: Node, answers: Answers, endpoints: list[str]) -> dict[str, str]:
    """Endpoint IP -> "node subnet S (PublicIP)" from flannel's leases in etcd."""
    from wizard import flannel
    from wizard.node.commands import keep_from_children
    from wizard.node.etcd import choose_api, resolved

    keep_from_children(answers.etcd.password_env)
    # the leases are in the store this node's flanneld reads (`etcd.api: auto` asks it)
    store = node.etcd(resolved(answers.etcd, choose_api(node.commands, answers.etcd)), answers.etcd_password())
    try:
        leases = store.list(answers.etcd.prefix + "/subnets/")
    finally:
        store.close()
    out = {}
    index = flannel.LeaseIndex(leases)  # once: a look-up per endpoint, not a pass over every lease
    for endpoint in endpoints:
        ip = proxypath.split_host_port(endpoint)[0]
        where = index.holding(ip)
        if where:
            out[ip] = where
    return out
