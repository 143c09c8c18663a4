"""OpenAI chat bodies in and out.

In: the last ``user`` message is the question (its text parts joined); its ``image_url`` parts (and
those of earlier user messages) are the problem's images: ``data:`` URLs are written to the
request's temporary folder; a local path or ``file://`` URL only when the server allows local
images. Out: the answer is ``content``, the chosen path's stages / steps ``reasoning_content``, and
``usage`` counts all compute of the Trace (policy, scorer and judge tokens).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from slowthink.images import check_image, image_format
from slowthink.types import Problem, SlowthinkError, Trace


class RequestError(SlowthinkError):
    """A request the server refuses: ``status`` (400, 401, 404, 413, 429, 504) and an OpenAI error ``type``."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None
    ):
        super().__init__(message)
        self.status, self.type, self.code = status, type_, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.type, "param": None, "code": self.code}}


def bad_request(message: str) -> RequestError:
    return RequestError(400, message)


@dataclass
class ChatRequest:
    """The parts of a chat completion request the server reads."""

    model: str
    problem: Problem
    stream: bool = False
    include_usage: bool = False
    overrides: dict[str, Any] | None = None


def _text_and_images(content: Any, where: str) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of parts")
    texts, urls = [], []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if not isinstance(url, str) or not url:
                raise bad_request(f"{where}.content[{i}].image_url.url must be a non-empty string")
            urls.append(url)
        else:
            raise bad_request(f"{where}.content[{i}] must be a text or image_url part")
    return "\n".join(texts), urls


def save_image(url: str, folder: Path, index: int, allow_local: bool) -> str:
    """The file path of an image given as a ``data:`` URL (written to ``folder``) or, when
    ``allow_local``, a local path / ``file://`` URL (checked); anything else is a 400."""
    if url.startswith("data:"):
        head, sep, data = url.partition(",")
        if not sep or not head.endswith(";base64"):
            raise bad_request("an image data URL must be data:image/...;base64,<data>")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("an image data URL holds invalid base64") from None
        suffix = image_format(raw)
        if suffix is None:
            raise bad_request("an image data URL does not hold an image (PNG, JPEG, GIF or WebP)")
        path = folder / f"image{index}.{suffix}"
        path.write_bytes(raw)
        return str(path)
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        raise bad_request("image URLs are not fetched: send the image as a data:image/...;base64 URL")
    if parsed.scheme not in ("", "file"):
        raise bad_request(f"unsupported image URL scheme '{parsed.scheme}': send a data: URL")
    if not allow_local:
        raise bad_request(
            "local image paths are refused by this server: send a data: URL (or start it with --allow-local-images)"
        )
    path = unquote(parsed.path) if parsed.scheme == "file" else url
    try:
        return check_image(path, fix="check the image path in the request")
    except SlowthinkError as e:
        raise bad_request(str(e)) from None


def content_id(question: str, images: list[str]) -> str:
    """A problem id from the question and the images' bytes.

    >>> content_id("What is 2 + 3?", [])
    'q-1ea26256ebae'
    """
    h = hashlib.sha256(question.encode())
    for path in images:
        h.update(b"\0" + Path(path).read_bytes())
    return "q-" + h.hexdigest()[:12]


def parse_chat(body: Any, folder: Path, allow_local_images: bool) -> ChatRequest:
    """A chat completion body as a :class:`ChatRequest` (images saved under ``folder``); bad bodies are 400s."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("'model' must be a non-empty string (see GET /v1/models)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of {role, content} objects")
    question, urls = None, []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in (
            "system",
            "user",
            "assistant",
            "developer",
            "tool",
        ):
            raise bad_request(f"messages[{i}] must be an object with a role (system, user, assistant)")
        if m["role"] != "user":
            continue
        text, found = _text_and_images(m.get("content"), f"messages[{i}]")
        question = text
        urls.extend(found)
    if question is None or not question.strip():
        raise bad_request("no user message with text: the last user message is the question")
    if body.get("n", 1) != 1:
        raise bad_request("'n' must be 1: pick the number of samples with the model name (e.g. majority?n=8)")
    overrides: dict[str, Any] = {}
    for key, kind in (
        ("seed", int),
        ("temperature", (int, float)),
        ("top_p", (int, float)),
        ("max_tokens", int),
    ):
        value = body.get(key)
        if key == "max_tokens" and value is None:
            value = body.get("max_completion_tokens")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind):
            raise bad_request(f"'{key}' must be a number")
        overrides[key] = value
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise bad_request("'stream_options' must be an object")
    images = [save_image(u, folder, i, allow_local_images) for i, u in enumerate(urls)]
    problem = Problem(id=content_id(question, images), question=question, images=images)
    return ChatRequest(model.strip(), problem, stream, bool(stream_options.get("include_usage")), overrides)


def usage(trace: Trace) -> dict[str, Any]:
    """OpenAI ``usage`` counting all compute: policy and scorer/judge prompt and generated tokens."""
    c = trace.compute
    prompt = c.prompt_tokens + c.scorer_prompt_tokens
    completion = c.generated_tokens + c.scorer_generated_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "completion_tokens_details": {"reasoning_tokens": completion},
    }


def extension(trace: Trace) -> dict[str, Any]:
    """The ``slowthink`` field of a response: the strategy, the full compute, the search's notes."""
    return {
        "strategy": trace.strategy,
        "format": trace.format,
        "answer": trace.answer,
        "compute": asdict(trace.compute),
        "nodes": len(trace.nodes),
        "notes": trace.notes,
    }


def completion_body(trace: Trace, model: str, rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": trace.answer or "",
                    "reasoning_content": trace.response,
                },
                "finish_reason": "stop",
            }
        ],
        "usage": usage(trace),
        "slowthink": extension(trace),
    }


def stream_chunk(rid: str, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` with one choice."""
    return {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def stream_end(trace: Trace, rid: str, model: str, include_usage: bool) -> list[dict[str, Any]]:
    """The chunks after the reasoning: the answer as ``content``, the finish reason, and (when the
    client asked with ``stream_options.include_usage``) a chunk with no choices holding ``usage``."""
    out = [stream_chunk(rid, model, {"content": trace.answer or ""}), stream_chunk(rid, model, {}, "stop")]
    if include_usage:
        last = stream_chunk(rid, model, {})
        last.update(choices=[], usage=usage(trace), slowthink=extension(trace))
        out.append(last)
    return out


def sse(payload: dict[str, Any]) -> str:
    """One server-sent event holding ``payload`` as JSON."""
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


__all__ = [
    "ChatRequest",
    "RequestError",
    "bad_request",
    "completion_body",
    "parse_chat",
    "save_image",
    "sse",
    "stream_chunk",
    "stream_end",
    "usage",
]
