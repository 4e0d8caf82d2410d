"""The demo's node: the real engine runs against it and nothing on the machine changes.

Files are real files under a temporary root (so they can be inspected afterwards); etcd is an
in-memory store; links, the kernel and services are simulated from a scenario, with short delays
so the live status has something to show. systemctl restarts act as the services would: flanneld
takes a lease and writes subnet.env, docker moves its bridge to `bip` and picks up its cgroup driver.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

from wizard import flannel
from wizard.node.commands import Result
from wizard.node.etcd import Store
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
            service = argv[2].removesuffix(".service")
            if service == node.services.get("flanneld"):
                return node.start_flanneld(argv)
            if service == node.services.get("docker"):
                node.start_docker()
        return Result(argv, 0, "", "")


class SimulatedNode:
    simulated = True

    def __init__(self, scenario: dict[str, Any], speed: float = 1.0, root: str | None = None) -> None:
        self.scenario = scenario
        self.root = root or tempfile.mkdtemp(prefix=f"flannel-wizard-demo-{scenario['name']}-")
        os.makedirs(self.root, exist_ok=True)
        self.clock = Clock(scenario.get("delays", {}), speed)
        self.files = Files(self.root)
        self.kernel = SimKernel(scenario)
        self.links = SimLinks(scenario, self.clock)
        self.commands = SimCommands(self)
        self.cluster = SimCluster(self)
        self.http = _SimHttp(self.cluster)
        etcd = scenario.get("etcd", {})
        self.store = MemoryStore("http://127.0.0.1:2379", str(etcd.get("version", "3.4.23")),
                                 dict(etcd.get("keys", {})), float(scenario.get("delays", {}).get("etcd", 0)) / speed)
        self.store.down = bool(etcd.get("down"))
        self.docker_driver = scenario.get("docker", {}).get("default_cgroup_driver", "cgroupfs")
        # which unit names play flanneld and docker; the app sets them from the answers
        self.services = {"flanneld": "flanneld", "docker": "docker", "flanneld_env": "/etc/sysconfig/flanneld",
                         "daemon_json": "/etc/docker/daemon.json"}
        for path, text in scenario.get("files", {}).items():
            self.files.write(path, text.encode())
        self._read_docker_driver()

    def follow(self, flanneld_service: str, env_file: str, docker_service: str, daemon_json: str | None) -> None:
        """Tell the simulated services which unit names and files the answers use."""
        self.services = {"flanneld": flanneld_service, "docker": docker_service, "flanneld_env": env_file,
                         "daemon_json": daemon_json or ""}

    def etcd(self, settings: Etcd, password: str | None) -> Store:
        self.store.endpoint = settings.endpoints[0]
        self.store.version()  # connect: refused when the scenario has etcd down
        return _Handle(self.store)

    def close(self) -> None:
        return None

    # ------------------------------------------------------------ simulated services

    def _daemon_json(self) -> dict[str, Any] | None:
        path = self.services.get("daemon_json")
        text = self.files.read_text(path) if path else None
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return None  # dockerd would not start; the docker step reports the file
        return data if isinstance(data, dict) else None

    def _read_docker_driver(self) -> None:
        from wizard.runtimes import docker_exec_opt

        data = self._daemon_json()
        if data is None:
            return
        default = self.scenario.get("docker", {}).get("default_cgroup_driver", "cgroupfs")
        self.docker_driver = docker_exec_opt(data) or default

    def start_docker(self) -> None:
        self._read_docker_driver()
        data = self._daemon_json()
        if data and data.get("bip"):
            self.links.set_ipv4("docker0", [data["bip"]], int(data.get("mtu") or 1500))

    def start_flanneld(self, argv: tuple[str, ...]) -> Result:
        text = self.files.read_text(self.services["flanneld_env"]) or ""
        env = flannel.parse_env(text)
        prefix = env.get("FLANNEL_ETCD_PREFIX", "/coreos.com/network")
        opts = shlex.split(env.get("FLANNEL_OPTIONS", ""))
        flags = dict(o.lstrip("-").split("=", 1) if "=" in o else (o.lstrip("-"), "true") for o in opts)
        failed = Result(argv, 1, "", f"Job for {argv[2]} failed because the control process exited with error code.")
        if self.store.down:
            return failed
        found = self.store.get(prefix + "/config")
        if found is None:
            return failed
        cfg = json.loads(found[0])
        rng = flannel.subnet_range(cfg)
        public_ip = self.scenario.get("public_ip", "127.0.0.1")
        taken = dict(self.store.list(prefix + "/subnets/"))
        mine = next((k for k, v in taken.items() if json.loads(v).get("PublicIP") == public_ip), None)
        if mine is None:
            for candidate in rng.network.subnets(new_prefix=rng.subnet_len):
                if candidate.network_address < rng.first or candidate.network_address > rng.last:
                    continue
                key = f"{prefix}/subnets/{flannel.lease_key(str(candidate))}"
                if key not in taken:
                    value = {"PublicIP": public_ip, "BackendType": cfg["Backend"]["Type"],
                             "BackendData": {"VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:44"}}
                    self.store.put(key, json.dumps(value))
                    mine = key
                    break
            else:
                return Result(argv, 1, "", "failed to acquire lease: out of subnets")
        subnet = ipaddress.IPv4Network(flannel.lease_subnet(mine))
        device_mtu = self.links.default_mtu() or 1500
        mtu = flannel.backend_mtu(cfg["Backend"], device_mtu)
        masq = "true" if flags.get("ip-masq") == "true" else "false"
        subnet_file = flags.get("subnet-file", "/run/flannel/subnet.env")
        self.files.write(subnet_file, (
            f"FLANNEL_NETWORK={cfg['Network']}\nFLANNEL_SUBNET={subnet.network_address + 1}/{subnet.prefixlen}\n"
            f"FLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={masq}\n").encode())
        return Result(argv, 0, "", "")


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
