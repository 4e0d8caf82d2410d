"""Which container runtime a node has, and which cgroup driver it and kubelet use, read where each
service really reads it (read only).

Each driver comes with the place that sets it (`Where`): the one channel the wizard may write to
change it. Another channel would be ignored (kubelet: a flag beats the config file; containerd: a
later import wins) or refused (dockerd: the same setting as a flag and in daemon.json).
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shlex
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from wizard import flannel, units

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node import NodeLike

CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CRIO_CONFIG = "/etc/crio/crio.conf"
CRIO_DROPINS = "/etc/crio/crio.conf.d"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"
# The table of containerd's CRI runtime settings (`containerd.runtimes.<name>.options`), by config
# version. No `version` line is version 1 (containerd 1.x: Config.GetVersion; 2.x: migrations[0] is
# nil, then v1Migrate). Version 4 (containerd >= 2.3) moved only server properties into plugins
# (serviceMigrate): the CRI runtime table is version 3's.
CRI_TABLE: dict[int, tuple[str, str]] = {
    1: ("plugins", "cri"),
    2: ("plugins", "io.containerd.grpc.v1.cri"),
    3: ("plugins", "io.containerd.cri.v1.runtime"),
    4: ("plugins", "io.containerd.cri.v1.runtime"),
}
# kept for the callers that name a version's runc options table
CONTAINERD_RUNC = {v: (*t, "containerd", "runtimes", "runc", "options") for v, t in CRI_TABLE.items()}
RUNC_V2 = "io.containerd.runc.v2"
LINUX_V1 = "io.containerd.runtime.v1.linux"  # containerd 1.x's shim v1: reads [plugins.cri] systemd_cgroup
DAEMONS = {"docker": "dockerd", "containerd": "containerd", "cri-o": "crio"}
SERVICES = {"containerd": "containerd", "cri-o": "crio"}
# kubelet's --container-runtime-endpoint socket names, and the runtime behind each
SOCKETS = {"containerd.sock": "containerd", "crio.sock": "cri-o", "cri-dockerd.sock": "docker", "dockershim.sock": "docker"}
# Variables a kubelet unit expands that hold extra flags, in the order the wizard prefers to add one:
# the packages' own "put your flags here" variables.
KUBELET_FLAG_VARIABLES = ("KUBELET_EXTRA_ARGS", "KUBELET_ARGS")

Kind = Literal["json", "containerd", "crio-dropin", "yaml", "env-flag", "none"]


@dataclass(frozen=True)
class ContainerdSpot:
    """Where in one containerd file the default runtime's driver is: the CRI table of the file's own
    version, the runtime's name, and whether it is the legacy `systemd_cgroup` key."""

    table: tuple[str, ...]
    runtime: str = "runc"
    legacy: bool = False  # [plugins.cri] systemd_cgroup (containerd 1.x, runtime io.containerd.runtime.v1.linux)
    default_runtime: bool = False  # the deprecated [..containerd.default_runtime] table (containerd 1.x)


@dataclass(frozen=True)
class Where:
    """The one place a driver is written to change it, and how; `refused` (what, fix) when the wizard
    must not write it and says why instead."""

    kind: Kind
    path: str = ""
    variable: str = ""  # env-flag: the variable that holds the flags
    flag: str = ""  # env-flag: "cgroup-driver" (kubelet) or "exec-opt" (dockerd)
    containerd: ContainerdSpot | None = None
    refused: tuple[str, str] | None = None
    why: str = ""  # for the plan: why this place


@dataclass(frozen=True)
class Driver:
    driver: str
    source: str  # where it was read, in the operator's words
    where: Where | None = None  # where to write it; None: the answers' default file
    problems: tuple[tuple[str, str], ...] = ()  # (what, fix): the service would not start as configured
    asked_daemon: bool = False  # the running daemon's own answer (docker info), not its configuration's


@dataclass(frozen=True)
class Kubelet:
    """kubelet's driver as it would start: its own setting, and whether it takes the runtime's instead."""

    driver: Driver
    version: tuple[int, int] | None = None
    from_cri: str = ""  # why kubelet takes the driver from the runtime (KEP-4033); "" when it does not


