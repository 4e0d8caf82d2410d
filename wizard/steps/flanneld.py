"""flanneld: its settings written through the channel its unit really reads, the etcd password kept
apart (root only), restart, wait for its lease.

How flanneld gets its settings depends on how its unit starts it (read as systemd does, wizard/units.py):
- the CentOS package's `flanneld-start` wrapper (the article's node) turns FLANNEL_ETCD_ENDPOINTS and
  FLANNEL_ETCD_PREFIX from its EnvironmentFile into flags, and ExecStart= passes $FLANNEL_OPTIONS;
- the upstream binary run directly reads its flags, else a `FLANNELD_<FLAG>` variable for each flag not
  given (coreos/pkg flagutil.SetFlagsFromEnv: upper case, dashes as underscores, empty means unset); it
  never reads FLANNEL_ETCD_*.
Both see FLANNELD_ETCD_PASSWORD: the wrapper execs flanneld with its environment. A flag written in
ExecStart= itself beats anything the wizard writes in a file, so such a flag that disagrees with the
answers is reported (with the fix) rather than a value written that flanneld would ignore.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wizard import envfile, flannel, units
from wizard.changes import FileWrite, Restart
from wizard.errors import WizardError
from wizard.node.files import NotText, decode_text
from wizard.steps import Note, Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node.files import Files, FileState
    from wizard.steps import Check, Context

DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env"
WRAPPER = "flanneld-start"
BINARY = "flanneld"
BOOLEANS = flannel.FLANNELD_BOOLEANS
# the flags the wizard sets, and the answers key each comes from (for the fix in a conflict)
ANSWER_OF = {"etcd-endpoints": "etcd.endpoints", "etcd-prefix": "etcd.prefix", "iface": "flanneld.iface",
             "ip-masq": "flanneld.ip_masq", "subnet-file": "flanneld.subnet_file", "etcd-cafile": "etcd.ca_file",
             "etcd-certfile": "etcd.cert_file", "etcd-keyfile": "etcd.key_file", "etcd-username": "etcd.username"}


def env_name(flag: str) -> str:
    """The variable upstream flanneld reads for a flag not given: `-etcd-endpoints` -> FLANNELD_ETCD_ENDPOINTS."""
    return "FLANNELD_" + flag.upper().replace("-", "_").replace(".", "_")


@dataclass(frozen=True)
class UnitFacts:
    """How flanneld's unit starts it: what the step needs to pick the channel and see conflicts."""

    name: str  # flanneld.service
    files: tuple[str, ...]  # the unit file and its drop-ins, as systemd applies them
    program: str  # the base name ExecStart= runs: flanneld-start, flanneld, or something else
    exec_from: str  # the file whose ExecStart= is in force
    reads_env_file: bool  # an EnvironmentFile= of the unit is the answers' env_file
    uses_options: bool  # ExecStart= expands $FLANNEL_OPTIONS
    # (flag, value, variable) for each flag ExecStart= gives that the wizard does not write itself: written
    # there literally (variable "") or through a variable set elsewhere. The password's value is never kept.
    given: tuple[tuple[str, str, str], ...] = ()
    # (variable, value, file): a variable the wizard writes, set again by an EnvironmentFile= read after env_file
    later: tuple[tuple[str, str, str], ...] = ()


@dataclass
class Facts:
    env: FileState
    secret: FileState | None
    dropin: FileState | None
    subnet_file_exists: bool
    password: str | None = field(default=None, repr=False)  # from password_env / password_file; memory only
    iface_missing: str = ""  # flanneld.iface names no link on this node: the names of those that exist
    unit: UnitFacts | None = None  # None: no unit by the service's name was found
    env_dropin: FileState | None = None  # the drop-in that makes the unit read env_file, when it does not


@dataclass(frozen=True)
class Output:
    """What the docker step reads: whether flanneld is restarted in this run (its lease may be new)."""

    restart_planned: bool
    subnet_file: str


def secret_path(answers: Answers) -> str:
    return answers.flanneld.env_file + ".etcd-password"


def dropin_path(answers: Answers) -> str:
    return f"/etc/systemd/system/{answers.flanneld.service}.service.d/50-flannel-wizard-etcd-password.conf"


def env_dropin_path(answers: Answers) -> str:
    # late in the name order: systemd reads EnvironmentFile= lines in order and the last one to set a variable wins
    return f"/etc/systemd/system/{answers.flanneld.service}.service.d/90-flannel-wizard-env.conf"


