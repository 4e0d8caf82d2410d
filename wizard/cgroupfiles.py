"""Structural edits of the files that set a cgroup driver: JSON, TOML and YAML stay what they were,
with every other setting (and, for TOML and YAML, every comment) kept."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shlex
from typing import Any

from wizard import envfile, flannel, runtimes


def docker_daemon_json(text: str | None, driver: str) -> str:
    data: dict[str, Any] = json.loads(text) if text and text.strip() else {}
    opts = [o for o in data.get("exec-opts", []) or [] if str(o).partition("=")[0].strip() != "native.cgroupdriver"]
    data["exec-opts"] = [*opts, f"native.cgroupdriver={driver}"]
    return json.dumps(data, indent=2) + "\n"


def containerd_config(text: str | None, driver: str, spot: runtimes.ContainerdSpot | None = None) -> str:
    """The containerd file with the default runtime's driver set where `spot` says, in the file's own
    version: a version line is never added or changed (version 2 on a version-1 file makes
    containerd refuse its `[plugins.cri]`). A runtime table the wizard creates gets its runtime_type,
    which containerd does not fill in for a runtime named in the file (checked with `config dump`)."""
    import tomlkit

    doc = tomlkit.parse(text or "")
    if spot is None:
        version = doc.get("version")
        spot = runtimes.ContainerdSpot(runtimes.CRI_TABLE.get(int(version) if version else 1, runtimes.CRI_TABLE[2]))
    if not doc:  # a new or empty file: nothing of version 1 to keep, so a version both 1.6 and 2.x read
        version = 3 if spot.table == runtimes.CRI_TABLE[3] else 2
        doc["version"] = version
        spot = dataclasses.replace(spot, table=runtimes.CRI_TABLE[version], legacy=False, default_runtime=False)
    cri = _tables(doc, spot.table)
    if spot.legacy:
        cri["systemd_cgroup"] = driver == "systemd"
        return tomlkit.dumps(doc)
    containerd = _tables(cri, ("containerd",))
    if spot.default_runtime:
        runtime = _tables(containerd, ("default_runtime",))
    else:
        runtimes_table = _tables(containerd, ("runtimes",))
        created = spot.runtime not in runtimes_table
        runtime = _tables(runtimes_table, (spot.runtime,), last_plain=True)
        if created or "runtime_type" not in runtime:
            runtime["runtime_type"] = runtimes.RUNC_V2
    options = _tables(runtime, ("options",), last_plain=True)
    options["SystemdCgroup"] = driver == "systemd"
    return tomlkit.dumps(doc)


def _tables(table: Any, path: tuple[str, ...], last_plain: bool = False) -> Any:
    """The table at `path` under `table`, made where missing: a table with only sub-tables is written
    as a header-less super table, as containerd's own files are."""
    import tomlkit

    for i, part in enumerate(path):
        if part not in table:
            plain = last_plain and i == len(path) - 1
            table[part] = tomlkit.table(is_super_table=not plain)
        table = table[part]
    return table


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


def kubelet_env(text: str, driver: str, variable: str = "KUBELET_ARGS") -> str:
    """`variable` with its --cgroup-driver replaced (or added); other arguments and lines untouched."""
    args = flannel.parse_env(text).get(variable, "")
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
    return envfile.update(text, {variable: shlex.join(out)})


def docker_env(text: str, driver: str, variable: str) -> str:
    """`variable` with the value of its `--exec-opt native.cgroupdriver=` replaced, the rest as it was."""
    args = flannel.parse_env(text).get(variable, "")
    new = re.sub(r"(native\.cgroupdriver\s*=\s*)[^\s'\"]*", lambda m: m.group(1) + driver, args)
    return envfile.update(text, {variable: new})


def env_flag(text: str, driver: str, variable: str, flag: str) -> str:
    return docker_env(text, driver, variable) if flag == "exec-opt" else kubelet_env(text, driver, variable)