# ------------------------------------------------------------------------------------ the runtime


def _unit(node: NodeLike, name: str) -> units.Unit | None:
    try:
        return units.read(node, name)
    except OSError:
        return None


def kubelet_flags(node: NodeLike, answers: Answers) -> tuple[units.Unit | None, dict[str, list[units.Word]], dict[str, str]]:
    """kubelet's unit, its ExecStart flags as expanded (each with the variable it came from), and the
    file each variable came from. No unit: no flags."""
    unit = _unit(node, answers.cgroup.kubelet_service)
    if unit is None:
        return None, {}, {}
    origin: dict[str, str] = {}
    try:
        env = units.environment(node.files, unit, origin)
    except units.MissingEnvironmentFile:
        env = dict(unit.environment)  # systemd would not start it; read what is there
    return unit, units.flag_words(unit, env), origin


def runtime(node: NodeLike, answers: Answers) -> str:
    """The runtime kubelet uses: the answers', else what the node's own files say (kubelet's
    --container-runtime-endpoint, then which runtime has a unit, then config files), and only then
    which daemon is on PATH (which, under --root, is this machine's, not the node's)."""
    chosen = answers.cgroup.runtime
    if chosen != "auto":
        return chosen
    _unit_, flags, _origin = kubelet_flags(node, answers)
    endpoint = (flags.get("container-runtime-endpoint") or [units.Word("")])[-1].text
    if not endpoint and flags.get("config"):
        # newer kubeadm writes it into the config file (containerRuntimeEndpoint, kubelet >= 1.27)
        config = _yaml(node.files.read_text(flags["config"][-1].text)) or {}
        endpoint = str(config.get("containerRuntimeEndpoint") or "")
    for socket, name in SOCKETS.items():
        if endpoint.endswith(socket):
            return name
    for name in ("docker", "containerd", "cri-o"):
        service = runtime_service(answers, name)
        if _unit(node, service) is not None:
            return name
    daemon_json = answers.docker.daemon_json
    if daemon_json and node.files.exists(daemon_json):
        return "docker"
    if node.files.exists(CONTAINERD_CONFIG):
        return "containerd"
    if node.files.exists(CRIO_CONFIG) or node.files.list(CRIO_DROPINS):
        return "cri-o"
    for name in ("docker", "containerd", "cri-o"):
        if node.commands.which(DAEMONS[name]):
            return name
    return "docker"  # the article's runtime


def runtime_service(answers: Answers, name: str) -> str:
    return answers.docker.service if name == "docker" else SERVICES[name]


def systemd_is_init(node: NodeLike) -> bool:
    return node.kernel.init_name() == "systemd"


def load_json(node: NodeLike, path: str) -> dict[str, Any] | None:
    text = node.files.read_text(path)
    if text is None or not text.strip():
        return None
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the top level is not a JSON object")
    return data


def docker_exec_opt(data: dict[str, Any] | None) -> str | None:
    for opt in (data or {}).get("exec-opts", []) or []:
        key, _, value = str(opt).partition("=")
        if key.strip() == "native.cgroupdriver":
            return value.strip()
    return None


def _word_file(unit: units.Unit, origin: dict[str, str], word: units.Word) -> tuple[str, bool]:
    """The file a flag's word was written in, and whether that is an environment file (which the
    wizard may edit) rather than the unit or a drop-in (which it leaves to the operator)."""
    if not word.variable:
        return unit.where("ExecStart"), False
    path = origin.get(word.variable, unit.where(f"Environment:{word.variable}"))
    return path, path not in unit.files


def runtime_driver(node: NodeLike, answers: Answers, name: str, ask_daemon: bool = True) -> Driver:
    if name == "docker":
        return docker_driver(node, answers, ask_daemon)
    if name == "containerd":
        return containerd_driver(node)
    return crio_driver(node)


