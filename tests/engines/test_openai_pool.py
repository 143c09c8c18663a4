"""Engine pools (``openai:URL1#M,URL2#M``): the spec grammar, least-outstanding dispatch,
re-routing, health checks and the all-down error on scripted local proxies, then a real pool of
llama.cpp servers with one killed mid-run (``@pytest.mark.server``)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from slowthink.engines import EngineSpec, engine_identity, load_engine, pool_spec
from slowthink.engines.openai import OpenAIEngine, OpenAIPool
from slowthink.evaluate.config import EvalConfig
from slowthink.types import Message, Request, SlowthinkError

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "prefix_mode": "continue"}


def echo(delay_s: float = 0.0, tag: str = ""):
    """A proxy ``reply``: answers a chat request with its user message (and ``tag``) after ``delay_s``."""

    def reply(method, path, body):
        if method == "GET":  # the health check
            return 200, {"object": "list", "data": [{"id": "m", "object": "model"}]}
        time.sleep(delay_s)
        text = body["messages"][-1]["content"] + tag
        return 200, {
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }

    return reply


def asks(k: int) -> list[Request]:
    return [Request([Message("user", f"q{i}")], max_tokens=4) for i in range(k)]


# -- spec grammar and identity ----------------------------------------------------------------------
class TestSpec:
    def test_pool_spec_forms(self):
        a, b = "http://h1:8000/v1", "http://h2:8000/v1"
        for spec in (
            f"openai:{a}#M,{b}#M,timeout_s=30",
            f"openai:{a},{b}#M,timeout_s=30",
            f"openai:{a}#M,timeout_s=30,{b}",
        ):
            s = EngineSpec.parse(spec)
            assert s.endpoints == ((a, "M"), (b, "M")) and dict(s.options) == {"timeout_s": 30}, spec
        # a model per endpoint (aliases of one model), no model at all (each server lists its own)
        assert EngineSpec.parse(f"openai:{a}#x,{b}#y").endpoints == ((a, "x"), (b, "y"))
        assert EngineSpec.parse(f"openai:{a},{b}").endpoints == ((a, None), (b, None))
        # one endpoint: the plain engine, as before
        assert EngineSpec.parse(f"openai:{a}#M,timeout_s=3") == EngineSpec(
            "openai", a, "M", (("timeout_s", 3),)
        )
        pool = load_engine(f"openai:{a}#M,{b}#M,cooldown_s=1,max_concurrency=3")
        assert isinstance(pool, OpenAIPool) and pool.cooldown_s == 1
        assert [(e.url, e.engine.model, e.capacity) for e in pool.endpoints] == [(a, "M", 3), (b, "M", 3)]
        assert isinstance(load_engine(f"openai:{a}#M,cooldown_s=1"), OpenAIEngine)

    @pytest.mark.parametrize(
        ("spec", "needle"),
        [
            ("openai:http://a/v1#m,b", "bad part 'b'"),
            ("openai:http://a/v1#m,http://a/v1#m", "listed twice"),
            ("openai:http://a/v1#m,http://b/v1#n,http://c/v1", "name the model on every endpoint"),
            ("openai:http://a/v1#m,http://b/v1#m,cooldown=2", "has no option 'cooldown'"),
        ],
    )
    def test_malformed_pool_spec_is_one_error_line(self, spec, needle):
        with pytest.raises(SlowthinkError, match=needle) as e:
            EngineSpec.parse(spec)
        assert "\n" not in str(e.value)

    def test_identity_is_the_model_not_the_servers(self):
        one = engine_identity("openai:http://a/v1#m")
        assert one == "openai#m"
        assert engine_identity("openai:http://b/v1#m,http://a/v1#m,timeout_s=3") == one
        assert engine_identity("openai:http://c/v1,http://a/v1,http://b/v1#m") == one
        assert engine_identity("openai:http://b/v1,http://a/v1") == engine_identity(
            "openai:http://a/v1,http://b/v1"
        )

    def test_yaml_list_is_one_pool(self):
        items = ["openai:http://a/v1#m,timeout_s=3", "openai:http://b/v1#m,timeout_s=3"]
        assert pool_spec(items) == "openai:http://a/v1#m,timeout_s=3,http://b/v1#m"
        cfg = EvalConfig(benchmark="gsm8k", engine=items)
        assert cfg.engine == "openai:http://a/v1#m,timeout_s=3,http://b/v1#m"
        assert (
            cfg.identity()["engine"]
            == EvalConfig(benchmark="gsm8k", engine="openai:http://c/v1#m").identity()["engine"]
        )
        with pytest.raises(SlowthinkError, match="not an openai spec"):
            EvalConfig(benchmark="gsm8k", engine=["openai:http://a/v1#m", "llamacpp"])
        with pytest.raises(SlowthinkError, match="given twice"):
            EvalConfig(
                benchmark="gsm8k",
                engine=["openai:http://a/v1#m,timeout_s=3", "openai:http://b/v1#m,timeout_s=4"],
            )

    def test_a_run_moves_between_a_server_and_a_pool(self, tmp_path):
        from slowthink.evaluate.config import plan_jobs
        from slowthink.evaluate.runner import prepare_out

        def config(engine):
            return EvalConfig(benchmark="gsm8k", engine=engine, out=str(tmp_path), strategies=["direct"])

        old = config("openai:http://a/v1#m")
        prepare_out(old, plan_jobs(old))
        (tmp_path / "records.jsonl").write_text("{}\n")
        stored = json.loads((tmp_path / "config.json").read_text())
        stored["identity"]["engine"] = "openai:http://a/v1#m"  # as written before engine pools
        (tmp_path / "config.json").write_text(json.dumps(stored))
        pool = config(["openai:http://b/v1#m", "openai:http://c/v1#m"])
        prepare_out(pool, plan_jobs(pool))  # no settings mismatch
        other = config("openai:http://a/v1#other-model")
        with pytest.raises(SlowthinkError, match="other settings"):
            prepare_out(other, plan_jobs(other))


# -- dispatch and failures on scripted proxies --------------------------------------------------------
class TestDispatch:
    def test_least_outstanding_first(self, flaky_proxy):
        slow, fast = flaky_proxy(reply=echo(1.0, "|slow")), flaky_proxy(reply=echo(0.02, "|fast"))
        pool = OpenAIPool([(slow.url, "m"), (fast.url, "m")], max_concurrency=4, **FAST)
        out = pool.generate(asks(12))
        assert [cs[0].text.split("|")[0] for cs in out] == [f"q{i}" for i in range(12)]  # back in order
        # the first 8 go out 4 + 4; the slow server holds its 4 while the fast one takes the rest
        assert len(slow.generation_attempts()) == 4 and len(fast.generation_attempts()) == 8
        assert slow.max_in_flight <= 4 and fast.max_in_flight <= 4
        per = pool.stats["endpoints"]
        assert (per[slow.url]["requests"], per[fast.url]["requests"]) == (4, 8)
        assert pool.stats["http_requests"] == 12 and pool.stats["rerouted"] == 0

    def test_ties_go_to_the_first_listed(self, flaky_proxy):
        a, b = flaky_proxy(reply=echo(0.3, "|a")), flaky_proxy(reply=echo(0.3, "|b"))
        pool = OpenAIPool([(a.url, "m"), (b.url, "m")], max_concurrency=1, **FAST)
        [[c]] = pool.generate(asks(1))
        assert c.text == "q0|a"
        out = pool.generate(asks(2))  # one each: the least outstanding is the other one
        assert sorted(cs[0].text.split("|")[1] for cs in out) == ["a", "b"]

    def test_dead_endpoint_requests_are_rerouted_not_lost_nor_doubled(self, flaky_proxy, unreachable_url):
        live = flaky_proxy(reply=echo(0.05))
        pool = OpenAIPool([(unreachable_url, "m"), (live.url, "m")], max_concurrency=2, max_retries=1, **FAST)
        out = pool.generate(asks(6))
        assert [cs[0].text for cs in out] == [f"q{i}" for i in range(6)] and all(cs[0].ok for cs in out)
        assert len(live.generation_attempts()) == 6  # each request answered once
        dead = pool.stats["endpoints"][unreachable_url]
        assert dead["failures"] >= 1 and dead["rerouted"] == dead["failures"] and dead["marked_down"] == 1
        assert pool.stats["rerouted"] == dead["rerouted"]
        assert any(unreachable_url in n and "is down" in n for n in pool.notes)
        # the next call does not try it again within the cool-down
        pool.generate(asks(2))
        assert pool.stats["endpoints"][unreachable_url]["requests"] == dead["requests"]

    def test_5xx_after_retries_reroutes_but_4xx_does_not(self, flaky_proxy):
        failing, good = flaky_proxy(always=503), flaky_proxy(reply=echo())
        pool = OpenAIPool([(failing.url, "m"), (good.url, "m")], max_concurrency=1, max_retries=1, **FAST)
        [[c]] = pool.generate(asks(1))
        assert c.ok and c.text == "q0" and len(failing.generation_attempts()) == 2  # its own retries first
        assert pool.stats["endpoints"][failing.url]["rerouted"] == 1

        refusing, good = flaky_proxy(always=400), flaky_proxy(reply=echo())
        pool = OpenAIPool([(refusing.url, "m"), (good.url, "m")], max_concurrency=1, **FAST)
        [[c]] = pool.generate(asks(1))
        assert c.finish_reason == "error" and "HTTP 400" in c.error  # the request's own fault: kept
        assert not good.generation_attempts() and pool.stats["rerouted"] == 0

    def test_health_check_brings_an_endpoint_back(self, flaky_proxy):
        flaky, good = flaky_proxy(reply=echo(0.0, "|a"), fail=[503, 503]), flaky_proxy(reply=echo(0.0, "|b"))
        pool = OpenAIPool(
            [(flaky.url, "m"), (good.url, "m")], max_concurrency=1, max_retries=1, cooldown_s=0, **FAST
        )
        [[c]] = pool.generate(asks(1))
        assert c.text == "q0|b" and not pool.endpoints[0].up
        [[c]] = pool.generate(asks(1))  # cool-down over: GET /models answers, so it is back
        assert c.text == "q0|a" and pool.endpoints[0].up
        per = pool.stats["endpoints"][flaky.url]
        assert per["marked_down"] == 1 and per["health_checks"] == 1
        assert any("answers its health check again" in n for n in pool.notes)

    def test_timeout_on_a_healthy_server_is_the_request_s_own(self, flaky_proxy):
        stalling = flaky_proxy(reply=echo(), inject=["stall", "stall"], stall_s=1.0)
        good = flaky_proxy(reply=echo())
        pool = OpenAIPool([(stalling.url, "m"), (good.url, "m")], max_concurrency=1, timeout_s=0.3, **FAST)
        [[c]] = pool.generate(asks(1))
        assert c.finish_reason == "error" and "ReadTimeout" in c.error
        assert pool.endpoints[0].up and not good.generation_attempts()

    def test_a_hung_server_fails_its_health_check_and_is_left(self, flaky_proxy):
        hung = flaky_proxy(reply=echo(), inject=["stall"] * 3, inject_paths=None, stall_s=2.0)
        good = flaky_proxy(reply=echo())
        pool = OpenAIPool(
            [(hung.url, "m"), (good.url, "m")],
            max_concurrency=1,
            timeout_s=0.3,
            connect_timeout_s=0.3,
            **FAST,
        )
        t0 = time.monotonic()
        [[c]] = pool.generate(asks(1))  # two read timeouts, then GET /models stalls too
        assert c.ok and c.text == "q0" and time.monotonic() - t0 < 2.0
        assert not pool.endpoints[0].up and pool.stats["endpoints"][hung.url]["rerouted"] == 1

    def test_every_endpoint_down_is_one_clear_error(self, unreachable_url):
        other = unreachable_url.replace("/v1", "/other/v1")
        pool = OpenAIPool([(unreachable_url, "m"), (other, "m")], max_retries=0, **FAST)
        t0 = time.monotonic()
        out = pool.generate([Request([Message("user", "x")], n=2), Request([Message("user", "y")])])
        assert time.monotonic() - t0 < 10 and [len(cs) for cs in out] == [2, 1]
        for c in (c for cs in out for c in cs):
            assert c.finish_reason == "error" and c.error.startswith("engine pool: no endpoint could answer")
            assert unreachable_url in c.error and other in c.error and "start the servers" in c.error


# -- a real pool of llama.cpp servers ---------------------------------------------------------------
QUESTIONS = [
    f"What is {a} plus {b}? Answer with the number only." for a, b in [(2, 3), (7, 5), (10, 4), (6, 6)]
]


def greedy_batch(k: int) -> list[Request]:
    """Greedy requests, a few tokens each: half plain questions, half continued prefixes."""
    out = []
    for i in range(k):
        if i % 2:
            count = [Message("user", "Count from 1 to 10, separated by commas.")]
            out.append(Request(count, prefix=", ".join(str(j) for j in range(1, 2 + i % 5)) + ",", stop=[","],
                               temperature=0, max_tokens=4, seed=i))  # fmt: skip
        else:
            out.append(Request([Message("user", QUESTIONS[i % 4])], temperature=0, max_tokens=4, seed=i))
    return out


@pytest.mark.server
def test_pool_of_llama_servers_survives_a_killed_server(llama_servers):
    servers = llama_servers(3)
    opts = {"max_concurrency": 1, "max_retries": 1, "backoff_base_s": 0.05, "backoff_max_s": 0.2}
    batches = [greedy_batch(12)[i : i + 4] for i in range(0, 12, 4)]
    with OpenAIEngine(servers[0].base_url, servers[0].model, **opts) as single:
        expected = [[c.text for c in cs] for batch in batches for cs in single.generate(batch)]
    assert all(t for cs in expected for t in cs)

    spec = "openai:" + ",".join(f"{s.base_url}#{s.model}" for s in servers) + ",cooldown_s=60"
    pool = load_engine(spec, **opts)
    victim = pool.endpoints[2]

    def kill_after_two_requests() -> None:
        deadline = time.monotonic() + 60
        while victim.requests < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        servers[2].process.kill()

    killer = threading.Thread(target=kill_after_two_requests, daemon=True)
    killer.start()
    t0 = time.monotonic()
    got = [[c.text for c in cs] for batch in batches for cs in pool.generate(batch)]  # one call per batch
    killer.join(timeout=5)
    assert servers[2].process.poll() is not None  # it was killed during the run
    assert got == expected  # every request answered once, as by one server
    stats = pool.stats
    assert stats["endpoints"][victim.url]["marked_down"] == 1 and stats["rerouted"] >= 1
    assert sum(e["requests"] for e in stats["endpoints"].values()) == 12 + stats["rerouted"]
    assert time.monotonic() - t0 < 120
    pool.close()


@pytest.mark.server
def test_eval_on_a_yaml_pool_with_a_server_killed_between_batches(llama_servers, tmp_path):
    from slowthink.evaluate import EvalConfig, run_eval

    servers = llama_servers(2)
    options = {
        "max_concurrency": 1,
        "max_retries": 1,
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.2,
        "cooldown_s": 60,
    }

    def run(engine, out, on_batch=None):
        cfg = EvalConfig(
            benchmark="reasoning-gym:chain_sum",
            benchmark_options={
                "size": 8,
                "seed": 1234,
                "min_terms": 2,
                "max_terms": 2,
                "min_digits": 1,
                "max_digits": 1,
            },
            strategies=["quick"],  # prefix continuation: each endpoint probes its own prefix mode
            max_depth=1,
            ns=[1],
            seeds=1,
            max_tokens=24,
            batch_size=4,
            engine=engine,
            engine_options=options,
            out=str(tmp_path / out),
        )
        result = run_eval(cfg, progress=False, plots=False, on_batch=on_batch)
        recs = [json.loads(line) for line in (tmp_path / out / "records.jsonl").read_text().splitlines()]
        return cfg, result, recs

    specs = [f"openai:{s.base_url}#{s.model}" for s in servers]
    single_cfg, _, single = run(specs[0], "single")
    batches = []

    def kill_after_first_batch(job, records):
        batches.append(len(records))
        if len(batches) == 1:
            servers[1].process.kill()

    cfg, result, recs = run(specs, "pool", kill_after_first_batch)
    assert batches == [4, 4] and servers[1].process.poll() is not None
    assert result.errors == 0 and len(recs) == 8 and all(r["error"] is None for r in recs)
    assert [r["trace"]["answer"] for r in recs] == [r["trace"]["answer"] for r in single]
    assert cfg.identity() == single_cfg.identity()  # the same model: the run could move between them
    stats = json.loads((tmp_path / "pool" / "metrics.json").read_text())["engine_stats"]
    assert stats["rerouted"] >= 1 and stats["endpoints"][servers[1].base_url]["marked_down"] == 1
