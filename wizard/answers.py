"""The answers: a typed model, loaded from YAML with every problem reported at once as FILE:LINE:COL.

Secrets are never values here, only references (`password_env`, `password_file`, `psk_env`, `psk_file`).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from wizard import flannel, yamlpos
from wizard.errors import AnswersInvalidError, InputError


class Section(BaseModel):
    # defer_build: schemas are built once, on first use, for the whole tree instead of per class
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"'{value}' is not an http:// or https:// URL — write it like http://10.0.0.5:2379")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"'{value}' has a bad port — use a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"'{value}' has no host — write it like http://10.0.0.5:2379")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"'{value}' has a path — an etcd endpoint is scheme://host:port only")
    if port is None:
        raise ValueError(f"'{value}' has no port — etcd clients listen on :2379 by default")
    return value.rstrip("/")


def _network(value: str, what: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise ValueError(f"'{value}' is not an IPv4 CIDR — write it like 172.30.0.0/16") from None
    if "/" not in value:
        raise ValueError(f"'{value}' has no prefix length — write {what} like 172.30.0.0/16")
    if str(net) != value:
        raise ValueError(f"'{value}' has host bits set — did you mean {net}?")
    return value


class Etcd(Section):
    endpoints: list[Annotated[str, AfterValidator(_url)]] = Field(
        default_factory=lambda: ["http://127.0.0.1:2379"], min_length=1
    )
    prefix: str = "/kube-centos/network"
    api: Literal["v3", "v2"] = "v3"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    timeout_s: float = Field(3, gt=0, le=120)
    on_existing: Literal["fail", "keep", "replace"] = "fail"

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/") or "//" in value or " " in value:
            raise ValueError(
                f"'{value}' is not a key prefix — write it like /kube-centos/network "
                "(leading slash, no trailing slash); flanneld reads PREFIX/config"
            )
        if value.endswith("/config"):
            raise ValueError(
                f"'{value}' ends in /config — give the prefix only; the wizard writes PREFIX/config itself"
            )
        return value

    @property
    def secure(self) -> bool:
        return any(e.startswith("https://") for e in self.endpoints)


class Vxlan(Section):
    type: Literal["vxlan"]
    vni: int = Field(1, ge=0, le=16777215)
    port: int = Field(0, ge=0, le=65535)
    gbp: bool = False
    direct_routing: bool = False
    learning: bool = False
    mtu: int | None = Field(None, ge=576, le=9000)


class HostGw(Section):
    type: Literal["host-gw"]


class Udp(Section):
    type: Literal["udp"]
    port: int = Field(8285, ge=1, le=65535)


class Ipip(Section):
    type: Literal["ipip"]
    direct_routing: bool = False


class Wireguard(Section):
    type: Literal["wireguard"]
    psk_env: str | None = None
    psk_file: str | None = None
    listen_port: int = Field(51820, ge=1, le=65535)
    listen_port_v6: int = Field(51821, ge=1, le=65535)
    mtu: int | None = Field(None, ge=576, le=9000)
    persistent_keepalive_interval: int | None = Field(None, ge=0, le=65535)
    mode: Literal["separate", "auto", "ipv4", "ipv6"] = "separate"


Backend = Annotated[Vxlan | HostGw | Udp | Ipip | Wireguard, Field(discriminator="type")]
BACKEND_MODELS: dict[str, type[Section]] = {
    "vxlan": Vxlan, "host-gw": HostGw, "udp": Udp, "ipip": Ipip, "wireguard": Wireguard,
}


class Network(Section):
    cidr: str = "172.30.0.0/16"
    subnet_len: int | None = Field(24, ge=1, le=32)
    subnet_min: str | None = None
    subnet_max: str | None = None
    service_cidr: str | None = "10.254.0.0/16"
    backend: Backend = Field(default_factory=lambda: Vxlan(type="vxlan"))

    @field_validator("cidr", "service_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        return None if value is None else _network(value, "it")

    @field_validator("subnet_min", "subnet_max")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an IPv4 address — write it like 172.30.1.0") from None
        return value

    def flannel_config(self, secrets: bool = True) -> dict[str, Any]:
        """The JSON flanneld reads from PREFIX/config; Backend.Type is always written."""
        cfg: dict[str, Any] = {"Network": self.cidr}
        if self.subnet_len is not None:
            cfg["SubnetLen"] = self.subnet_len
        if self.subnet_min:
            cfg["SubnetMin"] = self.subnet_min
        if self.subnet_max:
            cfg["SubnetMax"] = self.subnet_max
        backend: dict[str, Any] = {"Type": self.backend.type}
        names = flannel.BACKEND_OPTIONS[self.backend.type]
        for key in names:
            if key == "psk":
                continue
            if key in self.backend.model_fields_set and getattr(self.backend, key) is not None:
                backend[names[key]] = getattr(self.backend, key)
        if isinstance(self.backend, Wireguard) and (self.backend.psk_env or self.backend.psk_file):
            backend["PSK"] = read_secret(self.backend.psk_env, self.backend.psk_file) if secrets else "********"
        cfg["Backend"] = backend
        return cfg


class Flanneld(Section):
    env_file: str = "/etc/sysconfig/flanneld"
    subnet_file: str = "/run/flannel/subnet.env"
    iface: str | None = None
    ip_masq: bool = False
    service: str = "flanneld"
    wait_s: float = Field(30, gt=0, le=600)


class DockerOpts(Section):
    individual: bool = True
    combined: bool = True
    combined_key: str = "DOCKER_OPTS"
    ip_masq: bool = True

    @field_validator("combined_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"'{value}' is not a shell variable name — use letters, digits and _")
        return value


class Docker(Section):
    bridge: str = "docker0"
    opts_file: str = "/run/docker_opts.env"
    opts: DockerOpts = Field(default_factory=DockerOpts)
    daemon_json: str | None = "/etc/docker/daemon.json"
    service: str = "docker"

    @field_validator("bridge")
    @classmethod
    def _bridge(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", value):
            raise ValueError(f"'{value}' is not an interface name — at most 15 letters, digits, '-', '_' or '.'")
        return value


class Cgroup(Section):
    driver: Literal["auto", "systemd", "cgroupfs"] = "auto"
    runtime: Literal["auto", "docker", "containerd", "cri-o"] = "auto"
    kubelet_config: str = "/var/lib/kubelet/config.yaml"
    kubelet_env: str = "/etc/kubernetes/kubelet"
    kubelet_service: str = "kubelet"


class SmokeTest(Section):
    enabled: bool = True
    kubeconfig: str | None = None
    namespace: str = "default"
    deployment: str = "nginx"
    image: str = "nginx:1.9"
    replicas: int = Field(2, ge=1, le=50)
    labels: dict[str, str] = Field(default_factory=lambda: {"run": "load-balancer-example"})
    container_port: int = Field(80, ge=1, le=65535)
    service: str = "example-service"
    service_port: int = Field(8080, ge=1, le=65535)
    timeout_s: float = Field(120, gt=0, le=3600)
    cleanup: bool = True


class Answers(Section):
    version: Literal[1]
    etcd: Etcd = Field(default_factory=Etcd)
    network: Network = Field(default_factory=Network)
    flanneld: Flanneld = Field(default_factory=Flanneld)
    docker: Docker = Field(default_factory=Docker)
    cgroup: Cgroup = Field(default_factory=Cgroup)
    smoke_test: SmokeTest = Field(default_factory=SmokeTest)

    def etcd_password(self) -> str | None:
        return read_secret(self.etcd.password_env, self.etcd.password_file)


# Secrets typed into the wizard, by the variable name the saved answers will give for them. They live
# in this process only: not in os.environ, where every child process would inherit them.
_typed: dict[str, str] = {}


def remember_secret(env: str, value: str | None) -> None:
    if value:
        _typed[env] = value
    else:
        _typed.pop(env, None)


def env_secret(env: str) -> str | None:
    return _typed.get(env, os.environ.get(env))


def read_secret(env: str | None, file: str | None) -> str | None:
    if env:
        value = env_secret(env)
        if value is None:
            raise InputError(f"environment variable {env} is not set", f"export {env}=... before running")
        return value
    if file:
        try:
            return Path(file).read_text().rstrip("\n")
        except OSError as exc:
            raise InputError(f"cannot read secret file {file}: {exc.strerror}", "check the path and its permissions") from None
    return None


# ---------------------------------------------------------------- loading with positions


@dataclass(frozen=True)
class Problem:
    line: int
    col: int
    message: str
    loc: tuple[Any, ...] = ()  # where in the answers: ("etcd", "endpoints", 0)

    def render(self, file: str) -> str:
        return f"{file}:{self.line}:{self.col}: {self.message}"


class AnswersInvalid(AnswersInvalidError):
    def __init__(self, file: str, problems: list[Problem], data: Any = None) -> None:
        self.file = file
        self.data = data  # the mapping as read, so the TUI can still prefill from a file with problems
        self.problems = sorted(problems, key=lambda p: (p.line, p.col))
        super().__init__(f"{file}: {len(self.problems)} problem(s)")

    def __str__(self) -> str:
        return "\n".join(p.render(self.file) for p in self.problems)


def _fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _model_at(path: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    model: Any = Answers
    for part in path:
        if model is Network and part == "backend":
            kind = data.get("network", {}).get("backend", {}).get("type") if isinstance(data, dict) else None
            model = BACKEND_MODELS.get(kind if isinstance(kind, str) else "")
            if model is None:
                return None
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if model is None:
            return None
    return model


def _strip_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # a discriminated union puts the tag into the location: network.backend.vxlan.port
    if len(loc) >= 3 and loc[:2] == ("network", "backend") and loc[2] in BACKEND_MODELS:
        return loc[:2] + loc[3:]
    return loc


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _message(err: dict[str, Any], loc: tuple[Any, ...], data: Any) -> str:
    kind = err["type"]
    name = _dotted(loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = _model_at(loc[:-1], data)
        known = _fields(parent) if parent else []
        if loc[:2] == ("network", "backend") and parent is not None:
            btype = data["network"]["backend"].get("type")
            others = [t for t, m in BACKEND_MODELS.items() if key in m.model_fields and t != btype]
            hint = f" (it is a {others[0]} option)" if others else ""
            options = ", ".join(f for f in known if f != "type") or "none"
            return f"backend {btype} has no option '{key}'{hint} — options for {btype}: {options}"
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if close:
            return f"unknown key '{name}' — did you mean '{close[0]}'?"
        return f"unknown key '{name}' — allowed here: {', '.join(known)}"
    if kind == "missing":
        if loc == ("version",):
            return "missing 'version' — add `version: 1` at the top of the file"
        return f"missing '{name}' — add it"
    if kind == "union_tag_invalid":
        return f"{name}.type must be one of {', '.join(BACKEND_MODELS)} — got {err.get('input', {}).get('type')!r}"
    if kind == "union_tag_not_found":
        return f"{name} needs a type — one of {', '.join(BACKEND_MODELS)}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{name} must be {expected} — got {err.get('input')!r}"
    if kind == "value_error":
        return f"{name}: {err['ctx']['error']}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        wanted = {
            "int": "a whole number", "float": "a number", "bool": "true or false",
            "string": "a string", "list": "a list", "dict": "a mapping", "model": "a mapping",
        }
        base = kind.split("_")[0]
        return f"{name} must be {wanted.get(base, base)} — got {err.get('input')!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short"):
        return f"{name} is out of range: {err['msg'].lower()} — got {err.get('input')!r}"
    return f"{name}: {err['msg']}"


def _semantic(answers: Answers) -> list[tuple[tuple[Any, ...], str]]:
    """Rules that span several keys: flannel's own config rules, overlaps, secrets, TLS pairs."""
    out: list[tuple[tuple[Any, ...], str]] = []
    net = answers.network
    where = {"Network": "cidr", "SubnetLen": "subnet_len", "SubnetMin": "subnet_min", "SubnetMax": "subnet_max"}
    try:
        flannel.subnet_range(net.flannel_config(secrets=False))
    except flannel.ConfigProblem as exc:
        out.append((("network", where[exc.field]), f"{exc.message} (flannel's rule) — adjust network.{where[exc.field]}"))
    if net.service_cidr:
        pod, svc = ipaddress.IPv4Network(net.cidr), ipaddress.IPv4Network(net.service_cidr)
        if pod.overlaps(svc):
            out.append((("network", "service_cidr"), f"service CIDR {svc} overlaps the flannel network {pod} — kube-proxy would capture pod traffic; choose ranges that do not overlap"))
    if isinstance(net.backend, Wireguard):
        if net.backend.psk_env and net.backend.psk_file:
            out.append((("network", "backend", "psk_file"), "give psk_env or psk_file, not both"))
        elif net.backend.psk_env and env_secret(net.backend.psk_env) is None:
            out.append((("network", "backend", "psk_env"), f"environment variable {net.backend.psk_env} is not set — export it before running"))
    etcd = answers.etcd
    if etcd.password_env and etcd.password_file:
        out.append((("etcd", "password_file"), "give password_env or password_file, not both"))
    elif etcd.password_env and env_secret(etcd.password_env) is None:
        out.append((("etcd", "password_env"), f"environment variable {etcd.password_env} is not set — export {etcd.password_env}=... before running"))
    if (etcd.password_env or etcd.password_file) and not etcd.username:
        out.append((("etcd", "username"), "a password is given but no username — set etcd.username"))
    if etcd.username and not (etcd.password_env or etcd.password_file):
        out.append((("etcd", "username"), "username without a password — set password_env or password_file (never the password itself)"))
    if bool(etcd.cert_file) != bool(etcd.key_file):
        missing = "key_file" if etcd.cert_file else "cert_file"
        out.append((("etcd", missing), "cert_file and key_file go together — flanneld uses TLS only when both are given"))
    schemes = {e.split(":", 1)[0] for e in etcd.endpoints}
    if len(schemes) > 1:
        out.append((("etcd", "endpoints"), "endpoints mix http:// and https:// — use one scheme for all"))
    elif "https" in schemes and not (etcd.cert_file and etcd.key_file):
        out.append((("etcd", "endpoints"), "https endpoints need cert_file and key_file — flanneld uses TLS only when both are given (a CA alone means plain http)"))
    elif "http" in schemes and (etcd.cert_file or etcd.ca_file):
        out.append((("etcd", "endpoints"), "TLS files are given but the endpoints are http:// — use https:// endpoints"))
    opts = answers.docker.opts
    if not opts.individual and not opts.combined:
        out.append((("docker", "opts", "combined"), "individual and combined are both false — set at least one (mk-docker-opts.sh would write both)"))
    return out


