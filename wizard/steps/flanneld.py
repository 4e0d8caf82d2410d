"""flanneld: its environment file, the etcd password kept apart (root only), restart, wait for its lease."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wizard import envfile, flannel
from wizard.changes import FileWrite, Restart
from wizard.errors import WizardError
from wizard.node.files import NotText, decode_text
from wizard.steps import Note, Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node.files import FileState
    from wizard.steps import Check, Context

DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env"


@dataclass
class Facts:
    env: FileState
    secret: FileState | None
    dropin: FileState | None
    subnet_file_exists: bool
    password: str | None = field(default=None, repr=False)  # from password_env / password_file; memory only
    iface_missing: str = ""  # flanneld.iface names no link on this node: the names of those that exist


@dataclass(frozen=True)
class Output:
    """What the docker step reads: whether flanneld is restarted in this run (its lease may be new)."""

    restart_planned: bool
    subnet_file: str


def secret_path(answers: Answers) -> str:
    return answers.flanneld.env_file + ".etcd-password"


def dropin_path(answers: Answers) -> str:
    return f"/etc/systemd/system/{answers.flanneld.service}.service.d/50-flannel-wizard-etcd-password.conf"


def options(answers: Answers) -> str:
    a = answers
    opts = []
    if a.flanneld.iface:
        opts.append(f"-iface={a.flanneld.iface}")
    if a.flanneld.ip_masq:
        opts.append("-ip-masq")
    if a.flanneld.subnet_file != DEFAULT_SUBNET_FILE:
        opts.append(f"-subnet-file={a.flanneld.subnet_file}")
    for flag, value in (("cafile", a.etcd.ca_file), ("certfile", a.etcd.cert_file), ("keyfile", a.etcd.key_file)):
        if value:
            opts.append(f"-etcd-{flag}={value}")
    if a.etcd.username:
        opts.append(f"-etcd-username={a.etcd.username}")
    return " ".join(opts)


def inspect(ctx: Context) -> Facts:
    a = ctx.answers
    auth = bool(a.etcd.username)
    return Facts(
        ctx.file_state(a.flanneld.env_file),
        ctx.file_state(secret_path(a)) if auth else None,
        ctx.file_state(dropin_path(a)) if auth else None,
        ctx.node.files.exists(a.flanneld.subnet_file),
        a.etcd_password() if auth else None,
        _iface_missing(ctx),
    )


def _iface_missing(ctx: Context) -> str:
    iface = ctx.answers.flanneld.iface
    links = ctx.node.links
    if not iface or links.link(iface) is not None:
        return ""
    names = dict.fromkeys(name for name, _cidr in links.addresses() if name != "lo")
    return ", ".join(names) or "none with an address"


def plan(answers: Answers, facts: Facts) -> Plan:
    a = answers
    result = Plan()
    if facts.iface_missing:
        result.note("failed", f"flanneld.iface {a.flanneld.iface} does not exist on this node",
                    f"choose one of: {facts.iface_missing}; or leave it empty for the default route's")
        return result
    try:  # edited and written back: a byte that is not UTF-8 is named, not replaced
        text = decode_text(facts.env.data, a.flanneld.env_file) if facts.env.data is not None else None
    except NotText as exc:
        result.note("failed", exc.what, exc.fix)
        return result
    env = envfile.update(
        text,
        {
            "FLANNEL_ETCD_ENDPOINTS": ",".join(a.etcd.endpoints),
            "FLANNEL_ETCD_PREFIX": a.etcd.prefix,
            "FLANNEL_OPTIONS": options(a),
        },
    )
    result.add(FileWrite(a.flanneld.env_file, env.encode(), facts.env))
    if facts.secret is not None and facts.dropin is not None:
        secret = f"FLANNELD_ETCD_PASSWORD={envfile.quote(facts.password or '')}\n".encode()
        result.add(FileWrite(secret_path(a), secret, facts.secret, mode=0o600, secret=True,
                             why="etcd password, readable by root only"))
        dropin = f"[Service]\nEnvironmentFile={secret_path(a)}\n".encode()
        result.add(FileWrite(dropin_path(a), dropin, facts.dropin, why="hands flanneld the password file"))
    files_change = any(not c.in_place() for c in result.changes)
    needed = files_change or not facts.subnet_file_exists
    why = "its configuration changed" if files_change else "no subnet file yet" if needed else ""
    result.add(Restart(a.flanneld.service, needed, daemon_reload=True, wait_file=a.flanneld.subnet_file,
                       wait_s=a.flanneld.wait_s, why=why))
    result.output = Output(needed, a.flanneld.subnet_file)
    return result


def read_subnet_env(ctx: Context) -> dict[str, str] | None:
    text = ctx.node.files.read_text(ctx.answers.flanneld.subnet_file)
    return None if text is None else flannel.parse_env(text)


def verify(ctx: Context, facts: Facts) -> list[Check]:
    from wizard.steps.etcd import in_force as config_in_force

    a = ctx.answers
    service = a.flanneld.service
    env = read_subnet_env(ctx)
    if env is None:
        if service in ctx.skipped_restarts:
            return [Note("warn", f"{a.flanneld.subnet_file} not written yet: {service} was not restarted",
                         f"restart {service}, then run `flannel-wizard apply FILE --only flanneld,docker,cgroup`")]
        return [Note("failed", f"{a.flanneld.subnet_file} is missing", f"see `journalctl -u {service}`")]
    checks: list[Check] = []
    subnet = env.get("FLANNEL_SUBNET", "")
    network = env.get("FLANNEL_NETWORK", "")
    in_force = config_in_force(ctx)
    if network != in_force["Network"]:
        checks.append(Note("failed", f"{a.flanneld.subnet_file} has FLANNEL_NETWORK={network}, not {in_force['Network']}",
                           f"flanneld runs with another config; restart {service} and check FLANNEL_ETCD_PREFIX"))
        return checks
    lease = flannel.env_lease(env)  # with FLANNEL_IPV6_SUBNET the key is flannel's dual-stack `v4&v6` one
    if lease is None:
        return [Note("failed", f"FLANNEL_SUBNET={subnet!r} in {a.flanneld.subnet_file} is not a subnet")]
    key = f"{a.etcd.prefix}/subnets/{lease.key}"
    try:
        found = ctx.store().get(key)
    except WizardError as exc:
        return [Note("failed", f"cannot read this node's lease {key}: {exc.what}", exc.fix)]
    if found is None:
        return [Note("failed", f"no lease {key} in etcd for FLANNEL_SUBNET={subnet}",
                     f"the subnet file is stale; restart {service} and check that it reaches etcd")]
    try:
        public = json.loads(found[0]).get("PublicIP", "?")
    except (ValueError, AttributeError):
        public = "?"
    checks.append(Note("ok", f"lease {lease} for {public} in etcd matches FLANNEL_SUBNET={subnet} (MTU {env.get('FLANNEL_MTU', '?')})"))
    return checks


STEP = Step("flanneld", "flanneld environment and lease", inspect, plan, verify, needs=("etcd",))