def flag_values(answers: Answers) -> dict[str, str]:
    """Each flag the wizard sets, with its value ("" = not given: flanneld's default)."""
    a = answers
    return {
        "etcd-endpoints": ",".join(a.etcd.endpoints),
        "etcd-prefix": a.etcd.prefix,
        "iface": a.flanneld.iface or "",
        "ip-masq": "true" if a.flanneld.ip_masq else "",
        "subnet-file": a.flanneld.subnet_file,
        "etcd-cafile": a.etcd.ca_file or "",
        "etcd-certfile": a.etcd.cert_file or "",
        "etcd-keyfile": a.etcd.key_file or "",
        "etcd-username": a.etcd.username or "",
    }


def kept_options(env_text: str | None) -> list[str]:
    """The words of the env file's FLANNEL_OPTIONS that set flags the answers have no key for
    (-public-ip, -iface-regex, -iptables-forward-rules, ...): the operator's own, kept as written."""
    value = flannel.parse_env(env_text).get("FLANNEL_OPTIONS", "") if env_text else ""
    try:
        words = shlex.split(value)
    except ValueError:
        words = value.split()
    owned = {*ANSWER_OF, "etcd-password"}  # the flags the wizard sets, and the password it keeps apart
    kept: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        name, eq, _value = word.lstrip("-").partition("=")
        takes_next = word.startswith("-") and not eq and name not in BOOLEANS and i < len(words) \
            and not words[i].startswith("-")
        group = [word, words[i]] if takes_next else [word]
        i += 1 if takes_next else 0
        if not (word.startswith("-") and name in owned):
            kept += group
    return kept


def options(answers: Answers, etcd_flags: bool = False, kept: list[str] | None = None) -> str:
    """FLANNEL_OPTIONS: for the wrapper every flag but the two it passes itself; for a unit that runs the
    binary with $FLANNEL_OPTIONS (`etcd_flags`) every flag; then the operator's own flags (`kept`)."""
    opts = []
    for flag, value in flag_values(answers).items():
        if (flag in ("etcd-endpoints", "etcd-prefix") and not etcd_flags) or not value:
            continue
        if flag == "subnet-file" and value == DEFAULT_SUBNET_FILE:
            continue
        opts.append(f"-{flag}" if flag == "ip-masq" else f"-{flag}={value}")
    return " ".join(opts + (kept or []))  # systemd splits $FLANNEL_OPTIONS at spaces and keeps quotes: words as written


def channel(facts: Facts) -> tuple[str, bool]:
    """(layout, options in FLANNEL_OPTIONS): "wrapper" where the unit runs the CentOS wrapper or where no
    unit was found (the article's layout), else "binary": flanneld's own FLANNELD_* variables."""
    unit = facts.unit
    if unit is None:
        return "wrapper", True
    if unit.program == WRAPPER:
        return "wrapper", unit.uses_options
    return "binary", unit.uses_options


def env_values(answers: Answers, facts: Facts, kept: list[str] | None = None) -> dict[str, str]:
    """What the env file must hold for the channel the unit reads; `kept`: the operator's own flags
    already in FLANNEL_OPTIONS."""
    layout, in_options = channel(facts)
    flags = flag_values(answers)
    if layout == "wrapper":
        out = {"FLANNEL_ETCD_ENDPOINTS": flags["etcd-endpoints"], "FLANNEL_ETCD_PREFIX": flags["etcd-prefix"]}
        if in_options:
            out["FLANNEL_OPTIONS"] = options(answers, kept=kept)
        else:  # the wrapper passes its environment on to flanneld, which reads these for flags not given
            out.update({env_name(f): v for f, v in flags.items() if f not in ("etcd-endpoints", "etcd-prefix")})
        return out
    if in_options:  # the unit runs the binary with $FLANNEL_OPTIONS: flags, which beat any variable
        return {"FLANNEL_OPTIONS": options(answers, etcd_flags=True, kept=kept)}
    # every variable the wizard owns, empty when unset (flanneld ignores an empty one), so an old value goes
    return {env_name(f): ("true" if f == "ip-masq" and v else "false" if f == "ip-masq" else v) for f, v in flags.items()}


