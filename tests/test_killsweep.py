"""Recovery from every crash point (issue 9), CI-sized: the kill-at-every-point sweep of bench/killsweep.py
on every 5th point of `apply` and at every journal save of `undo`, and the two cases the issue names —
killed between a config write and its restart, the rerun makes the restart; killed at a journal save
of undo, undo again restores the node. The full sweep (every point) is `bench/killsweep.py`.

The wizard runs under tests/killpoint.py, which kills it right before its K-th file write, rename,
command, etcd write or netlink change; the product does not know. Needs root (namespaces, links).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import killsweep
from bench.killsweep import SERVICE_FILES, Sweep, Worker, apply_args

STEP = 5  # every 5th point of apply: 19 of 95, both recoveries (undo, and apply again)


@pytest.fixture(scope="module")
def workers() -> Iterator[list[Worker]]:
    with killsweep.lab_nodes(2) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def counted(workers: list[Worker]) -> Sweep:
    result = killsweep.count(workers[0], timeout=60)
    assert not result.baseline, result.baseline
    assert len(result.apply_points) > 40 and len(result.undo_points) > 20, (result.apply_points, result.undo_points)
    return result


def assert_converged(result: Sweep, flows: list[str]) -> None:
    text = killsweep.report(result, flows)
    print(text)
    assert result.outcomes, "no point was tried"
    assert not result.baseline, text
    assert not result.failed(), text
    moved = [n for o in result.outcomes for n in o.notes if "in the count run" in n]
    assert not moved, moved  # each K is the same operation in every run, or the sweep misses some


def test_killed_at_every_5th_point_of_apply_undo_or_a_rerun_converges(workers: list[Worker], counted: Sweep) -> None:
    flows = ["apply-undo", "apply-rerun"]
    result = killsweep.sweep(workers, flows, step=STEP, counted=counted)
    assert len(result.outcomes) == 2 * len(range(1, len(result.apply_points) + 1, STEP))
    assert_converged(result, flows)


def test_killed_at_every_journal_save_of_undo_undo_again_restores_the_node(workers: list[Worker],
                                                                           counted: Sweep) -> None:
    # a save begins with its temp file: killed there, the undo's last effect is made and not yet recorded
    saves = [k for k, label in enumerate(counted.undo_points, 1) if label == "journal save (temp file)"]
    assert len(saves) >= 10, counted.undo_points
    result = killsweep.sweep(workers, ["undo-undo"], only={"undo-undo": saves}, counted=counted)
    assert [o.k for o in result.outcomes] == saves
    assert_converged(result, ["undo-undo"])


def restart_points(points: list[str]) -> list[tuple[int, str]]:
    """(K, service) for each restart of a service whose configuration the run wrote since its last restart."""
    out, written = [], set()
    for k, label in enumerate(points, 1):
        for service, files in SERVICE_FILES.items():
            if any(label == f"write {rel} (rename)" for rel in files):
                written.add(service)
            if label == f"fork (systemctl restart {service})" and service in written:
                out.append((k, service))
                written.discard(service)
    return out


def test_killed_between_a_config_write_and_its_restart_the_rerun_restarts_it(workers: list[Worker],
                                                                             counted: Sweep) -> None:
    worker = workers[0]
    cases = restart_points(counted.apply_points)
    assert {s for _k, s in cases} == {"flanneld", "docker"}, counted.apply_points
    # and killed right after each file write lands (the point after its rename)
    writes = [k + 1 for k, label in enumerate(counted.apply_points, 1)
              if label.startswith("write ") and label.endswith("(rename)")]
    for k, service in cases + [(k, "") for k in writes]:
        worker.reset()
        killed = worker.wizard(apply_args(worker.root), kill_at=k)
        assert killed.killed_at == k and killed.rc == -9, killed.outcome()
        if service:
            # killed right before the restart: the check sees the service running its old configuration
            stale = worker.restart_problems()
            assert any(p.startswith(f"{service} runs an old configuration") for p in stale), (k, stale)
        again = worker.wizard(apply_args(worker.root))
        assert again.rc == 0, again.outcome()
        problems = worker.applied_problems(counted.reference)
        assert not problems, f"killed before point {k} ({counted.apply_points[k - 1]}), then apply again: {problems}"
