"""The sharding layer (slowthink.distributed): the in-process pool, and the Ray pool on a real
local cluster (``ray_cluster``): every result exactly once, a dead worker's task re-queued, a task
that keeps killing workers stopped after ``max_attempts``, a worker's error raised in the caller."""

from __future__ import annotations

import os
import sys

import pytest

from slowthink.distributed import LocalPool, RayPool, Sharding, open_pool, run_sharded
from slowthink.types import SlowthinkError


def test_local_pool_builds_the_state_once_at_the_first_task_and_runs_in_order():
    built = []

    def make():
        built.append(1)
        return len(built) * 100

    with open_pool(make) as pool:
        assert isinstance(pool, LocalPool)
        pool.run([], lambda s, t: s, lambda t, r: None)
        assert built == [] and pool.local_state is None
        got = []
        pool.run(range(3), lambda s, t: s + t, lambda t, r: got.append((t, r)))
        pool.run([7], lambda s, t: s + t, lambda t, r: got.append((t, r)))
    assert built == [1] and got == [(0, 100), (1, 101), (2, 102), (7, 107)]


def test_tasks_are_taken_lazily_so_a_task_sees_the_results_before_it():
    results: list[int] = []

    def tasks():
        for _ in range(3):
            yield sum(results)  # made after the results so far came back

    run_sharded(tasks(), lambda: 1, lambda s, t: t + s, lambda t, r: results.append(r))
    assert results == [1, 2, 4]


def test_an_error_in_a_task_or_in_on_result_stops_the_run():
    seen = []

    def process(s, t):
        if t == 2:
            raise SlowthinkError("task 2 is bad")
        return t

    with pytest.raises(SlowthinkError, match="task 2 is bad"):
        run_sharded(range(5), lambda: None, process, lambda t, r: seen.append(r))
    assert seen == [0, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"workers": 0}, "Ray workers must be >= 1"),
        ({"cpus": 0}, "must reserve some CPUs or GPUs"),
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
    ],
)
def test_bad_sharding_settings_are_one_line(kwargs, message):
    with pytest.raises(SlowthinkError, match=message):
        Sharding(address="auto", **kwargs)


def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SlowthinkError, match=r"pip install 'slowthink\[ray\]'"):
        open_pool(lambda: None, Sharding(address="auto"))


# -- on a real Ray cluster. The functions below run in the Ray workers (imported from this module).


def worker_pid() -> int:
    return os.getpid()


def tag(pid: int, task: str) -> tuple[str, int]:
    if task == "poison":
        os._exit(1)  # a worker crash, every time
    if task == "bad":
        raise SlowthinkError("task 'bad' is bad")
    return task.upper(), pid


@pytest.mark.ray
def test_ray_pool_gives_every_result_once_and_stops_a_task_that_keeps_killing_workers(ray_cluster):
    got: list[tuple[str, tuple[str, int]]] = []
    with RayPool(worker_pid, Sharding(address=ray_cluster, workers=2, max_attempts=2)) as pool:
        assert pool.size == 2 and pool.local_state is None
        pool.run([f"t{i}" for i in range(8)], tag, lambda t, r: got.append((t, r)))
        assert sorted(t for t, _ in got) == [f"t{i}" for i in range(8)]
        assert all(r[0] == t.upper() for t, r in got)
        assert len({pid for _, (_, pid) in got}) == 2  # both workers took tasks
        assert pool.deaths == 0

        with pytest.raises(SlowthinkError, match=r"2 Ray workers died running the same task \(poison\)"):
            pool.run(["poison"], tag, lambda t, r: got.append((t, r)))
        assert pool.deaths == 2

        done: list[str] = []
        with pytest.raises(SlowthinkError, match="task 'bad' is bad"):
            pool.run(["bad"], tag, lambda t, r: done.append(t))
        assert done == []


def test_an_address_where_nothing_listens_is_one_line_at_once():
    pytest.importorskip("ray")
    from tests.fixtures.ray_cluster import free_port

    with pytest.raises(
        SlowthinkError, match=r"cannot connect to Ray at '127\.0\.0\.1:\d+' \(nothing answers"
    ):
        open_pool(lambda: None, Sharding(address=f"127.0.0.1:{free_port()}"))