def inspect(ctx: Context) -> Facts:
    a = ctx.answers
    auth = bool(a.etcd.username)
    unit = units.read(ctx.node, a.flanneld.service)
    unit_facts = _unit_facts(ctx.node.files, unit, a) if unit is not None else None
    return Facts(
        ctx.file_state(a.flanneld.env_file),
        ctx.file_state(secret_path(a)) if auth else None,
        ctx.file_state(dropin_path(a)) if auth else None,
        ctx.node.files.exists(a.flanneld.subnet_file),
        a.etcd_password() if auth else None,
        _iface_missing(ctx),
        unit_facts,
        ctx.file_state(env_dropin_path(a)) if unit_facts is not None and not unit_facts.reads_env_file else None,
    )


def _unit_facts(files: Files, unit: units.Unit, answers: Answers) -> UnitFacts:
    env_file = answers.flanneld.env_file
    env: dict[str, str] = dict(unit.environment)
    later: list[tuple[str, str, str]] = []
    seen_ours = False
    for path, _optional in unit.environment_files:
        text = files.read_text(path)  # one missing is fine here: the wizard may be about to write it
        found = flannel.parse_env(text) if text is not None else {}
        env.update(found)
        if path == env_file:
            seen_ours = True
        elif seen_ours:
            # a password's value is never kept (a traceback's locals would show it)
            later += [(k, "(holds a password)" if "PASSWORD" in k or "-etcd-password" in v else v, path)
                      for k, v in found.items() if k.startswith(("FLANNEL_", "FLANNELD_"))]
    program = unit.program()
    # the variables the wizard writes in env_file: flags that come through them are the wizard's own
    ours = {"FLANNEL_ETCD_ENDPOINTS", "FLANNEL_ETCD_PREFIX"} if program == WRAPPER else set()
    if unit.uses("FLANNEL_OPTIONS"):
        ours.add("FLANNEL_OPTIONS")
    given = []
    for flag, words in units.flag_words(unit, env, BOOLEANS).items():
        for word in words:
            if word.variable in ours:
                continue
            given.append((flag, "(set)" if flag == "etcd-password" else word.text, word.variable))
    return UnitFacts(unit.name, tuple(unit.files), program, unit.where("ExecStart"), unit.reads(env_file),
                     unit.uses("FLANNEL_OPTIONS"), tuple(given), tuple(later))


def _iface_missing(ctx: Context) -> str:
    iface = ctx.answers.flanneld.iface
    links = ctx.node.links
    if not iface or links.link(iface) is not None:
        return ""
    try:
        ipaddress.ip_address(iface)  # an address: flanneld's -iface takes one; it must be this node's
    except ValueError:
        names = dict.fromkeys(name for name, _cidr in links.addresses() if name != "lo")
        return ", ".join(names) or "none with an address"
    if any(cidr.split("/")[0] == iface for _name, cidr in links.addresses()):
        return ""
    held = ", ".join(f"{cidr.split('/')[0]} ({name})" for name, cidr in links.addresses() if name != "lo")
    return held or "none with an address"


