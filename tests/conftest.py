from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import lab
from tests.meshlab import MeshLab, mesh_lab
from tests.nodelab import LabNode, make_node

SCRATCH = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """One scratch directory for the whole run, removed at its end: every temporary directory the
    tests make, the demo's roots and etcd's data dirs included (here and in child processes, through
    TMPDIR), lands in it, so a run leaves nothing in /tmp even when a test fails."""
    scratch = tempfile.mkdtemp(prefix="fwtest-run-")
    config.stash[SCRATCH] = scratch
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = config.stash.get(SCRATCH, None)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def etcd() -> Iterator[lab.Etcd]:
    server = lab.Etcd()
    yield server
    server.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import trustme

    base = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("flannel-wizard-client")
    files = {
        "ca": base / "ca.pem", "server_cert": base / "server.pem", "server_key": base / "server-key.pem",
        "client_cert": base / "client.pem", "client_key": base / "client-key.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["server_cert"]))
    server.private_key_pem.write_to_path(str(files["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    other = trustme.CA()  # a CA etcd does not trust, for the rejected-handshake cases
    stranger = other.issue_cert("stranger")
    files["other_ca"] = base / "other-ca.pem"
    files["stranger_cert"] = base / "stranger.pem"
    files["stranger_key"] = base / "stranger-key.pem"
    other.cert_pem.write_to_path(str(files["other_ca"]))
    stranger.cert_chain_pems[0].write_to_path(str(files["stranger_cert"]))
    stranger.private_key_pem.write_to_path(str(files["stranger_key"]))
    return {k: str(v) for k, v in files.items()}


@pytest.fixture(scope="session")
def etcd_tls(tls_files: dict[str, str]) -> Iterator[lab.Etcd]:
    server = lab.Etcd(tls=tls_files)
    yield server
    server.close()


@pytest.fixture(scope="session")
def etcd_auth() -> Iterator[lab.Etcd]:
    server = lab.Etcd()
    server.enable_auth("flannel", "s3cret-pw")
    yield server
    server.close()


@pytest.fixture
def netns() -> Iterator[lab.Netns]:
    ns = lab.Netns()
    try:
        yield ns
    finally:
        ns.delete()


@pytest.fixture
def node(standin_env: dict[str, str]) -> Iterator[LabNode]:
    """A whole test node: namespace with docker0, etcd on its loopback :2379, a seeded --root."""
    test_node = make_node(standin_env)
    try:
        yield test_node
    finally:
        test_node.etcd.close()
        test_node.ns.delete()


@pytest.fixture(scope="session")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lab.standin_bin(tmp_path_factory.mktemp("standin-bin"))


@pytest.fixture
def standin_env(standins: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for a wizard run: the stand-ins first on PATH, a call log, the root they act on."""
    root = tmp_path / "root"
    root.mkdir()
    return {
        **os.environ,
        "PATH": f"{standins}:{os.environ['PATH']}",
        "FW_TEST_ROOT": str(root),
        "FW_STANDIN_LOG": str(tmp_path / "standin.log"),
    }


def run_wizard(*args: str, env: dict[str, str] | None = None, netns: lab.Netns | None = None,
               timeout: float = 60, input: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = (netns.prefix() if netns else []) + lab.wizard_argv(*args)
    env = {**(env or os.environ), "PYTHONPATH": str(lab.REPO)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd or lab.REPO,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture
def mesh() -> Iterator[MeshLab]:
    """A converged 3-node vxlan mesh on a real underlay, with a pod per node (tests/meshlab.py)."""
    with mesh_lab() as made:
        yield made
