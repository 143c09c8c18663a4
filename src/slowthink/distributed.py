"""One sharding layer for every batch loop: tasks run in this process, or across Ray workers.

A loop that solves (or annotates) problems a batch at a time hands its batches to a pool::

    from slowthink.distributed import Sharding, open_pool

    with open_pool(make_state, Sharding(address="auto", workers=4)) as pool:
        pool.run(tasks, process, on_result)   # process(state, task) -> result, on_result(task, result)

``make_state()`` builds what a worker needs once (an engine, a scorer: objects that cannot be
pickled), ``process(state, task)`` does one task with it, and ``on_result(task, result)`` runs in
the calling process for each finished task, one at a time, so it alone writes the results (the
eval's ``records.jsonl``). Both pools guarantee the same things:

* each task's result reaches ``on_result`` exactly once;
* tasks are taken from ``tasks`` lazily, one when a worker is free, so a task may depend on the
  results that came back before it was taken (the eval's sample sharing does);
* an exception raised by ``make_state``, ``process`` or ``on_result`` stops the run and is raised
  in the caller (the pool's other tasks are abandoned, their results never delivered).

:class:`LocalPool` (``Sharding(address=None)``) runs the tasks in order in this process, building
the state at the first task. :class:`RayPool` keeps up to ``workers`` Ray actors, each with its own
state built at its first task; one task in flight per actor, results taken as they finish
(``ray.wait``), so their order is the order of completion. An actor that dies (its process killed,
its node lost) is dropped and its task re-queued for a new actor; a task whose actors died
``max_attempts`` times stops the run with one :class:`~slowthink.types.SlowthinkError` line.

Ray is an optional extra (``pip install 'slowthink[ray]'``), imported only by :class:`RayPool`.
Workers import slowthink (and any ``py:`` engine module) as installed on their nodes; their output
goes to the Ray session logs, not to the caller's terminal.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from slowthink.types import SlowthinkError

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

RAY_HINT = "pip install 'slowthink[ray]' (or pip install 'ray>=2.9')"


@dataclass(frozen=True)
class Sharding:
    """Where a pool's tasks run.

    >>> Sharding().distributed, Sharding(address="auto", workers=2).distributed
    (False, True)
    """

    address: str | None = None
    """``None``: in this process. ``auto``: the running Ray cluster (``RAY_ADDRESS``, or one started
    on this machine with ``ray start --head``); ``local``: a new Ray instance on this machine for
    this run only; ``HOST:PORT`` (or ``ray://HOST:10001``): that cluster."""
    workers: int | None = None
    """Ray actors (each with its own engine); ``None``: as many as the cluster's resources fit."""
    cpus: float = 1.0
    """CPUs each Ray worker reserves."""
    gpus: float = 0.0
    """GPUs each Ray worker reserves (1 for a vLLM replica per GPU)."""
    max_attempts: int = 3
    """Workers that may die running one task before the run stops."""
    env: tuple[str, ...] = ()
    """Environment variables of this process that every Ray worker gets, by name (an engine's API
    key variable: a worker runs in the environment its node was started with, not the caller's);
    those not set here are left out."""

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise SlowthinkError(f"Ray workers must be >= 1, got {self.workers}")
        if self.cpus < 0 or self.gpus < 0 or self.cpus + self.gpus <= 0:
            raise SlowthinkError(
                f"each Ray worker must reserve some CPUs or GPUs (got cpus={self.cpus}, gpus={self.gpus})"
            )
        if self.max_attempts < 1:
            raise SlowthinkError(f"max_attempts must be >= 1, got {self.max_attempts}")

    @property
    def distributed(self) -> bool:
        return self.address is not None

    @classmethod
    def of(cls, settings: Any, env: tuple[str, ...] = ()) -> Sharding:
        """The sharding of a run's settings (``EvalConfig``, ``AnnotateConfig``): their ``ray``,
        ``ray_workers``, ``ray_cpus`` and ``ray_gpus`` fields."""
        return cls(settings.ray, settings.ray_workers, settings.ray_cpus, settings.ray_gpus, env=env)


class Pool(Protocol[S]):
    """Runs tasks with a per-worker state; see the module docstring for what it guarantees."""

    def run(
        self, tasks: Iterable[T], process: Callable[[S, T], R], on_result: Callable[[T, R], None]
    ) -> None: ...

    @property
    def local_state(self) -> S | None:
        """The state built in this process (the local pool, once a task ran); ``None`` on Ray."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Pool[S]: ...

    def __exit__(self, *exc: object) -> None: ...


class LocalPool(Generic[S]):
    """The tasks in order, in this process, with one state built at the first task.

    >>> seen = []
    >>> with LocalPool(lambda: 10) as pool:
    ...     pool.run([1, 2, 3], lambda s, t: s + t, lambda t, r: seen.append((t, r)))
    >>> seen, pool.local_state
    ([(1, 11), (2, 12), (3, 13)], 10)
    """

    def __init__(self, make_state: Callable[[], S]) -> None:
        self._make = make_state
        self._state: S | None = None
        self._built = False

    @property
    def local_state(self) -> S | None:
        return self._state

    def run(
        self, tasks: Iterable[T], process: Callable[[S, T], R], on_result: Callable[[T, R], None]
    ) -> None:
        for task in tasks:
            if not self._built:
                self._state, self._built = self._make(), True
            on_result(task, process(self._state, task))  # type: ignore[arg-type]

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalPool[S]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def import_ray() -> Any:
    """The ``ray`` module, or one SlowthinkError line with the install hint."""
    try:
        import ray
    except ImportError:
        raise SlowthinkError(f"running on Ray needs the ray package: {RAY_HINT}") from None
    return ray


def connect(address: str) -> bool:
    """Connect this process to Ray at ``address`` (see :attr:`Sharding.address`); True when this
    call made the connection (so its caller shuts it down), False when Ray was already initialised."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
    try:
        if address == "local":
            kwargs["include_dashboard"] = False
        elif not address.startswith("ray://"):
            _probe(address)
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SlowthinkError(
            f"cannot connect to Ray at '{address}' ({first}): start a cluster with `ray start --head`, "
            "or pass 'local' for a Ray instance on this machine"
        ) from None
    return True


def _probe(address: str, timeout_s: float = 3.0) -> None:
    """Raise ConnectionError at once when nothing listens at the cluster's address (``auto``: as
    Ray resolves it, from ``RAY_ADDRESS`` or the last ``ray start``), where ``ray.init`` would retry
    for minutes (a cluster that was stopped leaves its address behind)."""
    from ray._private.services import canonicalize_bootstrap_address_or_die  # ConnectionError: none found

    host, _, port = canonicalize_bootstrap_address_or_die(address).rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port}: {e.strerror or e}") from None