def _channel_notes(answers: Answers, facts: Facts, result: Plan) -> None:
    """Say which channel is written and why; stop on what flanneld would take over the answers."""
    a = answers
    unit, env_file = facts.unit, a.flanneld.env_file
    layout, in_options = channel(facts)
    if unit is None:
        result.note("warn", f"no {units.unit_name(a.flanneld.service)} unit found: writing the CentOS flannel "
                    f"package's layout (the article's): FLANNEL_ETCD_ENDPOINTS, FLANNEL_ETCD_PREFIX and "
                    f"FLANNEL_OPTIONS in {env_file}, which its flanneld-start wrapper passes to flanneld",
                    f"looked in {', '.join(units.UNIT_DIRS)}; if flanneld is started otherwise, install its unit "
                    "(or set flanneld.service) and plan again")
        return
    if layout == "wrapper":
        what = ("FLANNEL_ETCD_ENDPOINTS, FLANNEL_ETCD_PREFIX and FLANNEL_OPTIONS" if in_options else
                "FLANNEL_ETCD_ENDPOINTS and FLANNEL_ETCD_PREFIX (its flags), and FLANNELD_* variables for the rest "
                "(ExecStart= does not pass $FLANNEL_OPTIONS)")
        result.note("ok", f"{unit.name} runs the flanneld-start wrapper ({unit.exec_from}): writing {what} in {env_file}")
    elif unit.program == BINARY and in_options:
        result.note("ok", f"{unit.name} runs the flanneld binary itself with $FLANNEL_OPTIONS ({unit.exec_from}): "
                    f"writing every flag, the etcd endpoints and prefix too, in FLANNEL_OPTIONS in {env_file}")
    elif unit.program == BINARY:
        result.note("ok", f"{unit.name} runs the flanneld binary itself ({unit.exec_from}): writing its own "
                    f"FLANNELD_* variables in {env_file} (it never reads FLANNEL_ETCD_*)")
    else:
        result.note("warn", f"{unit.name} runs {unit.program or 'nothing'} ({unit.exec_from}), neither flanneld nor "
                    f"its wrapper: writing flanneld's own FLANNELD_* variables in {env_file}",
                    f"they reach flanneld only if {unit.program or 'ExecStart='} passes its environment on; check it")
    wanted = flag_values(a)
    for flag, value, variable in unit.given:
        via = f" (from ${variable})" if variable else ""
        if flag == "kube-subnet-mgr" and value == "true":
            result.note("failed", f"{unit.name} runs flanneld with -kube-subnet-mgr{via} ({unit.exec_from}): it takes "
                        "its subnet from the Kubernetes API and never reads etcd",
                        f"remove -kube-subnet-mgr from ExecStart= in {unit.exec_from} to use etcd")
        elif flag == "etcd-password" and a.etcd.username:
            result.note("failed", f"{unit.name} passes -etcd-password on flanneld's command line{via} "
                        f"({unit.exec_from}): a flag beats FLANNELD_ETCD_PASSWORD, and a command line is readable "
                        "by every user", f"remove -etcd-password from ExecStart= in {unit.exec_from}; the wizard "
                        f"keeps the password in {secret_path(a)} (root only)")
        elif flag in wanted and value != wanted[flag] and not (flag == "ip-masq" and value == "false" and not wanted[flag]):
            shown = wanted[flag] or "not given (flanneld's default)"
            result.note("failed", f"{unit.name} passes -{flag}={value} on flanneld's command line{via} "
                        f"({unit.exec_from}): a flag beats what {env_file} says, so the answers' value "
                        f"({ANSWER_OF[flag]}: {shown}) would be ignored",
                        f"remove -{flag} from ExecStart= in {unit.exec_from} (or override ExecStart= in a drop-in), "
                        f"or set {ANSWER_OF[flag]} to {value}")
    writes = env_values(a, facts)
    for variable, value, path in unit.later:
        if variable in writes and value != writes[variable]:
            result.note("failed", f"{path} sets {variable} again after {env_file} in {unit.name}: systemd keeps the "
                        "last value, so the answers' value would be ignored",
                        f"remove {variable} from {path}, or make it agree with the answers")


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
    _channel_notes(a, facts, result)
    if result.failed:
        return result
    kept = kept_options(text)
    values = env_values(a, facts, kept)
    if kept and "FLANNEL_OPTIONS" in values:
        result.note("ok", f"keeping {' '.join(kept)} in FLANNEL_OPTIONS of {a.flanneld.env_file}: flags the answers "
                    "have no key for stay as you wrote them")
    env = envfile.update(text, values)
    result.add(FileWrite(a.flanneld.env_file, env.encode(), facts.env))
    if facts.unit is not None and not facts.unit.reads_env_file and facts.env_dropin is not None:
        dropin = f"[Service]\nEnvironmentFile={a.flanneld.env_file}\n".encode()
        result.add(FileWrite(env_dropin_path(a), dropin, facts.env_dropin,
                             why=f"{facts.unit.name} does not read {a.flanneld.env_file}"))
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
    from wizard.steps.etcd import SHARED_FIX, public_ip, shared_message, shared_public_ips
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
    v6_problems = _ipv6_env_problems(a, env, in_force)
    if v6_problems:
        return v6_problems
    lease = flannel.env_lease(env)  # with FLANNEL_IPV6_SUBNET the key is flannel's dual-stack `v4&v6` one
    if lease is None:
        return [Note("failed", f"FLANNEL_SUBNET={subnet!r} in {a.flanneld.subnet_file} is not a subnet")]
    key = f"{a.etcd.prefix}/subnets/{lease.key}"
    try:
        leases = ctx.store().list(f"{a.etcd.prefix}/subnets/")
    except WizardError as exc:
        return [Note("failed", f"cannot read this node's lease {key}: {exc.what}", exc.fix)]
    # compared as leases, not as text: a key names both subnets when the lease is dual-stack, and a
    # flanneld run with IPv4 alone keeps a dual-stack lease it held before (its subnet.env names the IPv4 part)
    parsed = [(flannel.parse_lease_key(k), k, v) for k, v in leases]
    mine = next(((k, v) for found, k, v in parsed if found == lease), None) or next(
        ((k, v) for found, k, v in parsed if found is not None and lease.subnet is not None and found.subnet == lease.subnet), None)
    if mine is None:
        return [Note("failed", f"no lease {key} in etcd for FLANNEL_SUBNET={subnet}",
                     f"the subnet file is stale; restart {service} and check that it reaches etcd")]
    public = public_ip(mine[1])
    held = flannel.parse_lease_key(mine[0])
    if _wants_ipv6(a, in_force) and held is not None and held.ipv6_subnet != lease.ipv6_subnet:
        # matched by the IPv4 part: the lease in etcd is not the one subnet.env names for IPv6
        part = f"IPv6 part {held.ipv6_subnet}" if held.ipv6_subnet else "no IPv6 part"
        return [Note("failed", f"this node's lease {mine[0]} in etcd has {part}, but {a.flanneld.subnet_file} has "
                     f"FLANNEL_IPV6_SUBNET={env.get('FLANNEL_IPV6_SUBNET')}", f"the subnet file is stale or the lease "
                     f"was taken without IPv6; restart {service} so it takes a dual-stack lease and rewrites the file")]
    checks.append(Note("ok", f"lease {lease} for {public} in etcd matches FLANNEL_SUBNET={subnet}"
                       + (f" and FLANNEL_IPV6_SUBNET={env['FLANNEL_IPV6_SUBNET']}" if lease.ipv6_subnet else "")
                       + f" (MTU {env.get('FLANNEL_MTU', '?')})"))
    shared = shared_public_ips(leases).get(public)
    if shared:
        checks.append(Note("failed", f"this node's lease {lease} has PublicIP {public}, as other leases do: "
                           + shared_message(public, shared), SHARED_FIX))
    return checks


