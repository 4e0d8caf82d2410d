"""etcd: PREFIX/config created once (like `etcdctl mk`), compared as JSON, replaced only on request."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wizard import flannel
from wizard.changes import EtcdWrite, json_diff
from wizard.errors import EtcdError, InputError, WizardError
from wizard.node.etcd import resolved
from wizard.steps import Note, Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node.etcd import ApiChoice
    from wizard.steps import Check, Context

# flanneld's own words when PREFIX/config is only in the store of the other API
NOT_IN_V2 = "Couldn't fetch network config: 100: Key not found"  # flanneld < v0.18 (v2 keys API)
NOT_IN_V3 = "flannel config not found in etcd store. Did you create your config using etcdv3 API?"  # >= v0.18


@dataclass
class Facts:
    reachable: bool
    version: str = ""
    endpoint: str = ""
    current: tuple[str, int] | None = None
    leases: list[tuple[str, str]] = field(default_factory=list)
    error: EtcdError | None = None
    at_prefix: bool = False
    api: ApiChoice | None = None  # which API, and why (`etcd.api: auto` asks the installed flanneld)
    other_store: str | None = None  # PREFIX/config as the other API's store holds it, when this one has none


@dataclass(frozen=True)
class Output:
    """What later steps read: the config flanneld will find at PREFIX/config after this step."""

    config_in_force: dict[str, Any]


def config_key(answers: Answers) -> str:
    return answers.etcd.prefix + "/config"


def inspect(ctx: Context) -> Facts:
    choice = ctx.etcd_api()
    try:
        store = ctx.store()
        prefix = ctx.answers.etcd.prefix
        current = store.get(prefix + "/config")
        return Facts(
            True, store.version(), store.endpoint, current,
            store.list(prefix + "/subnets/"), at_prefix=store.get(prefix) is not None, api=choice,
            other_store=_in_other_store(ctx, choice) if current is None else None,
        )
    except EtcdError as exc:
        if not ctx.dry_run or ctx.checking:
            raise
        return Facts(False, error=exc, api=choice)


def _in_other_store(ctx: Context, choice: ApiChoice) -> str | None:
    """PREFIX/config as the other API sees it: etcd keeps v2 and v3 keys apart, and a config written with
    the wrong one is the classic reason flanneld never finds its network."""
    other = "v2" if choice.api == "v3" else "v3"
    settings = ctx.answers.etcd.model_copy(update={"api": other})
    try:
        store = ctx.node.etcd(settings, ctx.answers.etcd_password())
    except EtcdError:
        return None  # that API is off (etcd >= 3.4 without --enable-v2): nothing can hide there
    try:
        found = store.get(config_key(ctx.answers))
    except EtcdError:
        return None
    finally:
        store.close()
    return found[0] if found else None


def _api_name(api: str) -> str:
    return "v2 keys API" if api == "v2" else "v3 API"


def _not_found_text(reads: str) -> str:
    """What a flanneld that reads `reads` says when PREFIX/config is only in the other store."""
    return NOT_IN_V2 if reads == "v2" else NOT_IN_V3


def _api_notes(answers: Answers, facts: Facts, result: Plan) -> None:
    """An API forced against the installed flanneld, and a config only in the other API's store."""
    choice = facts.api
    if choice is None:
        return
    key = config_key(answers)
    if choice.reads and choice.reads != choice.api:
        result.note("failed", f"etcd.api is {choice.api} but flanneld {choice.flanneld} reads only the "
                    f"{_api_name(choice.reads)}: it would say `{_not_found_text(choice.reads)}`",
                    f"set etcd.api: auto (or {choice.reads}) so that {key} is written where flanneld reads it")
    elif facts.current is None and facts.other_store is not None:
        other = "v2" if choice.api == "v3" else "v3"
        reader = f"flanneld {choice.flanneld}" if choice.flanneld else "flanneld"
        remove = f"ETCDCTL_API=2 etcdctl rm {key}" if other == "v2" else f"ETCDCTL_API=3 etcdctl del {key}"
        result.note("warn", f"{key} is only in the {_api_name(other)} store, which {reader} does not read: "
                    f"it says `{_not_found_text(choice.api)}`",
                    f"the wizard writes {key} with the {_api_name(choice.api)}, where {reader} reads it; "
                    f"remove the {other} copy when sure ({remove})")


