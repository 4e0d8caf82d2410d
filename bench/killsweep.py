"""The kill-at-every-point sweep (issue 9): `kill -9` the wizard right before each of its crash points,
then recover, and check that the node converged. As root:

    sudo .venv/bin/python bench/killsweep.py [--step 1] [--jobs 2] [--flows apply-undo,apply-rerun,undo-undo]

A *point* is an operation a crash can fall before (tests/killpoint.py lists them: every file write,
rename, remove and mkdir, every command started, every etcd write and every netlink change). The
wizard runs under that wrapper; with FW_KILL_AT=K it dies right before point K.

On the test lab node (tests/nodelab.py: a network namespace with docker0 on 172.17.0.1/16, a real etcd
on its :2379, the systemctl/docker stand-ins, a seeded --root), for
`apply config.example.yaml --yes --skip smoke --ignore-preflight-errors ... --root ROOT`:

  count        a full apply on a fresh node counts N points (and is the reference end state);
               an undo after it counts the undo's points
  apply-undo   for each K: apply killed at K, then `undo` (a second one if the first is not exit 0):
               the node must be back to the seed — root files byte-identical with their modes, the
               etcd key absent, docker0 172.17.0.1/16 mtu 1500, no owed restart, no live entry left
  apply-rerun  for each K: apply killed at K, then apply again (exit 0): the same end state as an
               uninterrupted apply (files, subnet.env, etcd config, docker0), no owed restart; then
               `undo` (exit 0) brings the seed back
  undo-undo    for each K of the undo: apply, undo killed at K, undo again (exit 0): the seed is back

Every flow also checks that each service runs the configuration on disk: the wrapper logs each file
the wizard renames into place (with a hash of the bytes) into the stand-ins' call log, so a replay of
that log tells which configuration each `systemctl restart` saw. A service whose file changed after
its last restart (a restart lost to the kill) is a failure. Every wizard run goes through the wrapper
(without FW_KILL_AT it only watches), so the recoveries' writes are in that log too.

Notes (converged, but worth a look) are kept apart from failures: a run killed before its first journal
save leaves no journal, so undo says "no journal ... nothing was applied here" (exit 2); temp files
of interrupted journal writes in the state dir; a run that restarted services against the order they
depend on each other (flanneld -> docker -> kubelet).

Between two K the node is reset instead of rebuilt (faster than a new namespace; etcd stays): the root
is emptied and seeded again, the keys under the prefix deleted, docker0 put back. Every run has a
timeout; processes a killed run left (any whose environment names the node's FW_STANDIN_LOG), the
namespaces and etcd are cleaned up on the way out, failure or not. Prints a table of counts and each
failure with its K, the operation it was killed before, and what differed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import lab  # noqa: E402
from tests.nodelab import IGNORE, LabNode, make_node, seed_root  # noqa: E402

KILLPOINT = REPO / "tests" / "killpoint.py"
PREFIX = "/kube-centos/network"
KEY = f"{PREFIX}/config"
STATE_DIR = "var/lib/flannel-wizard"
SEED_BRIDGE = {"mtu": 1500, "ipv4": ["172.17.0.1/16"]}
FLOWS = ("apply-undo", "apply-rerun", "undo-undo")
RESTART_ORDER = ("flanneld", "docker", "kubelet")
# the files each service reads (the stand-ins' view: flanneld's EnvironmentFile, dockerd's daemon.json
# and the opts file its unit reads, the kubelet's config), relative to the root; drop-ins by name below
SERVICE_FILES = {
    "flanneld": ("etc/sysconfig/flanneld",),
    "docker": ("etc/docker/daemon.json", "run/docker_opts.env"),
    "kubelet": ("var/lib/kubelet/config.yaml", "etc/kubernetes/kubelet"),
}


def apply_args(root: Path) -> list[str]:
    return ["apply", "config.example.yaml", "--yes", "--skip", "smoke", "--ignore-preflight-errors", IGNORE,
            "--root", str(root)]


def undo_args(root: Path) -> list[str]:
    return ["undo", "--root", str(root)]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass
class Run:
    argv: list[str]
    rc: int | None
    out: str
    err: str
    timed_out: bool
    points: list[str]  # the label of each point the run went through, in order
    killed_at: int | None  # the point it was killed before (from the wrapper's trace)
    seconds: float

    @property
    def killed(self) -> bool:
        return self.killed_at is not None

    def said(self) -> str:
        """The run's last lines, for a failure report."""
        text = (self.err.strip() or self.out.strip()).splitlines()
        return " | ".join(line.strip() for line in text[-3:])[:400]

    def outcome(self) -> str:
        if self.timed_out:
            return "timed out"
        return f"exit {self.rc}" + (f": {self.said()}" if self.rc not in (0, -9) else "")