def _wants_ipv6(a: Answers, in_force: dict[str, Any]) -> bool:
    return bool(a.network.enable_ipv6 or in_force.get("EnableIPv6"))


def _ipv6_env_problems(a: Answers, env: dict[str, str], in_force: dict[str, Any]) -> list[Check]:
    """With IPv6 on, flanneld writes FLANNEL_IPV6_NETWORK (the config's IPv6Network) and FLANNEL_IPV6_SUBNET
    into subnet.env; a file without them comes from a flanneld that took no IPv6 subnet, and pods get none."""
    if not _wants_ipv6(a, in_force):
        return []
    service, path = a.flanneld.service, a.flanneld.subnet_file
    wanted = in_force.get("IPv6Network") or a.network.flannel_config(secrets=False).get("IPv6Network")
    found = env.get("FLANNEL_IPV6_NETWORK", "")
    why = (f"restart {service} so it reads the config with EnableIPv6 (flanneld takes an IPv6 subnet only when "
           "its interface has a global IPv6 address, or -public-ipv6 names one), then check `journalctl -u "
           f"{service}`")
    if not found:
        return [Note("failed", f"{path} has no FLANNEL_IPV6_NETWORK, though the flannel config enables IPv6 "
                     f"(IPv6Network {wanted}): flanneld runs without IPv6", why)]
    try:
        same = ipaddress.ip_network(found, strict=False) == ipaddress.ip_network(str(wanted), strict=False)
    except ValueError:
        same = False
    if not same:
        return [Note("failed", f"{path} has FLANNEL_IPV6_NETWORK={found}, not the config's IPv6Network {wanted}",
                     f"flanneld runs with another config; restart {service} and check FLANNEL_ETCD_PREFIX")]
    if not env.get("FLANNEL_IPV6_SUBNET"):
        return [Note("failed", f"{path} has FLANNEL_IPV6_NETWORK={found} but no FLANNEL_IPV6_SUBNET: this node "
                     "has no IPv6 lease", why)]
    return []


STEP = Step("flanneld", "flanneld environment and lease", inspect, plan, verify, needs=("etcd",),
            restarts=lambda ctx: (ctx.answers.flanneld.service,))