class _Worker:
    """A Ray actor's body: builds the state at its first task and keeps it."""

    def __init__(self, make_state: Callable[[], Any]) -> None:
        self._make = make_state
        self._state: Any = None
        self._built = False

    def run(self, process: Callable[[Any, Any], Any], task: Any) -> Any:
        if not self._built:
            self._state, self._built = self._make(), True
        return process(self._state, task)


@dataclass
class _Pending(Generic[T]):
    task: T
    deaths: int = 0


class RayPool(Generic[S]):
    """Tasks across Ray actors, each building its own state once; see the module docstring."""

    def __init__(self, make_state: Callable[[], S], sharding: Sharding) -> None:
        if sharding.address is None:
            raise SlowthinkError("RayPool needs a Ray address (or use LocalPool)")
        self.sharding = sharding
        self._ray = import_ray()
        self._owns = connect(sharding.address)
        try:
            self.size = self._fit(sharding)
        except BaseException:
            self.close()
            raise
        self._make = make_state
        env = {name: os.environ[name] for name in sharding.env if name in os.environ}
        self._actor_cls = self._ray.remote(_Worker).options(
            num_cpus=sharding.cpus,
            num_gpus=sharding.gpus,
            **({"runtime_env": {"env_vars": env}} if env else {}),
        )
        self._actors: list[Any] = []
        self.deaths = 0
        """Workers that died during this pool's runs (each replaced)."""

    def _fit(self, sharding: Sharding) -> int:
        """Workers to keep: as asked, at most as many as the cluster's resources fit now."""
        res = self._ray.cluster_resources()
        fits = [
            int(res.get(k, 0) // need) for k, need in (("CPU", sharding.cpus), ("GPU", sharding.gpus)) if need
        ]
        room = min(fits)
        if room < 1:
            raise SlowthinkError(
                f"the Ray cluster ({res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU) has no room for a worker "
                f"reserving {sharding.cpus:g} CPU and {sharding.gpus:g} GPU: ask for less per worker or add nodes"
            )
        return min(sharding.workers or room, room)

    @property
    def local_state(self) -> S | None:
        return None

    def run(
        self, tasks: Iterable[T], process: Callable[[S, T], R], on_result: Callable[[T, R], None]
    ) -> None:
        ray = self._ray
        source: Iterator[T] = iter(tasks)
        requeued: deque[_Pending[T]] = deque()
        idle = list(self._actors)
        in_flight: dict[Any, tuple[Any, _Pending[T]]] = {}
        drained = False

        def take() -> _Pending[T] | None:
            nonlocal drained
            if requeued:
                return requeued.popleft()
            if not drained:
                try:
                    return _Pending(next(source))
                except StopIteration:
                    drained = True
            return None

        while True:
            while idle or len(self._actors) < self.size:
                pending = take()
                if pending is None:
                    break
                actor = idle.pop() if idle else self._new_actor()
                in_flight[actor.run.remote(process, pending.task)] = (actor, pending)
            if not in_flight:
                return
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            actor, pending = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError:
                self._drop(actor)
                pending.deaths += 1
                if pending.deaths >= self.sharding.max_attempts:
                    raise SlowthinkError(
                        f"{pending.deaths} Ray workers died running the same task ({_describe(pending.task)}), "
                        "so the run stopped: see the Ray logs (/tmp/ray/session_latest/logs on the node) for why"
                    ) from None
                requeued.append(pending)
                continue
            except ray.exceptions.RayTaskError as e:
                cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else None
                if cause is None:
                    raise SlowthinkError(f"a Ray worker failed: {str(e).strip().splitlines()[-1]}") from None
                raise cause from None
            idle.append(actor)
            on_result(pending.task, result)

    def _new_actor(self) -> Any:
        actor = self._actor_cls.remote(self._make)
        self._actors.append(actor)
        return actor

    def _drop(self, actor: Any) -> None:
        self.deaths += 1
        self._actors.remove(actor)
        self._kill(actor)

    def _kill(self, actor: Any) -> None:
        with contextlib.suppress(Exception):  # already gone
            self._ray.kill(actor, no_restart=True)

    def close(self) -> None:
        for actor in getattr(self, "_actors", []):
            self._kill(actor)
        self._actors = []
        if self._owns:
            self._owns = False
            self._ray.shutdown()

    def __enter__(self) -> RayPool[S]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(task: Any) -> str:
    text = str(task)
    return text if len(text) <= 200 else text[:197] + "..."


def open_pool(make_state: Callable[[], S], sharding: Sharding | None = None) -> LocalPool[S] | RayPool[S]:
    """The pool of ``sharding``: :class:`RayPool` when it names a Ray address, else :class:`LocalPool`."""
    if sharding is not None and sharding.distributed:
        return RayPool(make_state, sharding)
    return LocalPool(make_state)


def run_sharded(
    tasks: Iterable[T],
    make_state: Callable[[], S],
    process: Callable[[S, T], R],
    on_result: Callable[[T, R], None],
    sharding: Sharding | None = None,
) -> None:
    """One run of ``tasks`` on a pool opened for it (:func:`open_pool`), closed at the end.

    >>> out = []
    >>> run_sharded("abc", lambda: "!", lambda s, t: t + s, lambda t, r: out.append(r))
    >>> out
    ['a!', 'b!', 'c!']
    """
    with open_pool(make_state, sharding) as pool:
        pool.run(tasks, process, on_result)


__all__ = [
    "RAY_HINT",
    "LocalPool",
    "Pool",
    "RayPool",
    "Sharding",
    "connect",
    "import_ray",
    "open_pool",
    "run_sharded",
]