class Worker:
    """One lab node (namespace, etcd, root) and the runs made on it."""

    def __init__(self, base: Path, bin_dir: Path, index: int) -> None:
        self.dir = base / f"node{index}"
        self.root = self.dir / "root"
        self.root.mkdir(parents=True)
        self.log = self.dir / "standin.log"
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FW_TEST_ROOT": str(self.root),
                    "FW_STANDIN_LOG": str(self.log), "PYTHONPATH": str(REPO)}
        self.node: LabNode = make_node(self.env)
        self.seed = self.node.snapshot()
        self.seed_hashes = self._hashes()
        self.runs = 0
        self.wrapper_errors: list[str] = []

    # ------------------------------------------------------------ the node

    def reset(self) -> None:
        self.kill_strays()
        self.wrapper_errors = []
        for child in self.root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        seed_root(self.root)
        self.node.etcd.ctl("del", "--prefix", PREFIX)
        self.node.ns.ip("-4", "addr", "flush", "dev", "docker0")
        self.node.ns.ip("addr", "add", "172.17.0.1/16", "dev", "docker0")
        self.node.ns.ip("link", "set", "docker0", "mtu", "1500")
        self.log.write_text("")

    def kill_strays(self) -> None:
        """Processes a killed run left behind: any whose environment names this node's stand-in log."""
        marker = f"FW_STANDIN_LOG={self.log}\0".encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if marker in environ:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)

    def close(self) -> None:
        self.kill_strays()
        self.node.etcd.close()
        self.node.ns.delete()

    # ------------------------------------------------------------ runs

    def wizard(self, args: list[str], kill_at: int = 0, timeout: float = 60) -> Run:
        self.runs += 1
        trace = self.dir / f"trace.{self.runs}"
        count = self.dir / f"count.{self.runs}"
        env = {**self.env, "FW_KILL_TRACE": str(trace), "FW_KILL_EVENTS": str(self.log),
               "FW_KILL_COUNT_FILE": str(count)}
        if kill_at:
            env["FW_KILL_AT"] = str(kill_at)
        argv = self.node.ns.prefix() + [sys.executable, str(KILLPOINT), *args]
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        finally:
            self.kill_strays()
        points, killed = [], None
        if trace.exists():
            for line in trace.read_text(errors="replace").splitlines():
                parts = line.split("\t")
                if parts[0] == "KILL":
                    killed = int(parts[1])
                elif parts[0] == "ERROR":  # the wrapper's own failure: the sweep would not be sound
                    self.wrapper_errors.append(f"tests/killpoint.py: {parts[1]}")
                elif len(parts) == 3:
                    points.append(self.label(parts[1], parts[2]))
            trace.unlink()
        count.unlink(missing_ok=True)
        return Run(args, proc.returncode, out, err, timed_out, points, killed, time.monotonic() - started)

    def label(self, kind: str, what: str) -> str:
        """A point's name without the root's path: `journal save`, `rename etc/docker/daemon.json`, ..."""
        text = what.replace(f"{self.root}/", "").replace(str(self.root), "/")
        match = re.fullmatch(r"rename (\S+) -> (\S+)", text)
        if match:
            dst = match[2]
            if dst == f"{STATE_DIR}/journal.json":
                return "journal save (rename)"
            if dst.startswith(f"{STATE_DIR}/backups/"):
                return "backup (rename)"
            return f"write {dst} (rename)"
        match = re.fullmatch(r"open (\S+) for writing", text)
        if match:
            name = match[1].rsplit("/", 1)[-1]
            if name.startswith(".journal.json."):
                return "journal save (temp file)"
            if re.fullmatch(r"\.\d{8}T\d{6}-[0-9a-f]{6}-\d+\.[0-9a-f]+", name):
                return "backup (temp file)"
            temp = re.fullmatch(r"\.(.+)\.[0-9a-f]{8}", name)
            if temp:
                return f"write {temp[1]} (temp file)"
            return f"open {match[1]}"
        return text

    # ------------------------------------------------------------ state

    def _hashes(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for files in SERVICE_FILES.values():
            for rel in files:
                path = self.root / rel
                out[rel] = _sha(path.read_bytes()) if path.is_file() else None
        return out

    def journal(self) -> dict | None:
        path = self.root / STATE_DIR / "journal.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            return {"unreadable": str(exc)}
        return data if isinstance(data, dict) else {"unreadable": "not an object"}

    def state_dir_strays(self) -> list[str]:
        """Temp files of interrupted writes left in the state dir (which the root comparison leaves out):
        harmless to the node, so a note rather than a failure."""
        state = self.root / STATE_DIR
        strays = [p for p in state.rglob(".*") if re.fullmatch(r"\..+\.[0-9a-f]{8}", p.name)] if state.exists() else []
        return [f"temp file left in the state dir: {p.relative_to(state)}" for p in sorted(strays)]

    def etcd_value(self) -> str | None:
        return self.node.etcd.get(KEY)

    def end_state(self) -> dict:
        """What an apply leaves (for the reference): files, subnet.env, the etcd value, docker0."""
        subnet = self.root / "run/flannel/subnet.env"
        return {"files": self.node.snapshot(), "subnet.env": subnet.read_text() if subnet.exists() else None,
                "etcd": self.etcd_value(), "docker0": self.node.bridge()}

    def restart_problems(self) -> list[str]:
        """Services running a configuration other than the one on disk: replay the call log (the wizard's
        renames and removes, the stand-in's restarts) from the seed, and compare with the files now."""
        state = dict(self.seed_hashes)
        seen: dict[str, dict[str, str | None]] = {}
        last_change: dict[str, str] = {}
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        for line in text.splitlines():
            words = line.split()
            if words[:2] in (["wizard", "write"], ["wizard", "remove"]) and len(words) >= 3:
                rel = os.path.relpath(words[2], self.root)
                if rel in state:
                    state[rel] = words[3] if words[1] == "write" and len(words) > 3 else None
                    last_change[rel] = words[1]
            elif words[:1] == ["systemctl"] and len(words) >= 3 and words[1] in ("restart", "start", "try-restart"):
                service = words[2].removesuffix(".service")
                if service in SERVICE_FILES:
                    seen[service] = {rel: state[rel] for rel in SERVICE_FILES[service]}
        now = self._hashes()
        problems = []
        for service, files in SERVICE_FILES.items():
            ran = seen.get(service, {rel: self.seed_hashes[rel] for rel in files})
            stale = [rel for rel in files if ran[rel] != now[rel]]
            if stale:
                when = "since its last restart" if service in seen else "and it was never restarted"
                problems.append(f"{service} runs an old configuration: /{', /'.join(stale)} changed {when}")
        return problems

    def restart_order_notes(self) -> list[str]:
        """Runs that restarted services against the order they depend on each other (flanneld writes the
        subnet docker's options come from; the kubelet checks the runtime's cgroup driver at start)."""
        runs: list[tuple[str, list[str]]] = []
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        for line in text.splitlines():
            words = line.split()
            if words[:2] == ["wizard", "run"]:
                runs.append((" ".join(words[2:]), []))
            elif runs and words[:2] == ["systemctl", "restart"] and len(words) > 2 and words[2] in RESTART_ORDER:
                runs[-1][1].append(words[2])
        notes = []
        for command, restarts in runs:
            ranks = [RESTART_ORDER.index(s) for s in restarts]
            if ranks != sorted(ranks):
                notes.append(f"{command} restarted {', '.join(restarts)}, against the order "
                             f"{' -> '.join(RESTART_ORDER)}")
        return notes

    def journal_problems(self, live_ok: bool = False) -> list[str]:
        data = self.journal()
        if data is None:
            return []
        if "unreadable" in data:
            return [f"journal unreadable: {data['unreadable']}"]
        problems = []
        if data.get("owed"):
            problems.append(f"journal still owes restarts: {', '.join(map(str, data['owed']))}")
        live = [e for e in data.get("entries", []) if isinstance(e, dict) and e.get("state") in ("applying", "applied")]
        if live and not live_ok:
            problems.append("journal entries still live after undo: " + ", ".join(
                f"{e.get('summary')} ({e.get('state')})" for e in live))
        return problems

    def restored_problems(self) -> list[str]:
        """Differences from the seeded node that undo must bring back."""
        problems = diff_files(self.seed, self.node.snapshot(), "the seed")
        value = self.etcd_value()
        if value is not None:
            problems.append(f"etcd {KEY} still present")
        bridge = self.node.bridge()
        if bridge != SEED_BRIDGE:
            problems.append(f"docker0 is {', '.join(bridge['ipv4']) or 'unaddressed'} mtu {bridge['mtu']}, not 172.17.0.1/16 mtu 1500")
        return problems + self.journal_problems() + self.restart_problems()

    def applied_problems(self, reference: dict) -> list[str]:
        """Differences from the end state of an uninterrupted apply."""
        now = self.end_state()
        problems = diff_files(reference["files"], now["files"], "an uninterrupted apply")
        if now["subnet.env"] != reference["subnet.env"]:
            problems.append(f"subnet.env is {now['subnet.env']!r}, not {reference['subnet.env']!r}")
        if now["etcd"] != reference["etcd"]:
            problems.append(f"etcd {KEY} is {now['etcd']!r}, not the intended config")
        if now["docker0"] != reference["docker0"]:
            problems.append(f"docker0 is {now['docker0']}, not {reference['docker0']}")
        return problems + self.journal_problems(live_ok=True) + self.restart_problems()


def diff_files(want: dict, have: dict, what: str) -> list[str]:
    problems = []
    for rel in sorted(set(want) | set(have)):
        if rel not in have:
            problems.append(f"/{rel} missing (present in {what})")
        elif rel not in want:
            problems.append(f"/{rel} left behind (not in {what})")
        elif want[rel] != have[rel]:
            if isinstance(want[rel], tuple) and want[rel][0] == have[rel][0]:
                problems.append(f"/{rel} has mode {have[rel][1]}, not {want[rel][1]} as in {what}")
            else:
                problems.append(f"/{rel} differs from {what}")
    return problems


# ---------------------------------------------------------------- the flows


@dataclass
class Outcome:
    flow: str
    k: int
    point: str  # the operation the run was killed before
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # converged, with a remark (e.g. took a second undo)

    @property
    def ok(self) -> bool:
        return not self.problems


def _killed(run: Run, k: int, labels: list[str], outcome: Outcome) -> bool:
    """Check the run died at point K; say so when it did not."""
    if run.timed_out:
        outcome.problems.append("the killed run timed out")
        return False
    if run.killed_at != k or run.rc != -signal.SIGKILL:
        outcome.problems.append(f"the run was not killed at point {k}: {run.outcome()} after {len(run.points)} point(s)")
        return False
    here = run.points[k - 1] if len(run.points) >= k else "?"
    if k <= len(labels) and _run_free(here) != _run_free(labels[k - 1]):
        outcome.notes.append(f"point {k} was `{here}` here, `{labels[k - 1]}` in the count run")
    return True


def _undo_until_clean(worker: Worker, outcome: Outcome, allowed: int, timeout: float) -> bool:
    """Run undo until one exits 0 (at most `allowed` times). An undo that finds no journal because the
    run was killed before its first journal save (so before any change) is a note, not a failure:
    it says "nothing was applied here", which is true; the node checks that follow make sure of it."""
    said: list[str] = []
    for attempt in range(1, allowed + 1):
        run = worker.wizard(undo_args(worker.root), timeout=timeout)
        if run.rc == 0 and not run.timed_out:
            if said:
                outcome.notes.append(f"needed undo #{attempt} ({'; '.join(said)})")
            return True
        if run.rc == 2 and "no journal at" in run.err and worker.journal() is None:
            outcome.notes.append("undo exits 2 `no journal ... nothing was applied here`: killed before the "
                                 "first journal save")
            return True
        said.append(f"undo #{attempt}: {run.outcome()}")
    outcome.problems += said
    return False


def flow_apply_undo(worker: Worker, k: int, labels: list[str], reference: dict, timeout: float = 60) -> Outcome:
    outcome = Outcome("apply-undo", k, labels[k - 1] if k <= len(labels) else "?")
    worker.reset()
    run = worker.wizard(apply_args(worker.root), kill_at=k, timeout=timeout)
    if not _killed(run, k, labels, outcome):
        return outcome
    _undo_until_clean(worker, outcome, allowed=2, timeout=timeout)  # a second undo may finish what the first could not
    outcome.problems += worker.restored_problems()
    outcome.notes += worker.state_dir_strays()
    return outcome


def flow_apply_rerun(worker: Worker, k: int, labels: list[str], reference: dict, timeout: float = 60) -> Outcome:
    outcome = Outcome("apply-rerun", k, labels[k - 1] if k <= len(labels) else "?")
    worker.reset()
    run = worker.wizard(apply_args(worker.root), kill_at=k, timeout=timeout)
    if not _killed(run, k, labels, outcome):
        return outcome
    again = worker.wizard(apply_args(worker.root), timeout=timeout)
    if again.rc != 0 or again.timed_out:
        outcome.problems.append(f"the rerun: {again.outcome()}")
    outcome.problems += worker.applied_problems(reference)
    if outcome.problems:
        return outcome
    undo = worker.wizard(undo_args(worker.root), timeout=timeout)
    if undo.rc != 0 or undo.timed_out:
        outcome.problems.append(f"undo after the rerun: {undo.outcome()}")
    outcome.problems += [f"after the rerun's undo: {p}" for p in worker.restored_problems()]
    outcome.notes += worker.state_dir_strays()
    return outcome


def flow_undo_undo(worker: Worker, k: int, labels: list[str], reference: dict, timeout: float = 60) -> Outcome:
    outcome = Outcome("undo-undo", k, labels[k - 1] if k <= len(labels) else "?")
    worker.reset()
    applied = worker.wizard(apply_args(worker.root), timeout=timeout)
    if applied.rc != 0:
        outcome.problems.append(f"the apply before the undo: {applied.outcome()}")
        return outcome
    run = worker.wizard(undo_args(worker.root), kill_at=k, timeout=timeout)
    if not _killed(run, k, labels, outcome):
        return outcome
    again = worker.wizard(undo_args(worker.root), timeout=timeout)
    if again.rc != 0 or again.timed_out:
        outcome.problems.append(f"undo again: {again.outcome()}")
    outcome.problems += worker.restored_problems()
    outcome.notes += worker.state_dir_strays()
    return outcome


def _checked(flow: Callable[[Worker, int, list[str], dict, float], Outcome]
             ) -> Callable[[Worker, int, list[str], dict, float], Outcome]:
    def run(worker: Worker, k: int, labels: list[str], reference: dict, timeout: float = 60) -> Outcome:
        outcome = flow(worker, k, labels, reference, timeout)
        outcome.problems += worker.wrapper_errors
        outcome.notes += worker.restart_order_notes()
        return outcome

    return run


FLOW_FUNCS: dict[str, Callable[[Worker, int, list[str], dict, float], Outcome]] = {
    "apply-undo": _checked(flow_apply_undo), "apply-rerun": _checked(flow_apply_rerun),
    "undo-undo": _checked(flow_undo_undo),
}


# ---------------------------------------------------------------- the sweep


@dataclass
class Sweep:
    apply_points: list[str]
    undo_points: list[str]
    reference: dict
    outcomes: list[Outcome] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)  # problems of the uninterrupted runs themselves
    seconds: float = 0.0

    def points(self, flow: str) -> list[str]:
        return self.undo_points if flow == "undo-undo" else self.apply_points

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def table(self, flows: Iterable[str]) -> str:
        head = f"{'flow':<13} {'points':>6} {'killed at':>9} {'converged':>9} {'with note':>9} {'failed':>6}"
        lines = [head, "-" * len(head)]
        for flow in flows:
            mine = [o for o in self.outcomes if o.flow == flow]
            ok = [o for o in mine if o.ok]
            lines.append(f"{flow:<13} {len(self.points(flow)):>6} {len(mine):>9} {len(ok):>9} "
                         f"{sum(1 for o in ok if o.notes):>9} {len(mine) - len(ok):>6}")
        return "\n".join(lines)

    def classes(self) -> dict[str, list[Outcome]]:
        """Failures grouped by what differed (numbers and hashes blanked)."""
        out: dict[str, list[Outcome]] = {}
        for o in self.failed():
            for problem in o.problems:
                key = f"{o.flow}: " + _blank(problem)
                out.setdefault(key, []).append(o)
        return out


