"""The real dockerd as the judge of a configuration: flags plus a daemon.json, accepted or refused.

dockerd reads its flags and its configuration file, and refuses a directive given in both (`unable to
configure the Docker daemon with file …: the following directives are specified both as a flag and in
the configuration file: …`), before it needs cgroups. On the test machines it then stops at `Devices
cgroup isn't mounted`: any error after the configuration was read means it was accepted. (Debian's
dockerd 20.10 has no `--validate`; that came with 23.0.)

It runs in a throwaway network namespace (its bridge and iptables rules stay there) with its own
--data-root, --exec-root, --pidfile and socket under a temp dir; the namespace is deleted after, which
kills whatever it started (its managed containerd too), and the temp dir is removed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.lab import Netns

REFUSED = "unable to configure the Docker daemon"
# flags that point dockerd at this machine's resources: the judge gives its own instead
HOST_FLAGS = ("-H", "--host", "--containerd", "--data-root", "--exec-root", "--pidfile", "-p", "--config-file", "-G", "--group")


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    stderr: str

    @property
    def reason(self) -> str:
        """dockerd's last words: why it refused, or where it stopped after accepting."""
        lines = [line for line in self.stderr.splitlines() if "level=" not in line]
        return lines[-1] if lines else self.stderr.strip().splitlines()[-1] if self.stderr.strip() else ""


def own_flags(flags: list[str]) -> list[str]:
    """`flags` without those that would use this machine's sockets and directories."""
    out: list[str] = []
    skip = False
    for flag in flags:
        if skip:
            skip = False
            continue
        name = flag.split("=", 1)[0]
        if name in HOST_FLAGS:
            skip = "=" not in flag
            continue
        out.append(flag)
    return out


def judge(flags: list[str], daemon_json: str | None, timeout: float = 60) -> Verdict:
    """Run dockerd with `flags` and `daemon_json` (its text; None: an empty file) until it stops."""
    scratch = Path(tempfile.mkdtemp(prefix="fwtest-dockerd-"))
    config = scratch / "daemon.json"
    config.write_text(daemon_json if daemon_json is not None else "{}\n")
    netns = Netns()
    argv = [*netns.prefix(), "dockerd", *own_flags(flags), "--config-file", str(config),
            "--data-root", str(scratch / "data"), "--exec-root", str(scratch / "exec"),
            "--pidfile", str(scratch / "dockerd.pid"), "-H", f"unix://{scratch}/dockerd.sock"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return Verdict(REFUSED not in out, out)
    except subprocess.TimeoutExpired:
        # still running: it got past its configuration (a machine where it can start)
        proc.kill()
        out, _ = proc.communicate()
        return Verdict(REFUSED not in out, out)
    finally:
        netns.delete()  # kills what dockerd started in it
        _unmount_under(scratch)
        shutil.rmtree(scratch, ignore_errors=True)


def _unmount_under(path: Path) -> None:
    """Anything dockerd mounted under its data root (none seen on the test machines; a machine with a
    working dockerd mounts its overlay and netns files there)."""
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(path))]
    for point in sorted(points, reverse=True):
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", point], check=True, capture_output=True, timeout=10)