def _parse(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def plan(answers: Answers, facts: Facts) -> Plan:
    result = Plan()
    settings = answers.etcd
    key = config_key(answers)
    try:
        wanted = answers.network.flannel_config()
    except InputError as exc:
        result.note("failed", exc.what, exc.fix)
        return result
    shown = flannel.to_json(flannel.redacted(wanted))
    text = flannel.to_json(wanted)
    in_force = wanted
    result.output = Output(in_force)
    # the write (and the journal's record of it, for undo) names the API actually used
    settings = resolved(settings, facts.api) if facts.api else settings
    if not facts.reachable:
        assert facts.error is not None
        result.note("warn", f"cannot reach etcd: {facts.error.what}", "the plan assumes PREFIX/config is absent; " + facts.error.fix)
        _api_notes(answers, facts, result)
        result.add(EtcdWrite(key, text, None, None, settings, shown))
        return result
    result.note("ok", f"etcd {facts.version} at {facts.endpoint} ({_api_name(settings.api)})",
                facts.api.why if facts.api else "")
    _api_notes(answers, facts, result)
    if facts.at_prefix:
        result.note("warn", f"{settings.prefix} itself holds a value; flanneld reads {key}",
                    "a config stored at the prefix instead of PREFIX/config is a known mistake; remove it when sure")
    if facts.current is None:
        result.add(EtcdWrite(key, text, None, None, settings, shown))
    else:
        value, revision = facts.current
        existing = _parse(value)
        if existing is not None and flannel.same_config(existing, wanted):
            result.note("ok", f"{key} already holds this config")
        else:
            why = "is not valid JSON" if existing is None else "differs from the answers"
            if existing is None and "\\" in value:
                why += " (it looks shell-escaped: flanneld says `invalid character '\\\\' looking for beginning of object key string`)"
            shown_old = flannel.to_json(flannel.redacted(existing)) if existing else value
            diff = json_diff(shown_old, shown, key)
            policy = settings.on_existing
            if policy == "fail":
                result.note("failed", f"{key} already exists and {why}", diff + "set etcd.on_existing to keep or replace")
            elif policy == "keep":
                result.note("warn", f"{key} {why}; keeping it (on_existing: keep)", diff)
                if existing is not None:
                    in_force = existing
                    result.output = Output(existing)
            else:
                result.add(EtcdWrite(key, text, value, revision, settings, shown, shown_old))
    _leases(settings.prefix, facts.leases, in_force, result)
    return result


def v4_key(lease_key: str) -> str:
    """The IPv4 part of a lease key: dual-stack keys join both subnets, `172.30.5.0-24&fc00:0:0:5::-64`."""
    return lease_key.rsplit("/", 1)[-1].split("&", 1)[0]


def public_ip(value: str) -> str:
    return flannel.lease_addresses(value)[0] or "?"


def shared_public_ips(leases: list[tuple[str, str]]) -> dict[str, list[str]]:
    """PublicIP -> the subnets of the leases that give it, for each address more than one lease gives."""
    return _shared(survey(leases).by_ip)


def _shared(by_ip: dict[str, list[str]]) -> dict[str, list[str]]:
    # the subnets are worked out for the few addresses given more than once, not for every lease
    return {ip: [flannel.lease_subnet(v4_key(k)) for k in keys] for ip, keys in by_ip.items() if len(keys) > 1}


@dataclass
class Survey:
    """The keys under PREFIX/subnets/, read once each (a cluster has thousands)."""

    lines: list[str] = field(default_factory=list)  # `172.30.5.0/24 → 192.168.56.11` per lease flanneld can read
    stray: list[str] = field(default_factory=list)  # keys flanneld would not read as a lease (ParseSubnetKey)
    by_ip: dict[str, list[str]] = field(default_factory=dict)  # PublicIP -> the keys whose value gives it


def survey(leases: list[tuple[str, str]]) -> Survey:
    found = Survey()
    lines, stray, by_ip = found.lines, found.stray, found.by_ip
    for lease_key, value in leases:
        ip = flannel.lease_addresses(value)[0]
        if ip:
            keys = by_ip.get(ip)
            if keys is None:
                by_ip[ip] = [lease_key]
            else:
                keys.append(lease_key)
        nets = flannel.lease_nets(lease_key)
        if nets is None:
            stray.append(lease_key)
        else:
            v4, v6 = nets
            shown = v4[2] if v6 is None and v4 is not None else flannel.shown_lease(nets)
            lines.append(f"{shown} → {ip or '?'}")
    return found


SHARED_FIX = ("flanneld on those nodes picked the same address (every Vagrant VM has 10.0.2.15 on eth0), so "
              "each node sends the others' pod traffic to that one address, which is its own; on each node set flanneld.iface to the "
              "interface of the network the nodes share (flanneld's -iface), or give flanneld -public-ip, and "
              "restart flanneld")


def shared_message(ip: str, subnets: list[str]) -> str:
    return f"{len(subnets)} leases share PublicIP {ip}: {', '.join(subnets)}"


def _leases(prefix: str, leases: list[tuple[str, str]], cfg: dict[str, Any], result: Plan) -> None:
    found = survey(leases)
    lines, stray = found.lines, found.stray
    try:
        total = flannel.subnet_range(cfg).count
    except (flannel.ConfigProblem, ValueError):
        result.note("warn", f"{len(leases)} lease(s) under {prefix}/subnets/", items=lines)
        return
    # a key flanneld would not read as a lease takes no subnet: named, not counted. One line sums the
    # leases up; each is an item (--verbose, the etcd page's lease list), not a line of its own
    left = total - len(lines)
    result.note("ok" if left > 0 else "warn", f"{len(lines)} lease(s) taken, {left} of {total} node subnets left",
                items=lines)
    if stray:
        result.note("warn", f"{len(stray)} key(s) under {prefix}/subnets/ are not leases flanneld can read: "
                    f"{', '.join(k.rsplit('/', 1)[-1] for k in stray[:5])}{' …' if len(stray) > 5 else ''}",
                    "flanneld names leases like 172.30.5.0-24; remove keys put there by hand when sure")
    # not `failed`: that would stop the run before the flanneld step, which is where this node's is fixed
    for ip, subnets in _shared(found.by_ip).items():
        result.note("warn", shared_message(ip, subnets), SHARED_FIX)


def verify(ctx: Context, facts: Facts) -> list[Check]:
    key = config_key(ctx.answers)
    try:
        found = ctx.store().get(key)
    except WizardError as exc:
        return [Note("failed", f"cannot read {key} back: {exc.what}", exc.fix)]
    out = ctx.output("etcd", Output)
    wanted = out.config_in_force if out else ctx.answers.network.flannel_config()
    if found is None:
        return [Note("failed", f"{key} is absent after writing it")]
    existing = _parse(found[0])
    if existing is None or not flannel.same_config(existing, wanted):
        # what is there, with a wireguard or ipsec PSK masked as everywhere else the config is shown
        shown = found[0] if existing is None else flannel.to_json(flannel.redacted(existing))
        return [Note("failed", f"{key} does not hold the intended config", shown)]
    return [Note("ok", f"{key} holds the intended config")]


STEP = Step("etcd", "flannel network config in etcd", inspect, plan, verify, needs=("network",))


def in_force(ctx: Context) -> dict[str, Any]:
    """The flannel config in force for this run: the etcd step's, else the answers' own."""
    out = ctx.output("etcd", Output)
    return out.config_in_force if out else ctx.answers.network.flannel_config(secrets=False)