def docker_driver(node: NodeLike, answers: Answers, ask_daemon: bool = True) -> Driver:
    """dockerd's driver: the running daemon's answer when asked; else its unit's
    `--exec-opt native.cgroupdriver=` flag; else daemon.json (the one `--config-file` names); else the
    default for this cgroup version."""
    unit = _unit(node, answers.docker.service)
    flags: dict[str, list[units.Word]] = {}
    origin: dict[str, str] = {}
    if unit is not None:
        try:
            env = units.environment(node.files, unit, origin)
        except units.MissingEnvironmentFile:
            env = dict(unit.environment)
        flags = units.flag_words(unit, env)
    config_files = flags.get("config-file")
    path = config_files[-1].text if config_files else (answers.docker.daemon_json or DOCKER_DAEMON_JSON)
    why_path = "the --config-file dockerd's unit gives" if config_files else ""
    flag = next((w for w in reversed(flags.get("exec-opt", [])) if w.text.partition("=")[0].strip() == "native.cgroupdriver"), None)
    problems: list[tuple[str, str]] = []
    try:
        data = load_json(node, path)
    except ValueError as exc:
        data = None
        problems.append((f"{path} is not valid JSON: {exc}", "fix the file by hand (dockerd would not start either)"))
    where: Where
    found: tuple[str, str] | None = None
    if flag is not None and unit is not None:
        file, editable = _word_file(unit, origin, flag)
        value = flag.text.partition("=")[2].strip()
        shown = f"--exec-opt {flag.text}"
        found = (value, f"{shown} in {file}" + (f" (${flag.variable})" if flag.variable else ""))
        if data is not None and "exec-opts" in data:
            problems.append((
                f"dockerd would not start: the following directives are specified both as a flag and in the "
                f"configuration file: exec-opts (flag {shown} in {file}, and exec-opts in {path})",
                f"remove exec-opts from {path}: the unit's flag is the one that counts"))
        if editable:
            where = Where("env-flag", file, flag.variable, "exec-opt",
                          why=f"the flag dockerd gets from ${flag.variable} in {file}")
        else:
            where = Where("env-flag", file, refused=(
                f"docker's unit passes {shown} as a flag ({file}); writing exec-opts into {path} too would "
                f"stop dockerd (\"the following directives are specified both as a flag and in the configuration "
                f"file: exec-opts\")",
                f"change the flag: a drop-in /etc/systemd/system/{unit.name}.d/ with ExecStart= cleared and "
                f"ExecStart= set again with native.cgroupdriver=<driver>, then systemctl daemon-reload; or set "
                f"cgroup.driver to {value} in the answers"))
    else:
        where = Where("json", path, why=why_path)
        if data is not None:
            value = docker_exec_opt(data)
            if value:
                found = (value, f"{path} exec-opts")
    if ask_daemon:
        result = node.commands.run("docker", "info", "--format", "{{.CgroupDriver}}", timeout=10)
        answer = result.out.strip()
        if result.ok and answer in ("systemd", "cgroupfs"):
            return Driver(answer, "docker info", where, tuple(problems), asked_daemon=True)
    if found:
        return Driver(found[0], found[1], where, tuple(problems))
    default = "systemd" if node.kernel.cgroup_v2() else "cgroupfs"
    return Driver(default, "docker's default on this cgroup version", where, tuple(problems))


def crio_driver(node: NodeLike) -> Driver:
    manager, source = "systemd", "CRI-O's default"
    for path in [CRIO_CONFIG, *node.files.list(CRIO_DROPINS)]:
        text = node.files.read_text(path)
        if not text or not path.endswith(".conf"):
            continue
        try:
            value = tomllib.loads(text).get("crio", {}).get("runtime", {}).get("cgroup_manager")
        except tomllib.TOMLDecodeError:
            continue
        if value:
            manager, source = value, f"{path} cgroup_manager"
    return Driver(manager, source)


# ------------------------------------------------------------------------------------ containerd


def version_of(text: str) -> tuple[int, int] | None:
    """(major, minor) from a `--version` line: `containerd github.com/containerd/containerd 1.6.20~ds1 …`,
    `containerd github.com/containerd/containerd/v2 v2.1.0 …`, `Kubernetes v1.31.2`."""
    for word in text.split()[1:]:
        found = re.match(r"v?(\d+)\.(\d+)", word)
        if found:
            return int(found.group(1)), int(found.group(2))
    return None


