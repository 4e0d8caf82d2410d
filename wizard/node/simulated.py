"""The demo's node: the real engine runs against it and nothing on the machine changes.

Files are real files under a temporary root (so they can be inspected afterwards); etcd is an
in-memory store; links, the kernel and services are simulated from a scenario, with short delays
so the live status has something to show. systemctl restarts act as the services would, reading
what their unit files under the root name (see simsystemd): flanneld takes a lease and writes
subnet.env, docker moves its bridge to `bip` and picks up its cgroup driver.

Nothing here reaches the host: a journal the demo writes records the demo's identity, and `undo`
on the real machine refuses it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

from wizard import dockerunit, flannel
from wizard.node import simsystemd
from wizard.node.commands import Result
from wizard.node.etcd import Store, api_of, parse_flanneld_version
from wizard.node.files import Files
from wizard.node.linkinfo import LinkInfo, Route, default_mtu
from wizard.node.memstore import MemoryStore
from wizard.node.simcluster import SimCluster

if TYPE_CHECKING:
    from wizard.answers import Etcd


class Clock:
    """Scenario delays divided by --speed; 0 speed-ups are refused by the CLI."""

    def __init__(self, delays: dict[str, float], speed: float) -> None:
        self.delays = delays
        self.speed = speed

    def wait(self, what: str) -> None:
        seconds = float(self.delays.get(what, 0.0)) / self.speed
        if seconds > 0:
            time.sleep(seconds)


class SimKernel:
    def __init__(self, scenario: dict[str, Any]) -> None:
        self.s = scenario.get("kernel", {})
        self.user = scenario.get("user", "root")

    def is_root(self) -> bool:
        return self.user == "root"

    def sysctl(self, key: str) -> str | None:
        value = self.s.get("sysctls", {}).get(key)
        return None if value is None else str(value)

    def module_loaded(self, name: str) -> bool:
        return name in self.s.get("modules", [])

    def swaps(self) -> list[str]:
        return list(self.s.get("swap", []))

    def udp_port_free(self, port: int) -> bool:
        return port not in self.s.get("busy_udp_ports", [])

    def init_name(self) -> str | None:
        return self.s.get("init", "systemd")

    def cgroup_v2(self) -> bool:
        return bool(self.s.get("cgroup_v2", False))


class SimLinks:
    def __init__(self, scenario: dict[str, Any], clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._links: dict[str, LinkInfo] = {}
        for n, item in enumerate(scenario.get("links", []), start=1):
            self._links[item["name"]] = LinkInfo(item["name"], n, int(item["mtu"]), item.get("kind", ""),
                                                 tuple(item.get("ipv4", [])))
        self._routes = [
            Route(ipaddress.IPv4Network(r["dst"]), r.get("gateway"), r.get("dev")) for r in scenario.get("routes", [])
        ]

    def close(self) -> None:
        return None

    def link(self, name: str) -> LinkInfo | None:
        with self._lock:
            return self._links.get(name)

    def addresses(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(link.name, cidr) for link in self._links.values() for cidr in link.ipv4]

    def routes(self) -> list[Route]:
        with self._lock:
            return list(self._routes)

    def default_mtu(self) -> int | None:
        return default_mtu(self.routes(), self.link)

    def set_ipv4(self, name: str, wanted: list[str], mtu: int | None = None) -> None:
        from wizard.errors import WizardError

        self.clock.wait("link")
        with self._lock:
            current = self._links.get(name)
            if current is None:
                raise WizardError(f"link {name} does not exist", "start the container runtime so it creates its bridge")
            self._links[name] = LinkInfo(name, current.index, mtu or current.mtu, current.kind, tuple(wanted))
            # the kernel's connected routes follow the addresses
            self._routes = [r for r in self._routes if r.dev != name or r.gateway]
            self._routes += [Route(ipaddress.IPv4Interface(c).network, None, name) for c in wanted]


class SimCommands:
    def __init__(self, node: SimulatedNode) -> None:
        self.node = node

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.node.scenario.get("binaries", []) else None

    def run(self, *argv: str, timeout: float = 30.0, input: str | None = None) -> Result:
        if self.which(argv[0]) is None:
            return Result(tuple(argv), 127, "", f"{argv[0]}: command not found")
        self.node.clock.wait("command")
        if argv[0] == "systemctl":
            return self._systemctl(argv)
        if argv[0] == "flanneld" and any(a.lstrip("-") == "version" for a in argv[1:]):
            return Result(tuple(argv), 0, "", self.node.flanneld_version + "\n")  # flanneld prints it to stderr
        if argv[:2] == ("docker", "info"):
            return Result(tuple(argv), 0, self.node.docker_driver + "\n", "")
        if argv[0] == "kubectl":
            return self.node.cluster.kubectl(tuple(argv), input)
        if argv[0] == "iptables-save":
            return self.node.cluster.iptables_save(tuple(argv))
        return Result(tuple(argv), 0, "", "")

    def _systemctl(self, argv: tuple[str, ...]) -> Result:
        node = self.node
        if node.kernel.init_name() != "systemd":
            return Result(argv, 1, "", "System has not been booted with systemd as init system (PID 1). Can't operate.")
        if len(argv) >= 3 and argv[1] in ("restart", "start"):
            node.clock.wait("restart")
            return node.start_unit(argv[1], argv[2], argv)
        return Result(argv, 0, "", "")


class _DemoFiles(Files):
    """The demo root's files. They carry the demo's identity, so a journal kept under this root is
    marked as the demo's even by a caller that did not pass one."""

    def __init__(self, root: str, identity: dict[str, str]) -> None:
        super().__init__(root)
        self.node_identity = identity


