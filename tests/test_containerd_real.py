"""containerd's cgroup driver, edited by the wizard and judged by the real containerd.

Debian's containerd 1.6 reads config versions 1 and 2: `containerd --config FILE config dump` prints
the configuration it would run with (imports merged, version-1 names mapped), offline, without a
daemon and without writing anything (its --root and --state point into the test's temp dir all the
same). Versions 3 and 4 need containerd 2.x, which no Debian package here has: those tests check the
written table against containerd's source, cited in each docstring.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.engine import messages, run_steps
from tests.unitfixtures import write
from wizard import cgroupfiles, runtimes
from wizard.node import Node

CONFIG = "etc/containerd/config.toml"
needs_containerd = pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd is not installed")


def answers(driver: str) -> str:
    return f"version: 1\ncgroup:\n  runtime: containerd\n  driver: {driver}\n"


def dump(config: Path, scratch: Path) -> dict[str, Any]:
    """The configuration the real containerd would run with."""
    done = subprocess.run(["containerd", "--config", str(config), "--root", str(scratch / "cd-root"),
                           "--state", str(scratch / "cd-state"), "config", "dump"],
                          capture_output=True, text=True, timeout=30, cwd=config.parent, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return tomllib.loads(done.stdout)


def cri(dumped: dict[str, Any]) -> dict[str, Any]:
    return dumped["plugins"]["io.containerd.grpc.v1.cri"]


def runtime(dumped: dict[str, Any], name: str = "runc") -> dict[str, Any]:
    return cri(dumped)["containerd"]["runtimes"][name]


def wizard(root: Path, driver: str, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("PATH", standin_env["PATH"])
    code, events = run_steps(answers(driver), root, ["cgroup"])
    assert code == 0, messages(events)
    return messages(events)


@needs_containerd
def test_version_1_file_stays_version_1(tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, CONFIG, '# no version line: version 1\n[plugins.cri]\n  sandbox_image = "k8s.gcr.io/pause:3.2"\n'
                   '[plugins.cri.containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n'
                   '[plugins.cri.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n')
    assert runtime(dump(config, tmp_path))["options"]["SystemdCgroup"] is True  # the real containerd reads it as written
    said = wizard(tmp_path, "cgroupfs", standin_env, monkeypatch)
    text = config.read_text()
    assert not any(line.startswith("version") for line in text.splitlines())
    assert "[plugins.cri.containerd.runtimes.runc.options]" in text
    after = dump(config, tmp_path)
    assert runtime(after)["options"]["SystemdCgroup"] is False
    assert cri(after)["sandbox_image"] == "k8s.gcr.io/pause:3.2"
    assert "kubelet and containerd both report cgroupfs" in said


@needs_containerd
def test_version_1_shim_v1_runtime_reads_systemd_cgroup(tmp_path: Path, standin_env: dict[str, str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """containerd 1.x: a runtime of type io.containerd.runtime.v1.linux without options takes
    [plugins.cri] systemd_cgroup (pkg/cri/server/helpers.go, generateRuntimeOptions)."""
    config = write(tmp_path, CONFIG, '[plugins.cri]\n  systemd_cgroup = false\n'
                   '[plugins.cri.containerd.default_runtime]\n  runtime_type = "io.containerd.runtime.v1.linux"\n')
    wizard(tmp_path, "systemd", standin_env, monkeypatch)
    after = dump(config, tmp_path)
    assert cri(after)["systemd_cgroup"] is True
    assert cri(after)["containerd"]["default_runtime"]["runtime_type"] == "io.containerd.runtime.v1.linux"
    assert "options" not in tomllib.loads(config.read_text())["plugins"]["cri"]["containerd"]["default_runtime"]


@needs_containerd
def test_a_runtime_the_wizard_adds_gets_its_type(tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """containerd leaves runtime_type empty for a runtime a file names with only options (seen in
    `config dump`): the wizard writes the type with the table it creates."""
    config = write(tmp_path, CONFIG, '[plugins.cri]\n  sandbox_image = "k8s.gcr.io/pause:3.2"\n')
    wizard(tmp_path, "systemd", standin_env, monkeypatch)
    after = runtime(dump(config, tmp_path))
    assert after["runtime_type"] == "io.containerd.runc.v2" and after["options"]["SystemdCgroup"] is True
    assert not any(line.startswith("version") for line in config.read_text().splitlines())


@needs_containerd
def test_default_runtime_name_picks_the_runtime_whose_options_count(tmp_path: Path, standin_env: dict[str, str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, CONFIG, 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  default_runtime_name = "nvidia"\n'
                   '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n'
                   '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n  runtime_type = "io.containerd.runc.v2"\n'
                   '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
                   '  BinaryName = "/usr/bin/nvidia-container-runtime"\n')
    wizard(tmp_path, "systemd", standin_env, monkeypatch)
    after = dump(config, tmp_path)
    assert runtime(after, "nvidia")["options"] == {"BinaryName": "/usr/bin/nvidia-container-runtime", "SystemdCgroup": True}
    assert not runtime(after, "runc").get("options")  # runc is not the default: left alone


@needs_containerd
def test_an_import_that_holds_the_cri_table_is_the_file_written(tmp_path: Path, standin_env: dict[str, str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """containerd 1.x replaces a plugin's whole table with a later file's (services/server/config/config.go,
    mergeConfig): the main file's SystemdCgroup = true does not count, the import's table does."""
    main_text = ('version = 2\nimports = ["conf.d/10-cri.toml"]\n'
                 '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n')
    config = write(tmp_path, CONFIG, main_text)
    imported = write(tmp_path, "etc/containerd/conf.d/10-cri.toml", 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n'
                     '  sandbox_image = "registry.k8s.io/pause:3.9"\n')
    assert runtime(dump(config, tmp_path))["options"]["SystemdCgroup"] is False  # the real containerd: the import won
    said = wizard(tmp_path, "systemd", standin_env, monkeypatch)
    assert "containerd uses cgroupfs (containerd's default)" in said[1]
    assert config.read_text() == main_text
    after = dump(config, tmp_path)
    assert runtime(after)["options"]["SystemdCgroup"] is True
    assert cri(after)["sandbox_image"] == "registry.k8s.io/pause:3.9"
    assert tomllib.loads(imported.read_text())["version"] == 2


@needs_containerd
def test_version_2_on_a_version_1_file_is_refused_by_both(tmp_path: Path, standin_env: dict[str, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    text = 'version = 2\n[plugins.cri.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n'
    config = write(tmp_path, CONFIG, text)
    real = subprocess.run(["containerd", "--config", str(config), "config", "dump"], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert real.returncode != 0 and 'invalid plugin key URI "cri" expect io.containerd.x.vx' in real.stderr
    monkeypatch.setenv("PATH", standin_env["PATH"])
    code, events = run_steps(answers("cgroupfs"), tmp_path, ["cgroup"])
    assert code == 1
    failed = messages(events, "failed")
    assert any('invalid plugin key URI "cri" expect io.containerd.x.vx' in m and "/etc/containerd/config.toml" in m
               for m in failed), failed
    assert config.read_text() == text


@needs_containerd
@pytest.mark.parametrize("existing", [None, "", "# emptied by hand\n"])
def test_no_config_file_gets_one_both_versions_read(tmp_path: Path, standin_env: dict[str, str],
                                                    monkeypatch: pytest.MonkeyPatch, existing: str | None) -> None:
    """No file, or one with no setting (version 1 by containerd's rule): nothing of version 1 to keep,
    so the wizard writes version 2, which containerd 1.6 and 2.x both read."""
    if existing is not None:
        write(tmp_path, CONFIG, existing)
    wizard(tmp_path, "systemd", standin_env, monkeypatch)
    config = tmp_path / CONFIG
    assert tomllib.loads(config.read_text())["version"] == 2
    after = runtime(dump(config, tmp_path))
    assert after["runtime_type"] == "io.containerd.runc.v2" and after["options"]["SystemdCgroup"] is True


# ---------------------------------------------------------------- versions 3 and 4 (containerd 2.x)

V3_TABLE = ("plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes")


def _at(doc: dict[str, Any], *path: str) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def test_version_3_writes_the_cri_runtime_plugin(tmp_path: Path) -> None:
    """containerd 2.0 reads the runtime options from `io.containerd.cri.v1.runtime`
    (plugins/cri/runtime/plugin.go registers the plugin; internal/cri/server/runtime_config_linux.go,
    getCgroupDriver, takes the default runtime's runc options SystemdCgroup). The images plugin's
    settings are another plugin's and stay."""
    write(tmp_path, CONFIG, "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'overlayfs'\n")
    found = runtimes.containerd_driver(Node(str(tmp_path)), major=2)
    assert found.driver == "cgroupfs" and found.where is not None and found.where.containerd is not None
    out = tomllib.loads(cgroupfiles.containerd_config((tmp_path / CONFIG).read_text(), "systemd", found.where.containerd))
    assert out["version"] == 3
    assert _at(out, *V3_TABLE, "runc") == {"runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": True}}
    assert out["plugins"]["io.containerd.cri.v1.images"] == {"snapshotter": "overlayfs"}
    assert "io.containerd.grpc.v1.cri" not in out["plugins"]


def test_version_4_has_version_3s_runtime_table(tmp_path: Path) -> None:
    """Version 4 (containerd 2.3, version.ConfigVersion = 4) moved server properties into plugins
    (cmd/containerd/server/config/config.go, serviceMigrate); the CRI runtime migration stops at 3
    (plugins/cri/runtime/plugin.go, configMigration: `configVersion >= version.ConfigVersion`)."""
    text = ("version = 4\n[plugins.'io.containerd.server.v1.grpc']\n  address = '/run/containerd/containerd.sock'\n"
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  runtime_type = 'io.containerd.runc.v2'\n"
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = false\n")
    write(tmp_path, CONFIG, text)
    found = runtimes.containerd_driver(Node(str(tmp_path)), major=2)
    assert found.driver == "cgroupfs" and "SystemdCgroup of runtime runc" in found.source
    assert found.where is not None and found.where.containerd is not None
    out = tomllib.loads(cgroupfiles.containerd_config(text, "systemd", found.where.containerd))
    assert out["version"] == 4 and _at(out, *V3_TABLE, "runc", "options") == {"SystemdCgroup": True}
    assert out["plugins"]["io.containerd.server.v1.grpc"] == {"address": "/run/containerd/containerd.sock"}


def test_containerd_2_merges_imports_key_by_key_and_globs_next_to_the_file(tmp_path: Path) -> None:
    """containerd 2.x: a relative glob is joined to the importing file's directory before globbing
    (resolveImports); files merge key by key, the later winning, false included (mergeConfig with
    mergo.WithOverride); a version-2 file is migrated first (v2's grpc.v1.cri `containerd` table moves
    to cri.v1.runtime). So the import's SystemdCgroup = false beats the main file's true, and the
    import is the file to write, in its own (version 3) table."""
    write(tmp_path, CONFIG, 'version = 2\nimports = ["conf.d/*.toml"]\n'
          '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n  BinaryName = "runc"\n')
    write(tmp_path, "etc/containerd/conf.d/20-driver.toml",
          "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = false\n")
    write(tmp_path, "etc/containerd/conf.d/10-other.toml", "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'native'\n")
    found = runtimes.containerd_driver(Node(str(tmp_path)), major=2)
    assert found.driver == "cgroupfs" and found.where is not None
    assert found.where.path == "/etc/containerd/conf.d/20-driver.toml"
    assert found.where.containerd == runtimes.ContainerdSpot(runtimes.CRI_TABLE[3], "runc")
    # containerd 1.x globs a relative pattern from its working directory instead: it finds no import
    assert runtimes.containerd_driver(Node(str(tmp_path)), major=1).driver == "systemd"


def test_no_version_line_is_version_1_for_containerd_2_too(tmp_path: Path) -> None:
    """containerd 2.x migrates a file without a version from 1 (migrations[0] is nil, then v1Migrate
    maps `cri` to io.containerd.grpc.v1.cri, then the CRI plugin's configMigration)."""
    write(tmp_path, CONFIG, "[plugins.cri.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n")
    found = runtimes.containerd_driver(Node(str(tmp_path)), major=2)
    assert found.driver == "systemd" and found.where is not None and found.where.containerd is not None
    assert found.where.containerd.table == ("plugins", "cri")