def containerd_version(node: NodeLike) -> tuple[int, int] | None:
    if not node.commands.which("containerd"):
        return None
    result = node.commands.run("containerd", "--version", timeout=10)
    return version_of(result.out) if result.ok else None


@dataclass
class ContainerdFile:
    path: str
    doc: dict[str, Any]
    version: int  # 1 when the file has no version line


def _file_version(doc: dict[str, Any]) -> int:
    value = doc.get("version", 0)
    return value if isinstance(value, int) and value > 0 else 1


def _glob(node: NodeLike, pattern: str) -> list[str]:
    """filepath.Glob for the common case, a pattern in the last component (`/etc/containerd/conf.d/*.toml`),
    in the sorted order Go's Glob returns."""
    directory, name = posixpath.split(pattern)
    if any(c in directory for c in "*?["):
        return []
    return [p for p in node.files.list(directory) if fnmatch.fnmatchcase(posixpath.basename(p), name)]


def _imports(node: NodeLike, parent: str, imports: list[Any], major: int) -> list[str]:
    """resolveImports: a relative path is relative to the importing file's directory. containerd 1.x
    globbed a pattern as written (relative to its working directory, / under systemd); 2.x joins it
    to the directory first (cmd/containerd/server/config/config.go, resolveImports)."""
    out: list[str] = []
    for item in imports:
        path = str(item)
        glob = "*" in path
        if major >= 2 or not glob:
            path = posixpath.normpath(path)
            if not posixpath.isabs(path):
                path = posixpath.join(posixpath.dirname(parent), path)
        elif not posixpath.isabs(path):
            path = posixpath.join("/", path)
        out.extend(_glob(node, path) if glob else [path])
    return out


def containerd_files(node: NodeLike, main: str, major: int) -> tuple[list[ContainerdFile], list[tuple[str, str]]]:
    """The files containerd loads, in its order (LoadConfig: the main file, then its imports, then
    theirs; a file already loaded is skipped), and the problems that would stop it."""
    files: list[ContainerdFile] = []
    problems: list[tuple[str, str]] = []
    pending, loaded = [main], set()
    while pending:
        path, pending = pending[0], pending[1:]
        if path in loaded:
            continue
        text = node.files.read_text(path)
        if text is None:
            if path != main:  # containerd fails on an import it cannot open
                problems.append((f"containerd cannot load {path} (imported, but not there)", "create it or remove it from imports"))
            loaded.add(path)
            continue
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append((f"{path} is not valid TOML: {exc}", "fix the file by hand (containerd would not start either)"))
            loaded.add(path)
            continue
        files.append(ContainerdFile(path, doc, _file_version(doc)))
        loaded.add(path)
        imports = doc.get("imports", [])
        pending.extend(_imports(node, path, imports if isinstance(imports, list) else [], major))
    return files, problems


def _table(doc: Any, path: tuple[str, ...]) -> dict[str, Any] | None:
    for part in path:
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc if isinstance(doc, dict) else None


def _deep_merge(to: dict[str, Any], source: dict[str, Any]) -> None:
    """containerd 2.x's mergeConfig on plugin tables (mergo.WithOverride): tables merged key by key,
    any other value (a false, an array) replaced by the later file's."""
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(to.get(key), dict):
            _deep_merge(to[key], value)
        else:
            to[key] = json.loads(json.dumps(value, default=str)) if isinstance(value, dict) else value


