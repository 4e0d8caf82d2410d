"""Stand-in for `systemctl`, because systemd is not PID 1 on the test machines and flanneld is not
installed: `restart flanneld` reads flanneld.service and its drop-ins under the root as systemd does
(the CentOS package's unit when the root has none), gives the service the environment its
EnvironmentFile= and Environment= lines give, expands ExecStart=, and starts what it names: the
package's `flanneld-start` wrapper (which passes FLANNEL_ETCD_ENDPOINTS and FLANNEL_ETCD_PREFIX as
flags and the rest of its environment on), or the upstream `flanneld` binary with its own flags and
FLANNELD_* variables. flanneld itself is tests/standins/flanneld.py, acting on the *real* etcd: reads
PREFIX/config through the API its version reads, takes a lease, writes subnet.env. Other services only
log the call.

Configured through the environment the wizard passes on:
  FW_TEST_ROOT       the --root the wizard writes under (default /)
  FW_STANDIN_LOG     file that gets one line per call
  FW_SYSTEMCTL_MODE  "nosystemd" answers like systemctl on a machine without systemd
  FW_SYSTEMCTL_FAIL  a service whose restart fails the way systemctl reports it
  FW_PUBLIC_IP       this node's PublicIP in the lease (default 127.0.0.1)
  FW_FLANNELD_HANG   "1": flanneld starts but never writes its subnet file (a stuck flanneld)
  FW_SYSTEMCTL_BLOCK a service whose restart never returns (it touches FW_STANDIN_LOG.blocked first), for
                     killing the wizard while a restart is in flight
  FW_STANDIN_ENV     "1": log the names of the environment variables systemctl was given
  FW_FLANNELD_VERSION the version the flanneld stand-in is (default v0.26.1: it reads the v3 API)
  FW_FLANNELD_DAEMON a directory: `restart flanneld` runs the *running* flanneld of the multi-node lab
                     (tests/standins/vxlanflanneld.py, which programs flannel.<VNI> in this network namespace)
                     with the arguments the unit gives, stopping the one started before (its pid file and
                     log are kept in that directory), and returns once it has written its subnet file, as
                     systemd's restart of the Type=notify unit returns on flanneld's READY=1; a flanneld that
                     exits or takes longer than FW_FLANNELD_TIMEOUT seconds (default 20) fails the job
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("FW_TEST_ROOT", "/"))


def under_root(path: str) -> Path:
    return ROOT / path.lstrip("/")


def log(*words: str) -> None:
    target = os.environ.get("FW_STANDIN_LOG")
    if target:
        with open(target, "a") as f:
            f.write("systemctl " + " ".join(words) + "\n")


def parse_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return out


# systemd's unit search path, highest first (systemd.unit(5)); the stand-in reads the units under the root
UNIT_DIRS = ("etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "usr/lib/systemd/system",
             "lib/systemd/system")

# the CentOS 7 flannel package's unit (the article's node): what systemd would find on the stand-in's
# machine when the test root holds no flanneld.service of its own
PACKAGED_FLANNELD = """\
[Service]
Type=notify
EnvironmentFile=/etc/sysconfig/flanneld
EnvironmentFile=-/etc/sysconfig/docker-network
ExecStart=/usr/bin/flanneld-start $FLANNEL_OPTIONS
"""


class Failed(Exception):
    """The start job failed: what flanneld (or systemd) logged."""


class TimedOut(Failed):
    """The start job did not finish in time (systemd's TimeoutStartSec=)."""


def unit_files(service: str) -> list[str]:
    """The unit file's text, then its drop-ins' in file-name order (/etc's copy of a name wins)."""
    name = f"{service}.service"
    main = next((under_root(d) / name for d in UNIT_DIRS if (under_root(d) / name).is_file()), None)
    dropins: dict[str, Path] = {}
    for d in reversed(UNIT_DIRS):
        folder = under_root(d) / f"{name}.d"
        if folder.is_dir():
            dropins.update({p.name: p for p in folder.glob("*.conf")})
    texts = [main.read_text() if main else PACKAGED_FLANNELD]
    return texts + [dropins[k].read_text() for k in sorted(dropins)]


def load_unit(service: str) -> tuple[list[tuple[str, bool]], dict[str, str], str]:
    """(EnvironmentFile= paths with their optional mark, Environment= values, ExecStart=) of the unit."""
    files: list[tuple[str, bool]] = []
    environment: dict[str, str] = {}
    exec_start = ""
    for text in unit_files(service):
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            if section != "Service" or "=" not in line or line.startswith(("#", ";")):
                continue
            key, _, value = (part.strip() for part in line.partition("="))
            if key == "EnvironmentFile":
                files = [] if not value else files + [(value.lstrip("-"), value.startswith("-"))]
            elif key == "Environment":
                environment.update(item.partition("=")[::2] for item in shlex.split(value))
            elif key == "ExecStart":
                exec_start = value
    return files, environment, exec_start


def unit_environment(service: str) -> tuple[dict[str, str], str]:
    """The environment systemd gives the service (Environment=, then each EnvironmentFile= in order),
    and its ExecStart= line."""
    files, env, exec_start = load_unit(service)
    for path, optional in files:
        real = under_root(path)
        if not real.exists():
            if optional:
                continue
            raise Failed(f"Failed to load environment files: {path}: No such file or directory")
        env.update(parse_env(real.read_text()))
    return env, exec_start


def expand(exec_start: str, env: dict[str, str]) -> list[str]:
    """ExecStart= as systemd expands it: `$VAR` alone splits into words, `${VAR}` stays one word."""
    out: list[str] = []
    for word in shlex.split(exec_start.lstrip("-@+!:")):
        if word.startswith("$") and not word.startswith("${") and word[1:].isidentifier():
            out += env.get(word[1:], "").split()
            continue
        for name in set(re.findall(r"\$\{(\w+)\}|\$(\w+)", word)):
            var = name[0] or name[1]
            word = word.replace("${" + var + "}", env.get(var, "")).replace("$" + var, env.get(var, ""))
        out.append(word)
    return out


def flanneld_start() -> None:
    """Start flanneld as its unit says: the CentOS wrapper, or the upstream binary with its own flags
    and FLANNELD_* environment (tests/standins/flanneld.py acts as the binary)."""
    import flanneld

    env, exec_start = unit_environment("flanneld")
    argv = expand(exec_start, env)
    program = Path(argv[0]).name if argv else ""
    if program == "flanneld-start":
        # the package's wrapper: `exec /usr/bin/flanneld -etcd-endpoints=${FLANNEL_ETCD_ENDPOINTS:-${FLANNEL_ETCD}}
        # -etcd-prefix=${FLANNEL_ETCD_PREFIX:-${FLANNEL_ETCD_KEY}} "$@"`, its environment passed on by exec
        args = [f"-etcd-endpoints={env.get('FLANNEL_ETCD_ENDPOINTS') or env.get('FLANNEL_ETCD', '')}",
                f"-etcd-prefix={env.get('FLANNEL_ETCD_PREFIX') or env.get('FLANNEL_ETCD_KEY', '')}", *argv[1:]]
    elif program == "flanneld":
        args = argv[1:]
    else:
        raise Failed(f"{argv[0] if argv else 'ExecStart='}: the stand-in starts only flanneld or flanneld-start")
    if os.environ.get("FW_FLANNELD_DAEMON"):
        daemon_start(args, env, Path(os.environ["FW_FLANNELD_DAEMON"]))
        return
    try:
        flanneld.start(args, env)
    except flanneld.Exit as exc:
        raise Failed(str(exc)) from None


def daemon_start(args: list[str], env: dict[str, str], state: Path) -> None:
    """Stop the flanneld this stand-in started before, start vxlanflanneld with the settings `args` and the
    unit's FLANNELD_* variables give, wait for its READY: the subnet file written anew."""
    import signal
    import subprocess

    import flanneld

    state.mkdir(parents=True, exist_ok=True)
    pidfile = state / "flanneld.pid"
    if pidfile.exists():
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # until it is gone (it answers SIGTERM at once)
                os.kill(pid, 0)
                time.sleep(0.02)
            os.kill(pid, signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            pass
        pidfile.unlink()
    try:
        flags = flanneld.settings(args, env)  # flags, then FLANNELD_* (vxlanflanneld reads flags only)
    except flanneld.Exit as exc:
        raise Failed(str(exc)) from None
    known = ("etcd-endpoints", "etcd-prefix", "iface", "public-ip", "subnet-file")
    argv = [f"-{name}={value}" for name in known for value in flags.get(name, [])]
    argv += ["-ip-masq"] if flags.get("ip-masq", ["false"])[-1] == "true" else []
    subnet_file = under_root((flags.get("subnet-file") or ["/run/flannel/subnet.env"])[-1])
    before = subnet_file.stat().st_mtime_ns if subnet_file.exists() else 0
    repo = Path(__file__).resolve().parents[2]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("FW_")}
    child_env["PYTHONPATH"] = str(repo)
    with open(state / "flanneld.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-S", "-m", "tests.standins.vxlanflanneld", *argv, "-root", str(ROOT)],
                                cwd=repo, env=child_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    pidfile.write_text(str(proc.pid))
    deadline = time.monotonic() + float(os.environ.get("FW_FLANNELD_TIMEOUT", "20"))
    while not (subnet_file.exists() and subnet_file.stat().st_mtime_ns > before):
        if proc.poll() is not None:
            pidfile.unlink()
            tail = (state / "flanneld.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise Failed(tail[0] if tail else f"flanneld exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pidfile.unlink()
            raise TimedOut("Job for flanneld.service failed because a timeout was exceeded.")
        time.sleep(0.05)  # flanneld's READY: its subnet file written anew


def main(argv: list[str]) -> int:
    log(*argv)
    if os.environ.get("FW_STANDIN_ENV") == "1":
        log("env", *sorted(os.environ))
    if os.environ.get("FW_SYSTEMCTL_MODE") == "nosystemd":
        print("System has not been booted with systemd as init system (PID 1). Can't operate.", file=sys.stderr)
        print("Failed to connect to bus: Host is down", file=sys.stderr)
        return 1
    if not argv:
        return 0
    verb, service = argv[0], (argv[1] if len(argv) > 1 else "").removesuffix(".service")
    if verb in ("restart", "start") and service == os.environ.get("FW_SYSTEMCTL_FAIL"):
        print(f'Job for {service}.service failed because the control process exited with error code.\n'
              f'See "systemctl status {service}.service" and "journalctl -xeu {service}.service" for details.',
              file=sys.stderr)
        return 1
    if verb in ("restart", "start") and service == os.environ.get("FW_SYSTEMCTL_BLOCK"):
        Path(os.environ["FW_STANDIN_LOG"] + ".blocked").touch()
        while True:
            time.sleep(60)  # until the test kills the run
    if verb in ("restart", "start") and service == "flanneld" and os.environ.get("FW_FLANNELD_HANG") == "1":
        return 0
    if verb in ("restart", "start") and service == "flanneld":
        try:
            flanneld_start()
            return 0
        except TimedOut as exc:
            print(str(exc), file=sys.stderr)
            return 1
        except Exception as exc:  # flanneld exits; systemctl reports the failed job, not a traceback
            print(f"flanneld: {exc}", file=sys.stderr)
            print("Job for flanneld.service failed because the control process exited with error code.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
