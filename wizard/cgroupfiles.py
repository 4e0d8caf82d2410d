"""Structural edits of the files that set a cgroup driver: JSON, TOML and YAML stay what they were,
with every other setting (and, for TOML and YAML, every comment) kept."""

from __future__ import annotations

import io
import json
import shlex
from typing import Any

from wizard import envfile, flannel, runtimes


def docker_daemon_json(text: str | None, driver: str) -> str:
    data: dict[str, Any] = json.loads(text) if text and text.strip() else {}
    opts = [o for o in data.get("exec-opts", []) or [] if str(o).partition("=")[0].strip() != "native.cgroupdriver"]
    data["exec-opts"] = [*opts, f"native.cgroupdriver={driver}"]
    return json.dumps(data, indent=2) + "\n"


def containerd_config(text: str | None, driver: str) -> str:
    import tomlkit

    doc = tomlkit.parse(text or "")
    if "version" not in doc:
        doc["version"] = 2
    version = int(doc["version"])
    table: Any = doc
    for part in runtimes.CONTAINERD_RUNC.get(version, runtimes.CONTAINERD_RUNC[2]):
        if part not in table:
            table[part] = tomlkit.table(is_super_table=True)
        table = table[part]
    table["SystemdCgroup"] = driver == "systemd"
    return tomlkit.dumps(doc)


def crio_dropin(driver: str) -> str:
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("Written by flannel-wizard: the cgroup manager must match kubelet's cgroupDriver."))
    runtime = tomlkit.table()
    runtime["cgroup_manager"] = driver
    # CRI-O requires conmon in a pod cgroup under cgroupfs, and in a systemd slice under systemd.
    runtime["conmon_cgroup"] = "pod" if driver == "cgroupfs" else "system.slice"
    crio = tomlkit.table(is_super_table=True)
    crio["runtime"] = runtime
    doc["crio"] = crio
    return tomlkit.dumps(doc)


def kubelet_config(text: str | None, driver: str) -> str:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(text) if text and text.strip() else None
    if data is None:
        data = yaml.load("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    data["cgroupDriver"] = driver
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def kubelet_env(text: str, driver: str) -> str:
    """KUBELET_ARGS with its --cgroup-driver replaced; other arguments and lines untouched."""
    args = flannel.parse_env(text).get("KUBELET_ARGS", "")
    words = shlex.split(args)
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word == "--cgroup-driver":
            skip = True
            continue
        if word.startswith("--cgroup-driver="):
            continue
        out.append(word)
    out.append(f"--cgroup-driver={driver}")
    return envfile.update(text, {"KUBELET_ARGS": shlex.join(out)})