def _cri_v2_view(f: ContainerdFile) -> tuple[dict[str, Any], tuple[str, ...]]:
    """One file's CRI runtime table as containerd 2.x reads it after migrating the file: v1 plugin
    names become URIs (v1Migrate); a v1/v2 `io.containerd.grpc.v1.cri` table's `containerd` keys move
    to `io.containerd.cri.v1.runtime` unless that already has them (plugins/cri/runtime/plugin.go,
    configMigration). Also the table the file's own runtimes live in, for writing."""
    new = _table(f.doc, CRI_TABLE[3]) or {}
    if f.version >= 3:
        return new, CRI_TABLE[3]
    old_path = CRI_TABLE[f.version]
    old = _table(f.doc, old_path) or {}
    view = json.loads(json.dumps(new, default=str))
    containerd = view.setdefault("containerd", {})
    for key, value in (old.get("containerd") or {}).items():
        if key not in containerd and key not in ("snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers"):
            containerd[key] = value
    for key, value in old.items():
        if key not in view and key != "containerd":
            view[key] = value
    runtimes_from_new = isinstance((new.get("containerd") or {}).get("runtimes"), dict)
    return view, CRI_TABLE[3] if runtimes_from_new else old_path


def containerd_driver(node: NodeLike, main: str = CONTAINERD_CONFIG, major: int | None = None) -> Driver:
    """containerd's driver: the default runtime's `SystemdCgroup` (or, on containerd 1.x with the
    shim-v1 runtime, `systemd_cgroup`), after `imports` are merged as this containerd merges them.
    `major` is containerd's major version; None asks the binary, else guesses from the file versions."""
    if major is None:
        found = containerd_version(node)
        major = found[0] if found else None
    guess = major is None
    files, problems = containerd_files(node, main, major or 2)
    if major is None:
        major = 2 if any(f.version >= 3 for f in files) else 1
        if guess and major == 1:
            files, problems = containerd_files(node, main, 1)
    if not files:
        # a new file: version 2, which containerd 1.x and 2.x both read; 3 for a containerd that is 2.x
        spot = ContainerdSpot(CRI_TABLE[3] if major >= 2 and not guess else CRI_TABLE[2])
        return Driver("cgroupfs", "containerd's default", Where("containerd", main, containerd=spot,
                      why=f"{main} does not exist yet"), tuple(problems))
    if major >= 2:
        return _containerd2(files, problems)
    return _containerd1(files, problems)


def _runtime_of(containerd: dict[str, Any], legacy_ok: bool) -> tuple[str, dict[str, Any] | None, bool]:
    if legacy_ok:
        default = containerd.get("default_runtime")
        if isinstance(default, dict) and default.get("runtime_type"):
            return "default", default, True
    name = str(containerd.get("default_runtime_name") or "runc")
    table = (containerd.get("runtimes") or {}).get(name)
    return name, table if isinstance(table, dict) else None, False


def _driver_of(value: Any) -> str:
    return "systemd" if value is True else "cgroupfs"


def _containerd1(files: list[ContainerdFile], problems: list[tuple[str, str]]) -> Driver:
    """containerd 1.x: the version is the last one a file gives (mergo.WithOverride); version 1 reads
    plugins by short name (`cri`), 2 by URI; a later file's plugin table replaces an earlier one's whole
    (services/server/config/config.go, mergeConfig: "Replace entire sections")."""
    version = next((f.version for f in reversed(files) if "version" in f.doc), 1)
    problems = list(problems)
    if version >= 3:
        problems.append((f"containerd 1.x does not read a version {version} configuration (it reads 1 and 2)",
                         "upgrade containerd to 2.x, or write the file as version 2"))
        version = 2
    if version >= 2:
        for f in files:
            short = [k for k in (f.doc.get("plugins") or {}) if "." not in k]
            if short:
                problems.append((f'containerd refuses {f.path}: invalid plugin key URI "{short[0]}" expect io.containerd.x.vx '
                                 f"(a version-1 table in a version-{version} configuration)",
                                 f"rename [plugins.{short[0]}] to its URI ([plugins.\"io.containerd.grpc.v1.{short[0]}\"]) "
                                 f"or remove the version line"))
    table = CRI_TABLE[version]
    holder = next((f for f in reversed(files) if _table(f.doc, table) is not None), None)
    cri = _table(holder.doc, table) if holder else {}
    target = holder or files[0]
    name, rt, from_default = _runtime_of((cri or {}).get("containerd") or {}, legacy_ok=True)
    if rt is None and name != "runc":
        problems.append((f'containerd\'s default_runtime_name is "{name}", but no [..containerd.runtimes.{name}] table '
                         f"exists (containerd's CRI plugin refuses this)", f"define the {name} runtime or set default_runtime_name"))
    legacy = rt is not None and rt.get("runtime_type") == LINUX_V1 and "options" not in rt
    spot = ContainerdSpot(table, name, legacy, from_default)
    why = f"the last file containerd loads with [{_show(table)}] (a later file's table replaces an earlier one's whole)"
    where = Where("containerd", target.path, containerd=spot, why=why if holder and len(files) > 1 else "")
    if legacy:
        value = (cri or {}).get("systemd_cgroup")
        source = f"{target.path} systemd_cgroup" if value is not None else "containerd's default"
        return Driver(_driver_of(value), source, where, tuple(problems))
    options = (rt or {}).get("options")
    value = options.get("SystemdCgroup") if isinstance(options, dict) else None
    source = f"{target.path} SystemdCgroup of runtime {name}" if value is not None else "containerd's default"
    return Driver(_driver_of(value), source, where, tuple(problems))


