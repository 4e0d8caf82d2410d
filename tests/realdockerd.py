"""The real dockerd as the judge of a configuration: does it accept these flags with this daemon.json?

Debian's docker.io (dockerd 20.10, no `dockerd --validate`: that came with 23.0) loads its flags and the
config file, and refuses a setting given both ways (`unable to configure the Docker daemon with file
…: the following directives are specified both as a flag and in the configuration file: …`), before
it needs anything this machine lacks. Once both are loaded and checked it logs `Starting up`; here it
then stops at `failed to start daemon: Devices cgroup isn't mounted`. So `Starting up` is the verdict
"accepted", and an exit before it is "refused" with dockerd's own words.

Each run is sealed off: a network namespace of its own (`fwtest-dockerd-…`, deleted afterwards, any
process left in it killed), a private mount namespace where /run is an empty tmpfs and /etc/docker is
a scratch directory (dockerd writes /etc/docker/key.json and /run/docker/plugins whatever its flags
say), its own --data-root, --exec-root, --pidfile and API socket in a temporary directory that is
removed, and a deadline after which it is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests import lab

DOCKERD = shutil.which("dockerd")
NS_PREFIX = lab.NS_PREFIX + "dockerd-"
STARTED = 'msg="Starting up"'  # logged after flags and config file are loaded and checked
# dockerd's error once the daemon itself fails to come up, after its configuration was taken: the verdict
# too when the configuration raises log-level above info and `Starting up` is never logged
PAST_CONFIG = "failed to start daemon:"
_LOGRUS = re.compile(r'^time="[^"]*" level=(\w+) msg=')
# in a private mount namespace: an empty /run, a scratch /etc/docker, then dockerd itself
_SEAL = 'mount -t tmpfs fwtest-run /run && mount --bind "$0" /etc/docker && exec "$@"'


@dataclass(frozen=True)
class Verdict:
    accepted: bool  # dockerd got past its flags and configuration file
    message: str  # dockerd's own words: why it refused, or how it ended after accepting


def missing() -> str:
    """Why the real dockerd cannot judge here ("" when it can): for pytest.skip."""
    if DOCKERD is None:
        return "dockerd is not installed (Debian: apt-get install docker.io)"
    if os.geteuid() != 0:
        return "running dockerd in a network namespace needs root"
    if not os.path.isdir("/etc/docker"):
        return "/etc/docker does not exist (docker.io creates it), so it cannot be sealed off"
    return ""


def _message(lines: list[str]) -> str:
    """dockerd's closing words: what it prints when it exits (not a log record), else its last errors."""
    said = [line for line in lines if line.strip() and not _LOGRUS.match(line)]
    if said:
        return " ".join(said)
    errors = [line for line in lines if (m := _LOGRUS.match(line)) and m.group(1) in ("error", "fatal")]
    return " ".join(errors[-2:]) or (lines[-1] if lines else "")


def judge(args: list[str], config: Path, timeout: float = 60, settle: float = 20) -> Verdict:
    """Run the real dockerd with `args` and `--config-file config`; accepted once it logs `Starting up`.
    After that it gets `settle` seconds to end on its own, so the message says how (else it is killed)."""
    if DOCKERD is None:
        raise RuntimeError(missing())
    work = Path(tempfile.mkdtemp(prefix="fwtest-dockerd-"))
    name = NS_PREFIX + uuid.uuid4().hex[:8]
    proc: subprocess.Popen[str] | None = None
    lines: list[str] = []
    seen = threading.Condition()
    state = {"started": False, "ended": False}

    def read() -> None:
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            with seen:
                lines.append(line.rstrip("\n"))
                state["started"] = state["started"] or STARTED in line or line.startswith(PAST_CONFIG)
                seen.notify_all()
        with seen:
            state["ended"] = True
            seen.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    try:
        lab.run("ip", "netns", "add", name)
        (work / "etc-docker").mkdir()
        argv = ["ip", "netns", "exec", name, "unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", _SEAL, str(work / "etc-docker"), DOCKERD, *args, "--config-file", str(config),
                "--data-root", str(work / "data"), "--exec-root", str(work / "exec"),
                "--pidfile", str(work / "dockerd.pid"), "-H", f"unix://{work}/d.sock"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", start_new_session=True)
        reader.start()
        with seen:  # whichever comes first: the verdict line, or the end of its output (it exited)
            if not seen.wait_for(lambda: state["started"] or state["ended"], timeout):
                return Verdict(False, f"dockerd neither started nor exited within {timeout}s: {_message(lines)}")
            if not state["started"]:
                return Verdict(False, _message(lines))
            if seen.wait_for(lambda: state["ended"], settle):
                return Verdict(True, _message(lines))
        return Verdict(True, f"still starting after {settle}s (flags and config file accepted)")
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for pid in lab.run("ip", "netns", "pids", name, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)  # containerd, which dockerd started in its own group
        lab.run("ip", "netns", "del", name, check=False)
        if reader.ident is not None:
            reader.join(10)
        shutil.rmtree(work, ignore_errors=True)