FLANNELD_BOOLEANS = flannel.FLANNELD_BOOLEANS | {"v"}
# a current upstream release unless the scenario says `flanneld_version:` (CentOS 7's package printed 0.7.1)
DEFAULT_FLANNELD_VERSION = "v0.26.1"
DOCKERD_BOOLEANS = dockerunit.BOOLEANS
DOCKER_CONFIG = "/etc/docker/daemon.json"


class SimulatedNode:
    simulated = True

    def __init__(self, scenario: dict[str, Any], speed: float = 1.0, root: str | None = None) -> None:
        self.scenario = scenario
        self.root = os.path.abspath(root or tempfile.mkdtemp(prefix=f"flannel-wizard-demo-{scenario['name']}-"))
        os.makedirs(self.root, exist_ok=True)
        self.clock = Clock(scenario.get("delays", {}), speed)
        self.files: Files = _DemoFiles(self.root, self.identity())
        self.kernel = SimKernel(scenario)
        self.links = SimLinks(scenario, self.clock)
        self.commands = SimCommands(self)
        self.cluster = SimCluster(self)
        self.http = _SimHttp(self.cluster)
        etcd = scenario.get("etcd", {})
        delay = float(scenario.get("delays", {}).get("etcd", 0)) / speed
        # a key set to null is not there: a scenario removes what its base scenario has
        self.store = MemoryStore("http://127.0.0.1:2379", str(etcd.get("version", "3.4.23")),
                                 {k: v for k, v in (etcd.get("keys") or {}).items() if v is not None}, delay)
        # the v2 keys API's keys (`keys_v2:`), apart from v3's as etcd keeps them: flanneld before v0.18 reads these
        self.store_v2 = MemoryStore(self.store.endpoint, str(etcd.get("version", "3.4.23")),
                                    {k: v for k, v in (etcd.get("keys_v2") or {}).items() if v is not None}, delay,
                                    parent=self.store)
        self.store.down = bool(etcd.get("down"))
        # what `flanneld --version` prints; v0.18.0 and later read the v3 API
        self.flanneld_version = str(scenario.get("flanneld_version", DEFAULT_FLANNELD_VERSION))
        self.docker_driver = scenario.get("docker", {}).get("default_cgroup_driver", "cgroupfs")
        # why each unit that failed to start did, as its journal would say
        self.unit_log: dict[str, str] = {}
        simsystemd.install(self.files, scenario)
        for path, text in scenario.get("files", {}).items():
            self.files.write(path, text.encode())
        self._docker_at_boot()

    def identity(self) -> dict[str, str]:
        return {"kind": "demo", "scenario": str(self.scenario["name"]), "root": self.root}

    def etcd(self, settings: Etcd, password: str | None) -> Store:
        store = self.store_v2 if settings.api == "v2" else self.store
        self.store.endpoint = self.store_v2.endpoint = settings.endpoints[0]
        store.version()  # connect: refused when the scenario has etcd down
        return _Handle(store)

    def flanneld_store(self) -> MemoryStore:
        """The store the installed flanneld reads: v2 before v0.18.0, v3 from then on."""
        version = parse_flanneld_version(self.flanneld_version)
        return self.store_v2 if version is not None and api_of(version) == "v2" else self.store

    def close(self) -> None:
        return None

    # ------------------------------------------------------------ simulated services

    def start_unit(self, verb: str, name: str, argv: tuple[str, ...]) -> Result:
        """`systemctl start|restart NAME`, answered as systemd would from the unit files under the root."""
        unit = simsystemd.load(self.files, name)
        if unit is None:
            return Result(argv, 5, "", simsystemd.not_found(verb, name))
        if not unit.exec_start:
            return Result(argv, 1, "", f"Failed to {verb} {unit.name}: Unit {unit.name} has a bad unit file setting.")
        try:
            env = simsystemd.environment(self.files, unit)
        except simsystemd.MissingEnvironmentFile as exc:
            self.unit_log[unit.name] = f"Failed to load environment files: {exc}: No such file or directory"
            return Result(argv, 1, "", simsystemd.job_failed(unit.name, "of unavailable resources or another system error"))
        command = simsystemd.command(unit, env)
        program = os.path.basename(command[0]) if command else ""
        if program in ("flanneld", "flanneld-start"):
            error = self._start_flanneld(program, command[1:], env)
        elif program in ("dockerd", "dockerd-current"):
            error = self._start_docker(command[1:])
        else:
            error = ""
        if error:
            self.unit_log[unit.name] = error
            # flanneld's own words for a full network, as the test stand-in gives them too
            shown = error if "out of subnets" in error else simsystemd.job_failed(unit.name)
            return Result(argv, 1, "", shown)
        self.unit_log.pop(unit.name, None)
        return Result(argv, 0, "", "")

    # ---- docker

    def _docker_config(self, args: list[str]) -> tuple[dict[str, list[str]], str, dict[str, Any]]:
        """dockerd's flags, the config file it reads and that file's settings; ValueError as dockerd refuses."""
        opts = simsystemd.flags(args, DOCKERD_BOOLEANS)
        path = (opts.get("config-file") or [DOCKER_CONFIG])[-1]
        text = self.files.read_text(path)
        if text is None:
            if "config-file" in opts:
                raise ValueError(f"unable to configure the Docker daemon with file {path}: open {path}: no such file or directory")
            return opts, path, {}
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise ValueError(f"unable to configure the Docker daemon with file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"unable to configure the Docker daemon with file {path}: not a JSON object")
        # every flag against the key dockerd compares it with, as the real one does (wizard/dockerunit.py)
        both = [(dockerunit.JSON_KEYS.get(flag, flag), flag) for flag in opts
                if flag not in dockerunit.MERGED and dockerunit.JSON_KEYS.get(flag, flag) in data]
        if both:
            listed = ", ".join(f"{key}: (from flag: {', '.join(opts[flag])}, from file: {data[key]})" for key, flag in both)
            raise ValueError(f"unable to configure the Docker daemon with file {path}: the following directives are "
                             f"specified both as a flag and in the configuration file: {listed}")
        return opts, path, data

    def _docker_driver_from(self, opts: dict[str, list[str]], data: dict[str, Any]) -> str:
        from wizard.runtimes import docker_exec_opt

        default = self.scenario.get("docker", {}).get("default_cgroup_driver", "cgroupfs")
        if "exec-opt" in opts:
            return docker_exec_opt({"exec-opts": opts["exec-opt"]}) or default
        return docker_exec_opt(data) or default

    def _docker_at_boot(self) -> None:
        """The driver the running dockerd reports before anything is restarted: what its unit gives it."""
        unit = simsystemd.load(self.files, "docker")
        if unit is None:
            return
        try:
            env = simsystemd.environment(self.files, unit)
            opts, _path, data = self._docker_config(simsystemd.command(unit, env)[1:])
        except (simsystemd.MissingEnvironmentFile, ValueError):
            return  # dockerd would not be running; the docker step reports the file
        self.docker_driver = self._docker_driver_from(opts, data)

    def _start_docker(self, args: list[str]) -> str:
        try:
            opts, _path, data = self._docker_config(args)
        except ValueError as exc:
            return str(exc)
        self.docker_driver = self._docker_driver_from(opts, data)
        bip = (opts.get("bip") or [data.get("bip") or ""])[-1]
        mtu = (opts.get("mtu") or [data.get("mtu") or 1500])[-1]
        if bip:
            self.links.set_ipv4("docker0", [str(bip)], int(mtu))
        return ""

    # ---- flanneld

    def _start_flanneld(self, program: str, args: list[str], env: dict[str, str]) -> str:
        if program == "flanneld-start":
            # the package's wrapper hands flanneld its env file's endpoints and prefix as flags
            # (`${FLANNEL_ETCD_ENDPOINTS:-${FLANNEL_ETCD}}`), and execs it with its environment
            args = [f"-etcd-endpoints={env.get('FLANNEL_ETCD_ENDPOINTS') or env.get('FLANNEL_ETCD', '')}",
                    f"-etcd-prefix={env.get('FLANNEL_ETCD_PREFIX') or env.get('FLANNEL_ETCD_KEY', '')}", *args]
        opts = simsystemd.flags(args, FLANNELD_BOOLEANS)

        def flag(name: str, default: str) -> str:
            # a flag, else flanneld's own FLANNELD_<NAME> variable
            values = opts.get(name)
            value = values[-1] if values else env.get("FLANNELD_" + name.upper().replace("-", "_"), "")
            return value or default

        prefix = flag("etcd-prefix", "/coreos.com/network")
        store = self.flanneld_store()
        if store.down:
            return "Couldn't fetch network config: client: etcd cluster is unavailable or misconfigured"
        found = store.get(prefix + "/config")
        if found is None:
            # each flanneld's own words: the old one reads the v2 keys API, the new one v3
            if store is self.store_v2:
                return f"Couldn't fetch network config: 100: Key not found ({prefix}/config)"
            return ("Couldn't fetch network config: flannel config not found in etcd store. "
                    "Did you create your config using etcdv3 API?")
        cfg = json.loads(found[0])
        try:
            checked = flannel.check_config(cfg)
        except flannel.ConfigProblem as exc:
            return f"Couldn't fetch network config: {exc.message}"
        # -public-ip, else an -iface given as an address, else the scenario's address of the default route's device
        iface = flag("iface", "")
        public_ip = flag("public-ip", "") or (iface if iface[:1].isdigit() else "") or self.scenario.get("public_ip", "127.0.0.1")
        taken = dict(store.list(prefix + "/subnets/"))
        mine = next((k for k, v in taken.items() if json.loads(v).get("PublicIP") == public_ip), None)
        lease = flannel.parse_lease_key(mine) if mine else None
        if lease is None:
            lease = flannel.first_free_lease(checked, taken)
            if lease is None:
                return "failed to acquire lease: out of subnets"
            value = {"PublicIP": public_ip, "BackendType": cfg["Backend"]["Type"],
                     "BackendData": {"VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:44"}}
            store.put(f"{prefix}/subnets/{lease.key}", json.dumps(value))
        device_mtu = self.links.default_mtu() or 1500
        mtu = flannel.backend_mtu(cfg["Backend"], device_mtu)
        masq = flag("ip-masq", "false") == "true"
        subnet_file = flag("subnet-file", "/run/flannel/subnet.env")
        self.files.write(subnet_file, flannel.subnet_env(checked, lease, mtu, masq).encode())
        return ""


class _SimHttp:
    """HTTP answered by the simulated pods: nothing leaves the process."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster

    def get(self, url: str, timeout: float) -> tuple[bool, str]:
        return self.cluster.http_get(url, timeout)


class _Handle(Store):
    """What `node.etcd()` hands out: the shared in-memory store, which closing a run must not end."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.endpoint = store.endpoint

    def version(self) -> str:
        return self.store.version()

    def get(self, key: str) -> tuple[str, int] | None:
        return self.store.get(key)

    def create(self, key: str, value: str) -> int | None:
        return self.store.create(key, value)

    def cas(self, key: str, value: str, revision: int) -> int | None:
        return self.store.cas(key, value, revision)

    def delete_if(self, key: str, revision: int) -> bool:
        return self.store.delete_if(key, revision)

    def list(self, prefix: str) -> list[tuple[str, str]]:
        return self.store.list(prefix)
