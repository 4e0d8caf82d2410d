"""explain-service's engine: trace a service through kube-proxy's rules and name what each endpoint is.

`explain()` returns a typed `Explanation` (the trace, a label per endpoint, the outcome, the hint,
warnings), `list_services()` a typed `Listing`; front ends only render them. It reaches the machine only
through the node: iptables-save and kubectl through `node.commands` (each with a timeout), flannel's
leases through `node.etcd(...)`. A saved dump is read by `read_dump` (a file, or standard input for `-`).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from wizard import iptables
from wizard.errors import InputError, Interrupted, WizardError

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node import Node

Outcome = Literal["path", "no-endpoints", "no-rules"]
EXIT_CODES: dict[Outcome, int] = {"path": 0, "no-endpoints": 1, "no-rules": 1}
LIVE = "the live rules (iptables-save)"
# a nat table of 50,000 services with a few endpoints each is ~40 MiB; parsing it takes seconds, not minutes
MAX_DUMP_BYTES = 64 << 20
DUMP = "an iptables-save dump"


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


def _ruleset(node: Node | None, rules: str | None, source: str | None) -> tuple[iptables.Ruleset, str, str]:
    """The parsed rules, their text and their name; the live rules when `rules` is None."""
    if rules is None:
        rules, source = _live_rules(_machine(node)), LIVE
    source = source or "the saved rules"
    try:
        return iptables.parse(rules), rules, source
    except iptables.CutOff as exc:
        raise InputError(f"{source} is cut off at line {exc.line}: {exc.why}",
                         "save the whole dump again (`iptables-save > FILE`); the part missing may hold the "
                         "rules asked about, so a cut-off dump is not traced") from None
    except iptables.NotIptablesSave as exc:
        raise InputError(f"{source} is not iptables-save output: {exc}", "save it with `iptables-save > FILE`") from None


def _no_kube_proxy(ruleset: iptables.Ruleset, rules: str, source: str) -> tuple[str, str] | None:
    """(problem, hint) when the rules hold nothing of kube-proxy's at all; None when they do."""
    if iptables.has_kube_proxy(ruleset):
        return None
    where = "on this node" if source == LIVE else f"in {source}"
    if not ruleset.tables:  # no chain in any table (`chains` would split every rule to say so)
        what = "iptables-save printed no rules at all" if source == LIVE else "it holds no rules at all"
    elif "nat" not in ruleset.tables:
        what = "there is no nat table, where kube-proxy puts them"
    else:
        what = "the nat table has no KUBE-SERVICES chain"
    problem = f"no kube-proxy rules {where}: {what}"
    if "iptables-legacy tables present" in rules:
        hint = ("iptables-nft says other rules live in the legacy tables: "
                "`iptables-legacy-save | flannel-wizard explain-service NAME --from -`")
    elif source != LIVE and ruleset.tables and "nat" not in ruleset.tables:
        hint = "the dump has no nat table: save it with `iptables-save` (all tables) or `iptables-save -t nat`"
    elif "kube-proxy" in rules:
        hint = "kube-proxy may run in nftables mode (table kube-proxy); only iptables mode is traced"
    else:
        hint = ("kube-proxy is not running here, or not in iptables mode (ipvs and nftables modes are not traced): "
                "check `kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide` and its --proxy-mode")
    return problem, hint


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


@dataclass(frozen=True)
class Explanation:
    service: str  # "namespace/name"
    source: str  # where the rules came from: a file name, or LIVE
    trace: iptables.Trace
    outcome: Outcome
    labels: dict[str, EndpointLabel] = field(default_factory=dict)  # endpoint IP -> label
    problem: str = ""  # what is wrong, "" on a path
    hint: str = ""  # what to do about it
    suggestion: str | None = None  # "did you mean" a service the rules do hold
    warnings: list[str] = field(default_factory=list)
    kube_proxy: bool = True  # False: no kube-proxy rules at all (empty rules, no nat KUBE-SERVICES chain)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def label_texts(self) -> dict[str, str]:
        """Endpoint IP -> label text, as `iptables.render` takes it."""
        return {ip: str(label) for ip, label in self.labels.items() if str(label)}