def count(worker: Worker, timeout: float) -> Sweep:
    """A full apply and an undo on a fresh node: their points, the reference end state, and whether
    the uninterrupted runs converge at all."""
    worker.reset()
    applied = worker.wizard(apply_args(worker.root), timeout=timeout)
    baseline = list(worker.wrapper_errors)
    if applied.rc != 0:
        baseline.append(f"uninterrupted apply: {applied.outcome()}")
    reference = worker.end_state()
    baseline += [f"uninterrupted apply: {p}" for p in worker.journal_problems(live_ok=True) + worker.restart_problems()]
    undone = worker.wizard(undo_args(worker.root), timeout=timeout)
    if undone.rc != 0:
        baseline.append(f"uninterrupted undo: {undone.outcome()}")
    baseline += [f"uninterrupted undo: {p}" for p in worker.restored_problems()]
    return Sweep(applied.points, undone.points, reference, baseline=baseline)


@contextlib.contextmanager
def lab_nodes(jobs: int = 2) -> Iterator[list[Worker]]:
    """`jobs` lab nodes, each with its namespace, etcd and root; all removed on the way out, whatever
    happened (processes a killed run left included)."""
    base = Path(tempfile.mkdtemp(prefix="fwkill-"))
    workers: list[Worker] = []
    try:
        bin_dir = lab.standin_bin(base / "bin")
        for index in range(max(1, jobs)):
            workers.append(Worker(base, bin_dir, index))
        yield workers
    finally:
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.close()
        shutil.rmtree(base, ignore_errors=True)