Loc = tuple[Any, ...]


def check(data: dict[str, Any]) -> tuple[Answers | None, list[tuple[Loc, str, str]]]:
    """Validate a mapping; every problem as (location, kind, message). The TUI maps the location to
    the field on screen, `parse` to a line and column."""
    found: list[tuple[Loc, str, str]] = []
    try:
        answers: Answers | None = Answers.model_validate(data)
    except ValidationError as exc:
        answers = None
        for err in exc.errors(include_url=False):
            loc = _strip_tag(tuple(err["loc"]))
            found.append((loc, err["type"], _message(err, loc, data)))
    if answers is None:
        # Cross-key rules still apply to the sections that validated on their own.
        for name, model in (("etcd", Etcd), ("network", Network), ("docker", Docker)):
            section = data.get(name) or {}
            if not isinstance(section, dict):
                continue
            try:
                model.model_validate(section)
            except ValidationError:
                if name != "network" or "backend" not in section:
                    continue
                # A bad backend should not hide the CIDR rules, which do not depend on it.
                section = {k: v for k, v in section.items() if k != "backend"}
                try:
                    model.model_validate(section)
                except ValidationError:
                    continue
            sections: dict[str, Any] = {"etcd": Etcd(), "network": Network(), "docker": Docker()}
            sections[name] = model.model_validate(section)
            partial = Answers.model_construct(version=1, **sections)
            found.extend((loc, "rule", msg) for loc, msg in _semantic(partial) if loc[0] == name)
    else:
        found.extend((loc, "rule", msg) for loc, msg in _semantic(answers))
    return (answers if not found else None), found


