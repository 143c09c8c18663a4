"""The server's parts in process: model names, request parsing, the batcher."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time

import pytest
from PIL import Image

from slowthink.serve import Batcher, ServeConfig, Service, parse_model
from slowthink.serve.app import Submission
from slowthink.serve.messages import RequestError, completion_body, parse_chat, usage
from slowthink.types import Compute, Node, SlowthinkError, Trace
from tests.evaluate.eval_doubles import ScriptedEngine


def png_data_url(width: int = 7, height: int = 3) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_a_model_name_selects_a_strategy_and_its_settings() -> None:
    m = parse_model("step_beam?n=4&beam=2&scorer=prm:/models/prm&format=atomic")
    assert (m.strategy, dict(m.options), m.scorer, m.format) == (
        "step_beam",
        {"n": 4, "beam": 2},
        "prm:/models/prm",
        "atomic",
    )
    assert (m.config.n, m.config.beam) == (4, 2)
    assert parse_model("quick").scorer_spec() is None
    assert parse_model("step_beam?n=4").scorer_spec() == "judge"  # a strategy needing a scorer gets the judge
    assert parse_model("majority?n=8") == parse_model("majority?n=8")  # the coalescing key
    assert parse_model("majority?n=8").with_options(seed=3) != parse_model("majority?n=8")


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("nope", "unknown strategy 'nope'"),
        ("majority?m=2", "has no option(s) m"),
        ("majority?n=0", "n must be >= 1"),
        ("majority?n=2&n=3", "gives 'n' twice"),
        ("majority?n", "bad model name"),
    ],
)
def test_a_bad_model_name_is_one_line_naming_it(name: str, says: str) -> None:
    with pytest.raises(SlowthinkError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_model(name)


def test_the_service_refuses_unknown_models_and_unmet_needs_with_404() -> None:
    service = Service(ServeConfig(models=("quick",)), engine=ScriptedEngine())
    with pytest.raises(RequestError) as e:
        service.model("best_of_n?select=judge&scorer=symbolic")  # symbolic cannot compare
    assert e.value.status == 404 and e.value.code == "model_not_found" and "compare" in str(e.value)
    with pytest.raises(RequestError):
        Service(ServeConfig(models=("quick", "oops")), engine=ScriptedEngine())


def test_a_chat_body_becomes_a_problem_with_its_images(tmp_path) -> None:
    body = {
        "model": "quick",
        "seed": 5,
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is"},
                    {"type": "text", "text": "in the picture?"},
                    {"type": "image_url", "image_url": {"url": png_data_url()}},
                ],
            },
        ],
    }
    chat = parse_chat(body, tmp_path, allow_local_images=False)
    assert chat.problem.question == "What is\nin the picture?"
    assert chat.overrides == {"seed": 5}
    assert len(chat.problem.images) == 1 and Image.open(chat.problem.images[0]).size == (7, 3)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([], "JSON object"),
        ({"messages": [{"role": "user", "content": "x"}]}, "'model'"),
        ({"model": "quick", "messages": []}, "'messages'"),
        ({"model": "quick", "messages": [{"role": "user", "content": 3}]}, "string or a list"),
        ({"model": "quick", "messages": [{"role": "assistant", "content": "x"}]}, "no user message"),
        ({"model": "quick", "messages": [{"role": "user", "content": "x"}], "n": 2}, "'n' must be 1"),
        ({"model": "quick", "messages": [{"role": "user", "content": "x"}], "seed": "a"}, "'seed'"),
        (
            {
                "model": "quick",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                            {"type": "text", "text": "q"},
                        ],
                    }
                ],
            },
            "does not hold an image",
        ),
        (
            {
                "model": "quick",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "/etc/hostname"}},
                            {"type": "text", "text": "q"},
                        ],
                    }
                ],
            },
            "--allow-local-images",
        ),
        (
            {
                "model": "quick",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                            {"type": "text", "text": "q"},
                        ],
                    }
                ],
            },
            "not fetched",
        ),
    ],
)
def test_a_malformed_chat_body_is_a_400_naming_the_field(tmp_path, body, says: str) -> None:
    with pytest.raises(RequestError, match=says) as e:
        parse_chat(body, tmp_path, allow_local_images=False)
    assert e.value.status == 400 and e.value.body()["error"]["type"] == "invalid_request_error"


def test_usage_counts_policy_and_scorer_tokens() -> None:
    trace = Trace(
        "p",
        "stage_beam",
        "stages",
        nodes=[Node(0, None), Node(1, 0, "Step 1: x\n", 1, "step")],
        path=[0, 1],
        answer="4",
        compute=Compute(
            prompt_tokens=100, generated_tokens=20, scorer_prompt_tokens=50, scorer_generated_tokens=5
        ),
    )
    assert usage(trace)["prompt_tokens"] == 150 and usage(trace)["completion_tokens"] == 25
    body = completion_body(trace, "stage_beam?n=2", "id1")
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "Step 1: x\n",
    }


def test_the_batcher_coalesces_a_window_into_one_call_on_one_thread() -> None:
    calls: list[tuple[str, list[int], str]] = []

    def run(key, items):
        calls.append((key, list(items), threading.current_thread().name))
        return [i * 10 for i in items]

    async def main():
        batcher = Batcher(run, window_s=0.05, max_batch=8)
        results = await asyncio.gather(*(batcher.submit("a" if i < 10 else "b", i) for i in range(12)))
        batcher.close()
        return results, batcher.batches

    results, batches = asyncio.run(main())
    assert results == [i * 10 for i in range(12)]
    # key a: 10 items with max_batch 8 -> 8 + 2; key b: 2 items -> 1 batch
    assert sorted(len(items) for _, items, _ in calls) == [2, 2, 8] and batches == 3
    assert {thread for *_, thread in calls} == {calls[0][2]} and calls[0][2].startswith("slowthink-search")


def test_a_failing_batch_fails_each_of_its_requests() -> None:
    def run(key, items):
        raise RuntimeError("engine down")

    async def main():
        batcher = Batcher(run, window_s=0.01)
        out = await asyncio.gather(batcher.submit("k", 1), batcher.submit("k", 2), return_exceptions=True)
        batcher.close()
        return out

    assert [str(e) for e in asyncio.run(main())] == ["engine down", "engine down"]


def test_requests_arriving_during_a_search_join_the_next_batch() -> None:
    sizes: list[int] = []

    def run(key, items):
        sizes.append(len(items))
        time.sleep(0.2)
        return list(items)

    async def main():
        batcher = Batcher(run, window_s=0.01)
        first = asyncio.ensure_future(batcher.submit("k", 0))
        await asyncio.sleep(0.05)  # the first batch is running: five more arrive, spread out
        later = []
        for i in range(1, 6):
            later.append(asyncio.ensure_future(batcher.submit("k", i)))
            await asyncio.sleep(0.02)
        out = await asyncio.gather(first, *later)
        batcher.close()
        return out

    assert asyncio.run(main()) == [0, 1, 2, 3, 4, 5]
    assert sizes == [1, 5]


def test_the_same_question_twice_in_one_batch_gets_two_searches(tmp_path) -> None:
    service = Service(
        ServeConfig(models=("majority?n=2",), batch_window_ms=50), engine=ScriptedEngine(p_right=1.0)
    )

    async def main():
        chats = [
            parse_chat(
                {"model": "majority?n=2", "messages": [{"role": "user", "content": "What is 2 + 2?"}]},
                tmp_path,
                False,
            )
            for _ in range(2)
        ]
        choices = [service.prepare(c) for c in chats]
        out = await asyncio.gather(
            *(service.answer(ch, Submission(c.problem)) for ch, c in zip(choices, chats))
        )
        service.batcher.close()
        return out

    a, b = asyncio.run(main())
    assert a.answer == b.answer == "4" and a.compute.batch_size == 2
    assert a.problem_id != b.problem_id and b.problem_id == a.problem_id + "-2"
