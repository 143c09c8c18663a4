"""A scripted OpenAI-compatible teacher on 127.0.0.1 (stdlib HTTP, the engines' FlakyProxy) that
answers each request by rules of the test: chosen good and bad outputs for the error paths.

The real ``llama_cpp.server`` fixtures of tests/engines are shared from here too."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.engines.conftest import FlakyProxy, llama_server, smollm2_gguf  # noqa: F401  (shared fixtures)

Rule = Callable[[str, dict[str, Any]], str | tuple[str, str]]


def chat_body(texts: list[str], finish: str = "stop") -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": finish}
            for i, t in enumerate(texts)
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": sum(max(1, len(t) // 4) for t in texts)},
    }


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


@dataclass
class ScriptedTeacher:
    """``rule(prompt, body) -> text`` or ``(text, finish_reason)``; ``prompt`` is the text of every
    message joined. ``delay_s`` makes every reply slow. ``seen`` counts calls by a key the rule
    may use (``self.count(key)``)."""

    rule: Rule
    delay_s: float = 0.0
    seen: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str) -> int:
        """How many times ``key`` was seen before (and count this one)."""
        with self._lock:
            self.seen[key] += 1
            return self.seen[key] - 1

    def __call__(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        if method == "GET":
            return 200, {"object": "list", "data": [{"id": "teacher", "object": "model"}]}
        if self.delay_s:
            time.sleep(self.delay_s)
        prompt = "\n".join(text_of(m) for m in (body or {}).get("messages", []))
        out = self.rule(prompt, body or {})
        text, finish = (out, "stop") if isinstance(out, str) else out
        return 200, chat_body([text] * int((body or {}).get("n") or 1), finish)


@pytest.fixture
def scripted() -> Iterator[Callable[..., tuple[FlakyProxy, ScriptedTeacher, str]]]:
    """Factory: ``scripted(rule, delay_s=0, fail=[500], always=None)`` -> (proxy, teacher, engine spec)."""
    started: list[FlakyProxy] = []

    def make(rule: Rule, delay_s: float = 0.0, **kw: Any) -> tuple[FlakyProxy, ScriptedTeacher, str]:
        teacher = ScriptedTeacher(rule, delay_s)
        proxy = FlakyProxy(reply=teacher, models=["teacher"], **kw).start()
        started.append(proxy)
        return proxy, teacher, f"openai:{proxy.url}#teacher"

    yield make
    for p in started:
        p.stop()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)
