"""etcd: PREFIX/config created once (like `etcdctl mk`), compared as JSON, replaced only on request."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wizard import flannel
from wizard.changes import EtcdWrite, json_diff
from wizard.errors import EtcdError, InputError, WizardError
from wizard.steps import Note, Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.steps import Check, Context


@dataclass
class Facts:
    reachable: bool
    version: str = ""
    endpoint: str = ""
    current: tuple[str, int] | None = None
    leases: list[tuple[str, str]] = field(default_factory=list)
    error: EtcdError | None = None
    at_prefix: bool = False


@dataclass(frozen=True)
class Output:
    """What later steps read: the config flanneld will find at PREFIX/config after this step."""

    config_in_force: dict[str, Any]


def config_key(answers: Answers) -> str:
    return answers.etcd.prefix + "/config"


def inspect(ctx: Context) -> Facts:
    try:
        store = ctx.store()
        prefix = ctx.answers.etcd.prefix
        return Facts(
            True, store.version(), store.endpoint, store.get(prefix + "/config"),
            store.list(prefix + "/subnets/"), at_prefix=store.get(prefix) is not None,
        )
    except EtcdError as exc:
        if not ctx.dry_run:
            raise
        return Facts(False, error=exc)


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
    if not facts.reachable:
        assert facts.error is not None
        result.note("warn", f"cannot reach etcd: {facts.error.what}", "the plan assumes PREFIX/config is absent; " + facts.error.fix)
        result.add(EtcdWrite(key, text, None, None, settings, shown))
        return result
    api = "v2 keys API" if settings.api == "v2" else "v3 API"
    result.note("ok", f"etcd {facts.version} at {facts.endpoint} ({api})")
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
    result.note(*_leases(settings.prefix, facts.leases, in_force))
    return result


def _leases(prefix: str, leases: list[tuple[str, str]], cfg: dict[str, Any]) -> tuple[Any, str, str]:
    try:
        total = flannel.subnet_range(cfg).count
    except (flannel.ConfigProblem, ValueError):
        return "warn", f"{len(leases)} lease(s) under {prefix}/subnets/", ""
    nodes = []
    for lease_key, value in leases:
        public = (_parse(value) or {}).get("PublicIP", "?")
        nodes.append(f"{flannel.lease_subnet(lease_key)} → {public}")
    left = total - len(leases)
    status = "ok" if left > 0 else "warn"
    message = f"{len(leases)} lease(s) taken, {left} of {total} node subnets left"
    return status, message, "\n".join(nodes)


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
