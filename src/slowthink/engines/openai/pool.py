"""Engine pools: one ``openai`` spec, several servers of the same model (vLLM / SGLang
data-parallel replicas, llama.cpp servers), used as one engine.

Spec: ``openai:http://h1:8000/v1#M,http://h2:8000/v1#M,timeout_s=30`` (grammar in
:meth:`slowthink.engines.EngineSpec.parse`; a model named once serves every endpoint), or in YAML
``engine: [openai:http://h1:8000/v1#M, openai:http://h2:8000/v1#M]``. :class:`OpenAIPool` holds
one :class:`~slowthink.engines.openai.OpenAIEngine` per endpoint, each with its own set-up probes
(prefix mode, chat template, tokenizer endpoint, ``n`` support) and caches; the engine options
apply to every endpoint (``max_concurrency`` is per endpoint).

**Dispatch**: ``generate`` keeps the one-call-per-depth contract: the requests of one call go out
concurrently, each whole request (its ``n`` samples) to the live endpoint with the fewest
outstanding requests (ties: the first listed), never more than an endpoint's ``max_concurrency``
at once; a request waits for a free slot otherwise. Every request body is the same whatever the
endpoint (same seed), so on replicas of one model the results do not depend on routing.

**Failures**: a request that fails on an endpoint *because of the server* (unreachable, the
connection closed, 5xx after that endpoint's retries; see
:attr:`~slowthink.engines.openai.http.HTTPFailure.fault`) marks the endpoint down and is sent again
to another live endpoint it has not failed on; its completions are the ones of the endpoint that
answered it, so a request is never lost and never doubled. A read timeout marks the endpoint down
only when a health check fails right away (a hung server); otherwise the timeout is the request's
own error (a generation slower than ``timeout_s`` would be slow anywhere). Any other failure (a
4xx, a bad image) is the request's own and is not re-sent.

**Health**: a down endpoint rests ``cooldown_s`` seconds, then the next dispatch health-checks it
(one ``GET /v1/models``, no retries) and sends it requests again when it answers. When no endpoint
that has not failed a request is up, the down ones are checked at once; when none answers, the
request fails with one error naming every endpoint and what happened there.

**Stats** (``pool.stats``, written by the eval to ``metrics.json`` as ``engine_stats``): the
endpoints' engine counters summed (``http_requests``, ``retries``, ...), ``rerouted`` and
``endpoint_failures`` in all, and ``endpoints``: per URL ``requests`` (sent there), ``failures``
(failed there because of the server), ``rerouted`` (of those, sent on to another endpoint),
``marked_down``, ``health_checks`` and that engine's own counters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slowthink.engines import EngineSpec
from slowthink.engines.base import check_images, error_completions
from slowthink.engines.openai.engine import OpenAIEngine
from slowthink.engines.openai.http import shorten
from slowthink.engines.openai.options import OPTION_NAMES
from slowthink.types import Completion, Request, SlowthinkError

logger = logging.getLogger(__name__)

#: Options of the pool itself (no effect on a spec with one endpoint).
POOL_OPTIONS: frozenset[str] = frozenset({"cooldown_s"})
DEFAULT_COOLDOWN_S = 5.0
_WAIT_S = 0.5  # longest wait for a free slot before looking at the endpoints' health again


@dataclass
class Endpoint:
    """One server of a pool: its engine, dispatch state (guarded by the pool's lock) and counters."""

    index: int
    engine: OpenAIEngine
    capacity: int
    outstanding: int = 0
    up: bool = True
    checking: bool = False
    last_check: float = 0.0
    """``time.monotonic()`` of the last mark-down or health check (the cool-down counts from it)."""
    requests: int = 0
    failures: int = 0
    rerouted: int = 0
    marked_down: int = 0
    health_checks: int = 0

    @property
    def url(self) -> str:
        return self.engine.base_url

    def counters(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "rerouted": self.rerouted,
            "marked_down": self.marked_down,
            "health_checks": self.health_checks,
            **self.engine.stats,
        }


class OpenAIPool:
    """Several OpenAI-compatible servers of one model as one engine. See the module docstring."""

    name = "openai"

    def __init__(
        self,
        endpoints: Sequence[tuple[str, str | None]],
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        **options: Any,
    ) -> None:
        if not endpoints:
            raise SlowthinkError(
                "an engine pool needs endpoints: use 'openai:http://h1:8000/v1#M,http://h2:8000/v1#M'"
            )
        if not float(cooldown_s) >= 0:
            raise ValueError(f"cooldown_s must be >= 0, got {cooldown_s!r}")
        self.cooldown_s = float(cooldown_s)
        self._endpoints: list[Endpoint] = []
        try:
            for i, (url, model) in enumerate(endpoints):
                engine = OpenAIEngine(url, model, **options)
                self._endpoints.append(Endpoint(i, engine, int(engine.options.max_concurrency)))
        except BaseException:
            self.close()
            raise
        self.supports_images = all(e.engine.supports_images for e in self._endpoints)
        self._cond = threading.Condition()
        self._notes: list[str] = []

    @classmethod
    def from_spec(cls, target: str | None, fragment: str | None, **options: Any) -> OpenAIPool | OpenAIEngine:
        """The ``openai`` engine kind (:data:`slowthink.engines.ENGINES`): a target listing several
        endpoints (``URL#MODEL,URL#MODEL``, see :attr:`EngineSpec.endpoints`) builds a pool, one
        endpoint the plain :class:`OpenAIEngine` (a pool of one would add nothing). Options not
        meant for the openai engine (n_ctx, device, ...) are ignored."""
        endpoints = EngineSpec("openai", target, fragment).endpoints
        if len(endpoints) <= 1:
            return OpenAIEngine.from_spec(target, fragment, **options)
        keep = {
            k: v for k, v in options.items() if k in (OPTION_NAMES | POOL_OPTIONS) - {"base_url", "model"}
        }
        return cls(endpoints, **keep)

    def __repr__(self) -> str:
        return f"OpenAIPool({', '.join(repr(e.engine) for e in self._endpoints)})"

    def close(self) -> None:
        for e in self._endpoints:
            e.engine.close()

    def __enter__(self) -> OpenAIPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- what the pool shows ----------------------------------------------------------------------
    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(self._endpoints)

    @property
    def model(self) -> str | None:
        """The model the endpoints serve (the first endpoint's name when they name it differently)."""
        return self._endpoints[0].engine.model

    @property
    def notes(self) -> list[str]:
        """Warnings of the pool (endpoints down and back) and of every endpoint's engine."""
        return [*self._notes, *(n for e in self._endpoints for n in e.engine.notes)]

    @property
    def stats(self) -> dict[str, Any]:
        with self._cond:
            per = {e.url: e.counters() for e in self._endpoints}
        total: dict[str, Any] = {}
        for counters in per.values():
            for key, value in counters.items():
                if key not in ("requests", "failures", "rerouted", "marked_down", "health_checks"):
                    total[key] = total.get(key, 0) + value
        total["rerouted"] = sum(c["rerouted"] for c in per.values())
        total["endpoint_failures"] = sum(c["failures"] for c in per.values())
        total["endpoints"] = per
        return total

    # -- generation -------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        """Return ``len(requests)`` lists, the i-th holding ``requests[i].n`` completions."""
        requests = list(requests)
        check_images(self.name, self.supports_images, requests)
        if not requests:
            return []
        workers = min(len(requests), sum(e.capacity for e in self._endpoints))
        if workers == 1:
            return [self._serve(r) for r in requests]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slowthink-pool") as pool:
            return list(pool.map(self._serve, requests))

    def _serve(self, r: Request) -> list[Completion]:
        """One request, re-sent to another endpoint each time one fails it because of the server."""
        failed: dict[int, str] = {}  # endpoint index -> what happened to this request there
        previous: Endpoint | None = None
        while True:
            endpoint = self._acquire(failed)
            if endpoint is None:
                return error_completions(r, self._all_down(failed))
            if previous is not None:
                with self._cond:
                    previous.rerouted += 1
            try:
                [result] = endpoint.engine.generate_results([r])
            except Exception as e:  # one bad request never fails the batch
                logger.debug("engine pool: request failed at %s", endpoint.url, exc_info=True)
                return error_completions(
                    r, f"engine pool: request to {endpoint.url} failed: {type(e).__name__}: {e}"
                )
            finally:
                self._release(endpoint)
            if result.fault is None or (result.fault == "timeout" and self._check(endpoint)):
                return result.completions
            why = result.completions[0].error if result.completions else result.fault
            failed[endpoint.index] = why or result.fault
            self._mark_down(endpoint, why or result.fault)
            previous = endpoint

    def _acquire(self, failed: dict[int, str]) -> Endpoint | None:
        """The live endpoint with the fewest outstanding requests among those that have not failed
        this request (its slot taken), waiting for a free slot; None when none is up, even after a
        health check of the down ones."""
        since: float | None = None  # when this request found no endpoint up
        while True:
            self._check_due(failed, since)
            with self._cond:
                candidates = [e for e in self._endpoints if e.index not in failed]
                up = [e for e in candidates if e.up]
                free = [e for e in up if e.outstanding < e.capacity]
                if free:
                    best = min(free, key=lambda e: (e.outstanding, e.index))
                    best.outstanding += 1
                    best.requests += 1
                    return best
                if not up:
                    if since is None:
                        since = time.monotonic()  # check every down endpoint now, then decide
                        continue
                    if all(e.last_check >= since and not e.checking for e in candidates):
                        return None
                self._cond.wait(_WAIT_S)

    def _release(self, endpoint: Endpoint) -> None:
        with self._cond:
            endpoint.outstanding -= 1
            self._cond.notify_all()

    def _mark_down(self, endpoint: Endpoint, why: str) -> None:
        with self._cond:
            endpoint.failures += 1
            newly = endpoint.up
            if newly:
                endpoint.up = False
                endpoint.marked_down += 1
                endpoint.last_check = time.monotonic()
            self._cond.notify_all()
        if newly:
            self._note(
                f"engine pool: {endpoint.url} is down ({shorten(why, 200)}); its requests go to the other "
                f"endpoints, and a health check (GET /models) after {self.cooldown_s:g}s brings it back"
            )

    def _check_due(self, failed: dict[int, str], since: float | None) -> None:
        """Health-check the down endpoints whose cool-down is over (all of them not checked since
        ``since``, when a request found none up); one thread checks an endpoint at a time."""
        now = time.monotonic()
        with self._cond:
            due = [
                e
                for e in self._endpoints
                if not e.up
                and not e.checking
                and e.index not in failed
                and (now - e.last_check >= self.cooldown_s or (since is not None and e.last_check < since))
            ]
            for e in due:
                e.checking = True
        for e in due:
            self._check(e)

    def _check(self, endpoint: Endpoint) -> bool:
        """One health check (``GET /models``): True when the endpoint answers; a down endpoint that
        answers is up again (an up one that does not is marked down by its caller)."""
        with self._cond:
            endpoint.checking = True
        ok = endpoint.engine.healthy()
        with self._cond:
            endpoint.checking = False
            endpoint.health_checks += 1
            endpoint.last_check = time.monotonic()
            back = ok and not endpoint.up
            if back:
                endpoint.up = True
            self._cond.notify_all()
        if back:
            self._note(f"engine pool: {endpoint.url} answers its health check again; requests go to it again")
        return ok

    def _note(self, message: str) -> None:
        with self._cond:
            self._notes.append(message)
        logger.warning("%s", message)

    def _all_down(self, failed: dict[int, str]) -> str:
        parts = []
        for e in self._endpoints:
            what = failed.get(e.index)
            parts.append(f"{e.url}: {shorten(what, 200) if what else 'down (its health check failed)'}")
        return (
            f"engine pool: no endpoint could answer this request ({'; '.join(parts)}): start the servers "
            "or fix the URLs in the engine spec 'openai:URL#MODEL,URL#MODEL'"
        )