def _containerd2(files: list[ContainerdFile], problems: list[tuple[str, str]]) -> Driver:
    """containerd 2.x: each file migrated to the current version, then merged key by key, the later
    file winning (cmd/containerd/server/config/config.go: LoadConfigWithPlugins, mergeConfig)."""
    merged: dict[str, Any] = {}
    views = []
    for f in files:
        view, own = _cri_v2_view(f)
        views.append((f, view, own))
        _deep_merge(merged, view)
    name, rt, _ = _runtime_of(merged.get("containerd") or {}, legacy_ok=False)
    problems = list(problems)
    if rt is None and name != "runc":
        problems.append((f'containerd\'s default_runtime_name is "{name}", but no runtime of that name is defined',
                         f"define the {name} runtime or set default_runtime_name"))
    holder = None
    for f, view, own in reversed(views):
        options = (((view.get("containerd") or {}).get("runtimes") or {}).get(name) or {}).get("options")
        if isinstance(options, dict) and "SystemdCgroup" in options:
            holder = (f, own)
            break
    if holder is None:
        first = views[0]
        holder = (first[0], first[2])
    f, own = holder
    spot = ContainerdSpot(own, name)
    options = (rt or {}).get("options")
    value = options.get("SystemdCgroup") if isinstance(options, dict) else None
    source = f"{f.path} SystemdCgroup of runtime {name}" if value is not None else "containerd's default"
    why = "the last file containerd loads that sets it (later files win key by key)" if len(files) > 1 else ""
    return Driver(_driver_of(value), source, Where("containerd", f.path, containerd=spot, why=why), tuple(problems))


def _show(path: tuple[str, ...]) -> str:
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else f'"{p}"' for p in path)


# ------------------------------------------------------------------------------------ kubelet


def kubelet_flag(args: str) -> str | None:
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    found = units.flags(words).get("cgroup-driver")
    return found[-1] if found else None


def _yaml(text: str | None) -> dict[str, Any] | None:
    import yaml

    if not text:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def kubelet_version(node: NodeLike) -> tuple[int, int] | None:
    if not node.commands.which("kubelet"):
        return None
    result = node.commands.run("kubelet", "--version", timeout=10)
    return version_of(result.out) if result.ok else None


def _gate(flags: dict[str, list[units.Word]], config: dict[str, Any] | None) -> bool | None:
    """KubeletCgroupDriverFromCRI as set on this kubelet: a --feature-gates flag beats featureGates in
    the config file; None when neither sets it."""
    for word in reversed(flags.get("feature-gates", [])):
        for item in word.text.split(","):
            key, _, value = item.partition("=")
            if key.strip() == "KubeletCgroupDriverFromCRI":
                return value.strip().lower() == "true"
    gates = (config or {}).get("featureGates")
    if isinstance(gates, dict) and "KubeletCgroupDriverFromCRI" in gates:
        return gates["KubeletCgroupDriverFromCRI"] is True
    return None


