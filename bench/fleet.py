"""Benchmark: rolling three nodes of the fleet lab (tests/test_ansible_fleet.py: node namespaces behind real
sshd, a real etcd, the stand-ins) out with Ansible's site.yml, against running `flannel-wizard apply` on each
node in turn over ssh, as a shell loop would. Wall time of each, from three seeded nodes each time (the role
in undo mode puts them back between runs, and their leases are deleted); flannel-wizard is installed on the nodes before the first timing.

    sudo .venv/bin/python bench/fleet.py

  site.yml, serial 1        the default: a node per batch, a mesh check closing each batch
  site.yml, serial 3        one batch of all three nodes (Ansible runs them in parallel)
  loop of apply             for node: ssh node flannel-wizard apply - --yes --skip smoke (with the mesh step)

Not a test: it prints the numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    import shutil

    from tests.test_ansible_fleet import UNDO, fleet_lab, recap

    tmp = Path(tempfile.mkdtemp(prefix="fwtest-fleet-bench-"))
    try:
        with fleet_lab(tmp) as fleet:
            undo = tmp / "undo.yml"
            undo.write_text(UNDO)

            def reset() -> None:
                """Seeded nodes again, and no leases (flanneld's own, which undo leaves, as flanneld would)."""
                done = fleet.playbook(playbook=undo)
                assert done.returncode == 0, done.stdout[-3000:]
                assert fleet.mesh.etcd is not None
                fleet.mesh.etcd.ctl("del", "--prefix", f"{fleet.mesh.prefix}/subnets/")

            t0 = time.perf_counter()
            first = fleet.playbook("--check")
            assert first.returncode == 0, first.stdout[-3000:]
            print(f"install on 3 nodes + plan (--check): {time.perf_counter() - t0:.1f} s")
            timings: dict[str, float] = {}
            for name, args in (("site.yml, serial 1", ()), ("site.yml, serial 3", ("-e", "flannel_wizard_serial=3"))):
                t0 = time.perf_counter()
                done = fleet.playbook(*args)
                timings[name] = time.perf_counter() - t0
                assert done.returncode == 0, done.stdout[-3000:]
                assert all(c["changed"] > 0 and c["failed"] == 0 for c in recap(done.stdout).values())
                reset()
            inventory = json.loads(fleet.inventory.read_text())["flannel_nodes"]
            common = inventory["vars"]
            answers = json.dumps(common["flannel_wizard_answers"])
            ssh = ["ssh", "-i", common["ansible_ssh_private_key_file"], *common["ansible_ssh_common_args"].split(),
                   "-o", "BatchMode=yes"]
            assert fleet.mesh.underlay is not None
            t0 = time.perf_counter()
            for host in inventory["hosts"].values():
                env = " ".join(f"{k}={v}" for k, v in host["flannel_wizard_environment"].items())
                remote = (f"env {env} {host['flannel_wizard_venv']}/bin/flannel-wizard apply - --yes --skip smoke "
                          f"--root {host['flannel_wizard_root']} --ignore-preflight-errors "
                          f"{','.join(common['flannel_wizard_ignore_preflight_errors'])}")
                done = subprocess.run(fleet.mesh.underlay.prefix() + ssh + [f"root@{host['ansible_host']}", remote],
                                      input=answers, capture_output=True, text=True, timeout=300, env=fleet.env)
                assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
            timings["loop of apply over ssh"] = time.perf_counter() - t0
            for name, took in timings.items():
                print(f"{name:24s} {took:6.1f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
