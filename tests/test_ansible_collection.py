"""The Ansible collection as its own tools judge it: ansible-lint (PyPI) passes on it, ansible-galaxy builds
it, ansible-doc reads the module's documentation, and the ansible-test sanity tests that can run here pass.
The fleet rollout itself is test_ansible_fleet.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests import lab

BIN = Path(sys.executable).parent
COLLECTION = lab.REPO / "ansible_collections/flannel_wizard/node"

pytestmark = pytest.mark.skipif(not (BIN / "ansible-lint").exists(), reason="ansible-core/ansible-lint not installed")


def _run(argv: list[str], tmp: Path, cwd: Path = COLLECTION) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp), "LANG": "C.UTF-8", "TMPDIR": str(tmp),
           "ANSIBLE_COLLECTIONS_PATH": str(lab.REPO), "NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def test_ansible_lint_passes(tmp_path: Path) -> None:
    done = _run([str(BIN / "ansible-lint"), "--offline"], tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "0 failure(s)" in done.stderr + done.stdout


def test_ansible_galaxy_builds_the_collection(tmp_path: Path) -> None:
    done = _run([str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path",
                 str(tmp_path)], tmp_path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with tarfile.open(tmp_path / "flannel_wizard-node-0.1.0.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"plugins/modules/flannel_wizard.py", "roles/flannel_wizard/tasks/main.yml", "playbooks/site.yml",
            "meta/runtime.yml", "MANIFEST.json"} <= names


def test_ansible_doc_reads_the_module(tmp_path: Path) -> None:
    done = _run([str(BIN / "ansible-doc"), "--json", "flannel_wizard.node.flannel_wizard"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"answers_file"' in done.stdout and '"ignore_preflight_errors"' in done.stdout


# ansible-test sanity's tests that need no requirements venv of their own. The others (ansible-doc, changelog,
# import, pep8, pylint, runtime-metadata, validate-modules, yamllint) each bootstrap pip in a fresh venv
# from ci-files.testing.ansible.com and pin packages from PyPI, which this machine cannot reach that way.
SANITY = ("action-plugin-docs", "compile", "empty-init", "line-endings", "no-assert", "no-get-exception",
          "no-illegal-filenames", "no-smart-quotes", "replace-urlopen", "shebang", "symlinks",
          "use-argspec-type-path", "use-compat-six")


def test_ansible_test_sanity_where_it_runs_here(tmp_path: Path) -> None:
    argv = [str(BIN / "ansible-test"), "sanity", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}"]
    for name in SANITY:
        argv += ["--test", name]
    made = not (COLLECTION / "tests").exists()
    try:
        done = _run(argv, tmp_path)
    finally:
        if made:  # ansible-test's tests/output/ in the collection
            shutil.rmtree(COLLECTION / "tests", ignore_errors=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert all(f'Running sanity test "{name}"' in done.stdout + done.stderr for name in SANITY)