def cri_driver_support(runtime_name: str, runtime_version: tuple[int, int] | None) -> bool:
    """Whether the runtime answers the CRI RuntimeConfig call with its cgroup driver: containerd since
    2.0 (internal/cri/server/runtime_config_linux.go); cri-dockerd does not (kubelet then falls back
    to its own setting). CRI-O's support is not assumed here."""
    return runtime_name == "containerd" and runtime_version is not None and runtime_version[0] >= 2


def from_cri(version: tuple[int, int] | None, gate: bool | None, runtime_name: str,
             runtime_version: tuple[int, int] | None) -> str:
    """Why kubelet takes its driver from the runtime (KEP-4033), or "". The gate
    KubeletCgroupDriverFromCRI: alpha in 1.28 (off), beta in 1.31 (on), GA in 1.34 (locked on)
    (pkg/features/kube_features.go)."""
    if version is None or version < (1, 28) or not cri_driver_support(runtime_name, runtime_version):
        return ""
    on = True if version >= (1, 34) else (gate if gate is not None else version >= (1, 31))
    if not on:
        return ""
    shown = f"{runtime_version[0]}.{runtime_version[1]}" if runtime_version else ""
    return (f"kubelet {version[0]}.{version[1]} takes the cgroup driver from {runtime_name} {shown} "
            f"(KEP-4033, feature gate KubeletCgroupDriverFromCRI): its own setting is not used")


def kubelet_driver(node: NodeLike, answers: Answers) -> Driver:
    return kubelet(node, answers).driver


def kubelet(node: NodeLike, answers: Answers, runtime_name: str = "", runtime_version: tuple[int, int] | None = None) -> Kubelet:
    """kubelet's driver with kubelet's own precedence: a --cgroup-driver flag (as its unit expands
    ExecStart: kubeadm-flags.env, /etc/default/kubelet, /etc/sysconfig/kubelet, /etc/kubernetes/kubelet)
    beats cgroupDriver in the file --config names, which beats the default. Where no kubelet unit
    exists, the answers' files are read instead."""
    unit, flags, origin = kubelet_flags(node, answers)
    if unit is None:
        driver, config = _kubelet_from_answers(node, answers)
    else:
        driver, config = _kubelet_from_unit(node, answers, unit, flags, origin)
    version = kubelet_version(node)
    reason = from_cri(version, _gate(flags, config), runtime_name, runtime_version) if runtime_name else ""
    return Kubelet(driver, version, reason)


def _kubelet_from_answers(node: NodeLike, answers: Answers) -> tuple[Driver, dict[str, Any] | None]:
    a = answers.cgroup
    env = node.files.read_text(a.kubelet_env)
    config = _yaml(node.files.read_text(a.kubelet_config))
    why = f"no {a.kubelet_service} unit on this node: the answers' files"
    if env:
        flag = kubelet_flag(flannel.parse_env(env).get("KUBELET_ARGS", ""))
        if flag:
            return Driver(flag, f"--cgroup-driver in KUBELET_ARGS of {a.kubelet_env}",
                          Where("env-flag", a.kubelet_env, "KUBELET_ARGS", "cgroup-driver", why=why)), config
    where = Where("yaml", a.kubelet_config, why=why)
    if config and config.get("cgroupDriver"):
        return Driver(str(config["cgroupDriver"]), f"cgroupDriver in {a.kubelet_config}", where), config
    return Driver("cgroupfs", "kubelet's default", where), config


