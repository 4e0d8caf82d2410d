"""Stand-in for the `docker` client, because no Docker engine can run on the test machines: `docker
info` answers the way a running daemon would, with the cgroup driver the daemon would have read from
daemon.json under FW_TEST_ROOT. FW_DOCKER_DOWN=1 answers like a client whose daemon is not running.
FW_DOCKER_LOG, when set, gets one line per call.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def driver() -> str:
    path = Path(os.environ.get("FW_TEST_ROOT", "/")) / "etc/docker/daemon.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    for opt in data.get("exec-opts", []):
        key, _, value = opt.partition("=")
        if key == "native.cgroupdriver":
            return value
    return "systemd" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "cgroupfs"


def main(argv: list[str]) -> int:
    log = os.environ.get("FW_DOCKER_LOG")
    if log:  # one line per call (the systemctl stand-in's log may be given): tests count what a run asks docker
        with open(log, "a") as f:
            f.write("docker " + " ".join(argv) + "\n")
    if argv[:1] != ["info"]:
        print(f"docker stand-in: {' '.join(argv)} is not played", file=sys.stderr)
        return 1
    if os.environ.get("FW_DOCKER_DOWN") == "1":
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
              file=sys.stderr)
        return 1
    if "--format" in argv:
        fmt = argv[argv.index("--format") + 1]
        print(fmt.replace("{{.CgroupDriver}}", driver()).replace("{{.CgroupVersion}}", "1"))
        return 0
    print(f"Client:\n Version:    28.2.2\n Context:    default\n\nServer:\n Containers: 0\n Server Version: 28.2.2\n"
          f" Storage Driver: overlay2\n Logging Driver: json-file\n Cgroup Driver: {driver()}\n Cgroup Version: 1\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