def explain(node: Node | None, namespace: str, name: str, *, rules: str | None = None, source: str | None = None,
            answers: Answers | None = None, kubeconfig: str | None = None) -> Explanation:
    """Trace `namespace/name` in `rules` (iptables-save text; the live rules when None). With `answers`,
    label each endpoint with the flannel lease holding it; with `kubeconfig`, with its pod and node.
    `source` names `rules` in messages (the dump's file name). `node` may be None when there is nothing
    to ask the machine: `rules` given, and neither `answers` nor `kubeconfig`.

    Raises InputError when the text is not iptables-save output or is cut off inside a table, WizardError
    when iptables-save fails. etcd or the API server not answering costs the labels (a warning), not the trace."""
    ruleset, rules, source = _ruleset(node, rules, source)
    try:
        found = iptables.trace(ruleset, namespace, name)
    except iptables.NotIptablesSave as exc:  # a rule on the service's path that iptables would not have taken
        raise InputError(f"{source} is not iptables-save output: {exc}", "save it with `iptables-save > FILE`") from None
    warnings: list[str] = []
    leases = (_leases(_machine(node), answers, found.endpoints, warnings)
              if answers is not None and found.endpoints else {})
    pods = (_endpoint_pods(_machine(node), kubeconfig, namespace, name, warnings)
            if kubeconfig and found.endpoints else {})
    ips = [e.rsplit(":", 1)[0] for e in found.endpoints]
    labels = {}
    for ip in dict.fromkeys(ips):
        if ip in pods or ip in leases:
            pod, on = pods.get(ip, (None, None))
            labels[ip] = EndpointLabel(ip, pod, on, leases.get(ip))
    service = f"{namespace}/{name}"
    common = {"service": service, "source": source, "trace": found, "labels": labels, "warnings": warnings}
    if found.complete:
        return Explanation(outcome="path", **common)
    if found.branches or found.no_endpoints:
        why = "kube-proxy rejects it: the service has no endpoints" if found.no_endpoints else "no rule DNATs to a pod"
        return Explanation(outcome="no-endpoints", problem=f"{service} has rules but {why}",
                           hint=f"check that its pods are ready (kubectl get endpoints {name} -n {namespace})", **common)
    nothing = _no_kube_proxy(ruleset, rules, source)
    if nothing is not None:
        problem, hint = nothing
        return Explanation(outcome="no-rules", problem=problem, hint=hint, kube_proxy=False, **common)
    known = iptables.services(ruleset)
    elsewhere = [s for s in known if s.split("/", 1)[1] == name]  # the right name, another namespace
    close = elsewhere or difflib.get_close_matches(service, known, n=1)
    suggestion = close[0] if close else None
    hint = f"did you mean {suggestion}? " if suggestion else ""
    hint += "check that kube-proxy runs on this node and that the service exists"
    return Explanation(outcome="no-rules", problem=f"no kube-proxy rules for {service} in {source}", hint=hint,
                       suggestion=suggestion, **common)


@dataclass(frozen=True)
class Listing:
    """The services a set of rules holds (`explain-service --list`)."""

    source: str
    ports: list[iptables.ServicePort]
    namespace: str | None = None  # only this namespace's, when given
    problem: str = ""  # why there is nothing to list, "" when there is
    hint: str = ""
    kube_proxy: bool = True  # False: no kube-proxy rules at all

    @property
    def exit_code(self) -> int:
        return 0 if self.ports else 1


def list_services(node: Node | None, *, rules: str | None = None, source: str | None = None,
                  namespace: str | None = None) -> Listing:
    """Every service port kube-proxy's rules hold (in `namespace` only, when given), with its addresses,
    node ports and endpoints. Raises as `explain` does for text that is not whole iptables-save output.
    `node` may be None when `rules` is given."""
    # every rule is split: no collection until they are all freed, when _listing returns
    with iptables.collector_paused():
        return _listing(node, rules, source, namespace)


def _listing(node: Node | None, rules: str | None, source: str | None, namespace: str | None) -> Listing:
    ruleset, rules, source = _ruleset(node, rules, source)
    nothing = _no_kube_proxy(ruleset, rules, source)
    if nothing is not None:
        return Listing(source, [], namespace, *nothing, kube_proxy=False)
    every = iptables.service_ports(ruleset)
    ports = every if namespace is None else [p for p in every if p.service.split("/", 1)[0] == namespace]
    if ports:
        return Listing(source, ports, namespace)
    if namespace is not None:
        others = sorted({p.service.split("/", 1)[0] for p in every})
        hint = f"namespaces with services: {', '.join(others)}" if others else "kube-proxy has no services yet"
        return Listing(source, [], namespace, f"no services in namespace {namespace} in {source}", hint)
    return Listing(source, [], namespace, f"kube-proxy has rules in {source}, but no services",
                   "kube-proxy writes a service's rules once it exists: check `kubectl get services -A`")


def _live_rules(node: Node) -> str:
    result = node.commands.run("iptables-save", timeout=15)
    if not result.ok:
        raise WizardError(f"iptables-save failed: {(result.err or result.out).strip() or result.rc}",
                          "run as root on the node, or pass a saved dump with --from FILE")
    return result.out


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
        ip = endpoint.rsplit(":", 1)[0]
        where = index.holding(ip)
        if where:
            out[ip] = where
    return out