def sweep(workers: list[Worker], flows: Iterable[str] = FLOWS, step: int = 1, timeout: float = 60,
          only: dict[str, list[int]] | None = None, progress: Callable[[Outcome], None] | None = None,
          counted: Sweep | None = None) -> Sweep:
    """Count the points (on the first node; or take them from `counted`), then run every flow at every
    `step`-th point (or at the points `only` names per flow), the nodes working in parallel; return
    the outcomes."""
    flows = list(flows)
    started = time.monotonic()
    if counted is None:
        result = count(workers[0], timeout)
    else:
        result = Sweep(counted.apply_points, counted.undo_points, counted.reference, baseline=list(counted.baseline))
    tasks: list[tuple[str, int]] = []
    for flow in flows:
        n = len(result.points(flow))
        ks = (only or {}).get(flow)
        ks = list(range(1, n + 1, step)) if ks is None else [k for k in ks if 1 <= k <= n]
        tasks += [(flow, k) for k in ks]
    free: queue.Queue[Worker] = queue.Queue()
    for worker in workers:
        free.put(worker)
    lock = threading.Lock()

    def one(task: tuple[str, int]) -> Outcome:
        flow, k = task
        points = result.points(flow)
        worker = free.get()
        try:
            outcome = FLOW_FUNCS[flow](worker, k, points, result.reference, timeout)
        except Exception as exc:  # a broken lab step is reported with its point, not lost
            outcome = Outcome(flow, k, points[k - 1], [f"sweep error: {type(exc).__name__}: {exc}"])
        finally:
            free.put(worker)
        with lock:
            result.outcomes.append(outcome)
            if progress:
                progress(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        list(pool.map(one, tasks))
    result.outcomes.sort(key=lambda o: (flows.index(o.flow), o.k))
    result.seconds = time.monotonic() - started
    return result


def _run_free(label: str) -> str:
    """A point's label without the run's id (journal entries, their backups and temp files carry it)."""
    return re.sub(r"\d{8}T\d{6}-[0-9a-f]{6}", "RUN", label)


def _blank(text: str) -> str:
    """A problem or note with its numbers, hashes and lab paths blanked, to group alike ones."""
    text = re.sub(r"\S*/fwkill-[^/\s]+/node\d+", "LAB", text)
    text = re.sub(r"\d{8}T\d{6}-[0-9a-f]{6}-\d+", "ENTRY", text)  # a journal entry's id
    return re.sub(r"\b[0-9a-f]{8,}\b|(?<![\w.-])\d+(?![\w-])", "#", text)


def report(result: Sweep, flows: Iterable[str]) -> str:
    flows = list(flows)
    lines = [result.table(flows), f"({result.seconds:.0f} s)"]
    if result.baseline:
        lines += ["", "uninterrupted runs did not converge:"] + [f"  {p}" for p in result.baseline]
    notes: dict[str, list[Outcome]] = {}
    for o in result.outcomes:
        if o.ok:
            for note in o.notes:
                notes.setdefault(f"{o.flow}: " + _blank(note), []).append(o)
    if notes:
        lines += ["", "converged, with a note:"]
        for key, outcomes in sorted(notes.items()):
            lines.append(f"  {len(outcomes):>3}x {key}\n        k = {', '.join(str(o.k) for o in outcomes)}")
    failed = result.failed()
    if failed:
        lines += ["", "failed:"]
        for o in failed:
            lines.append(f"  {o.flow} k={o.k} [{o.point}]")
            lines += [f"      {p}" for p in o.problems + o.notes]
        lines += ["", "failures by kind:"]
        for key, outcomes in sorted(result.classes().items()):
            ks = ", ".join(str(o.k) for o in outcomes)
            lines.append(f"  {len(outcomes):>3}x {key}\n        k = {ks}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", type=int, default=1, help="kill at every STEP-th point (default: every point)")
    parser.add_argument("--jobs", type=int, default=2, help="lab nodes working in parallel (default 2)")
    parser.add_argument("--flows", default=",".join(FLOWS), help=f"comma-separated, of {', '.join(FLOWS)}")
    parser.add_argument("--points", default=None, metavar="K,K,..", help="only these points (every flow)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per wizard run (default 60)")
    parser.add_argument("--list", action="store_true", help="print the points of apply and undo, then stop")
    parser.add_argument("--json", metavar="FILE", help="also write the outcomes as JSON")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the sweep needs root: it builds network namespaces and changes links in them", file=sys.stderr)
        return 2
    flows = [f.strip() for f in args.flows.split(",") if f.strip()]
    unknown = [f for f in flows if f not in FLOWS]
    if unknown:
        parser.error(f"unknown flow {', '.join(unknown)}; flows are {', '.join(FLOWS)}")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # clean up the lab on the way out
    if args.list:
        with lab_nodes(1) as workers:
            result = sweep(workers, [], timeout=args.timeout)
        for name, points in (("apply", result.apply_points), ("undo", result.undo_points)):
            print(f"{name}: {len(points)} points")
            for k, label in enumerate(points, 1):
                print(f"  {k:>3} {label}")
        return 0
    only = None
    if args.points:
        ks = [int(k) for k in args.points.split(",") if k.strip()]
        only = {flow: ks for flow in flows}

    def progress(outcome: Outcome) -> None:
        mark = "ok" if outcome.ok else "FAILED"
        print(f"  {outcome.flow:<12} k={outcome.k:<4} {mark:<6} {outcome.point}", file=sys.stderr, flush=True)

    with lab_nodes(args.jobs) as workers:
        result = sweep(workers, flows, step=args.step, timeout=args.timeout, only=only, progress=progress)
    print(report(result, flows))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "apply_points": result.apply_points, "undo_points": result.undo_points, "baseline": result.baseline,
            "outcomes": [o.__dict__ for o in result.outcomes], "seconds": result.seconds}, indent=2))
    return 1 if result.failed() or result.baseline else 0


if __name__ == "__main__":
    sys.exit(main())