def parse(text: str, file: str = "<answers>") -> Answers:
    """Parse and validate; raise AnswersInvalid listing every problem with its position."""
    try:
        located = yamlpos.load(text)
    except yamlpos.YamlSyntaxError as exc:
        raise AnswersInvalid(file, [Problem(exc.pos.line, exc.pos.col, f"{exc.message} — fix the YAML here")]) from None
    data = located.data
    problems: list[Problem] = []
    for path, pos in located.duplicates:
        problems.append(Problem(pos.line, pos.col, f"duplicate key '{_dotted(path)}' — keep one", tuple(path)))
    if data is None:
        raise AnswersInvalid(file, [Problem(1, 1, "the file is empty — start from config.example.yaml")])
    if not isinstance(data, dict):
        raise AnswersInvalid(file, [Problem(1, 1, "the file must be a mapping of sections — start from config.example.yaml")])
    answers, found = check(data)
    for loc, kind, message in found:
        if kind == "extra_forbidden":
            pos = located.where(loc, key=True)
        elif kind == "missing":
            pos = located.where(loc[:-1])
        else:
            pos = located.where(loc)
        problems.append(Problem(pos.line, pos.col, message, loc))
    if problems:
        raise AnswersInvalid(file, list(dict.fromkeys(problems)), data)
    assert answers is not None
    return answers


def load(path: str) -> Answers:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", "give the path of an answers file, e.g. config.example.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}", "check the file") from None
    return parse(text, path)