def _kubelet_from_unit(node: NodeLike, answers: Answers, unit: units.Unit, flags: dict[str, list[units.Word]],
                       origin: dict[str, str]) -> tuple[Driver, dict[str, Any] | None]:
    config_words = flags.get("config")
    config_path = config_words[-1].text if config_words else ""
    config = _yaml(node.files.read_text(config_path)) if config_path else None
    flag = (flags.get("cgroup-driver") or [None])[-1]
    if flag is not None:
        file, editable = _word_file(unit, origin, flag)
        source = f"--cgroup-driver in {f'${flag.variable} of ' if flag.variable else ''}{file}"
        if editable:
            where = Where("env-flag", file, flag.variable, "cgroup-driver",
                          why=f"kubelet's flag beats its config file; it comes from ${flag.variable} in {file}")
        else:
            where = Where("env-flag", file, refused=(
                f"kubelet's --cgroup-driver is written in its unit ({file}), which the wizard does not edit",
                f"change --cgroup-driver there (or in a drop-in under /etc/systemd/system/{unit.name}.d/), then "
                f"systemctl daemon-reload"))
        return Driver(flag.text, source, where), config
    dropin = _config_dir_setting(node, flags)
    if dropin is not None:
        path, value, data = dropin
        if config is not None:
            gates = {**(config.get("featureGates") or {}), **(data.get("featureGates") or {})}
            config = {**config, "featureGates": gates}
        return Driver(value, f"cgroupDriver in {path}", Where(
            "yaml", path, why="the last drop-in of kubelet's --config-dir that sets it (drop-ins beat the --config file)")), config
    if config_path:
        where = Where("yaml", config_path, why=f"the file kubelet's --config names ({unit.where('ExecStart')})")
        if config and config.get("cgroupDriver"):
            return Driver(str(config["cgroupDriver"]), f"cgroupDriver in {config_path}", where), config
        return Driver("cgroupfs", f"kubelet's default (no cgroupDriver in {config_path})", where), config
    return Driver("cgroupfs", "kubelet's default (no --cgroup-driver, no --config)", _kubelet_flag_home(node, unit, origin)), None


def _config_dir_setting(node: NodeLike, flags: dict[str, list[units.Word]]) -> tuple[str, str, dict[str, Any]] | None:
    """cgroupDriver from kubelet's --config-dir drop-ins (KEP-3983, kubelet >= 1.28): its *.conf files in
    lexical order, a later one overriding an earlier one and all of them the --config file. The file
    that sets it last, the value, and the merged drop-ins."""
    words = flags.get("config-dir")
    if not words:
        return None
    found: tuple[str, str] | None = None
    merged: dict[str, Any] = {}
    for path in node.files.list(words[-1].text):
        if not path.endswith(".conf"):
            continue
        data = _yaml(node.files.read_text(path)) or {}
        merged.update(data)
        if data.get("cgroupDriver"):
            found = (path, str(data["cgroupDriver"]))
    return (found[0], found[1], merged) if found else None


def _kubelet_flag_home(node: NodeLike, unit: units.Unit, origin: dict[str, str]) -> Where:
    """Where a new --cgroup-driver goes when kubelet has neither the flag nor a config file: the
    package's variable for extra flags, in the environment file the unit reads it from."""
    for variable in KUBELET_FLAG_VARIABLES:
        if not unit.uses(variable):
            continue
        path = origin.get(variable) or next((p for p, _optional in unit.environment_files
                                              if posixpath.basename(p) == "kubelet"), "")
        if path and path not in unit.files:
            return Where("env-flag", path, variable, "cgroup-driver",
                         why=f"kubelet has no config file; ${variable} in {path} carries its extra flags")
    return Where("env-flag", unit.path, refused=(
        f"kubelet's unit ({unit.path}) gives it neither --config nor a variable for extra flags in an environment file",
        "add --cgroup-driver=<driver> to its ExecStart in a drop-in under /etc/systemd/system/kubelet.service.d/"))


# ------------------------------------------------------------------------------------ messages


def mismatch_message(kubelet_driver_name: str, runtime_name: str, runtime_driver_name: str) -> str:
    """For docker, kubelet's own words of the dockershim era, so the operator recognises the error
    they saw. kubelet prints no such line for containerd or CRI-O: the wizard says it as its own."""
    if runtime_name == "docker":
        return (f'misconfiguration: kubelet cgroup driver: "{kubelet_driver_name}" is different from '
                f'docker cgroup driver: "{runtime_driver_name}"')
    return (f"kubelet's cgroup driver ({kubelet_driver_name}) is not {runtime_name}'s ({runtime_driver_name}) — "
            f"the wizard's own finding: kubelet does not compare them for {runtime_name}, they must agree all the same")

