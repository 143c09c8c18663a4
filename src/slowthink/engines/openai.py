"""``openai``: any OpenAI-compatible HTTP server (vLLM, SGLang, llama.cpp server, OpenAI).

Spec: ``openai:http://127.0.0.1:8000/v1#model-name`` (the model may be left out when the server
serves one model: it is read from ``/v1/models``). There is no default endpoint.

``generate`` is synchronous but sends its requests concurrently (threads, at most
``max_concurrency`` in flight) so the server can batch them.

**Prefix continuation** (the assistant turn is opened and ``Request.prefix`` continued byte for
byte) has three modes, ``prefix_mode``:

* ``continue``: ``/chat/completions`` with the prefix as a final assistant message and
  ``continue_final_message: true, add_generation_prompt: false`` (vLLM and SGLang). Images work.
* ``completions``: the engine renders the chat template itself and calls ``/completions`` with
  ``prompt = rendered chat + prefix``. The template comes from ``chat_template`` (a ``.gguf`` file,
  a Hugging Face folder or ``tokenizer_config.json``, a ``.jinja`` file, the name ``chatml``, or the
  Jinja text itself); when not given, from the server (llama.cpp's ``/props``) or, when the served
  model id is a local ``.gguf`` path (llama-cpp-python's server), from that file. A leading BOS
  token is stripped from the rendered text because servers add it. Text only: a request with an
  image and a prefix fails (use ``continue``); an image request without prefix goes to the chat
  endpoint.
* ``auto`` (default): probes once (four 1-token requests) when a prefix first shows up. ``continue``
  is used when the chat endpoint honours it, which is checked by token counts (a continued prompt
  is the plain prompt plus the prefix; an ignored flag adds an end-of-turn and a new assistant
  header), else ``completions``. The llama-cpp-python server ignores ``continue_final_message``
  (its chat handler always closes the last message and adds a generation prompt) so ``auto``
  picks ``completions`` there, which continues exactly. Only an answer decides: a 400/404/405/
  422/501 rejecting the extension or the endpoint. A probe (or ``/props`` template fetch) that
  fails after its retries decides nothing: that call's requests with a prefix fail alone with
  the reason (requests without prefix go on), a warning is logged once and kept in
  ``engine.notes``, and the next call probes again.

**Stop strings** are kept in ``Completion.text``. Servers strip them, so the matched one is
recovered, in this order: (1) the text already holds a stop (we ask for
``include_stop_str_in_output`` (vLLM) and ``no_stop_trim`` (SGLang)): cut after the earliest;
(2) the choice names it: ``stop_reason`` (vLLM), ``matched_stop`` (SGLang), ``stopping_word``
(llama.cpp); a non-string value there means EOS or a stop token, so no stop string; (3) token
strings from logprobs (when asked) run past the text: the stop they hold; (4) servers that say
nothing (llama-cpp-python): the generated token count from ``usage`` is compared with the server's
tokenizer (``/extras/tokenize/count`` or ``/tokenize``): more tokens than the text needs means a
stop string was generated and trimmed; with several stops, the one whose ``text + stop`` count is
closest to the usage count wins; when counts tie, a greedy peek of a few tokens on ``/completions``
from the text says which stop the model continues with (exact for greedy requests), else list
order. This last step is a heuristic (a non-canonical tokenization can fool it); when the server
offers no tokenizer (both endpoints answer 404/405/501), ``stop_str`` stays ``None`` and a warning
is logged once. A tokenizer probe or count that fails otherwise (after its retries) leaves that
one completion's ``stop_str`` unresolved (``stats["unresolved_stops"]``, warned once) and the next
completion asks again; nothing is switched off for the run. ``engine.stats`` counts the extra
tokenize and peek requests.

**n**: sent as is (a greedy request, ``temperature == 0``, is sampled once and copied); when the
server returns fewer choices (llama.cpp drops ``n``) the rest are filled with extra single
requests, sample ``k`` using ``seed + k``, and later calls split ``n`` up front; a warning is
logged and kept in ``engine.notes``. Never fewer than ``n`` completions.

**Read timeouts** are retried once (within ``max_retries``): a stalled connection (a proxy or load
balancer hiccup) is a passing fault, but a generation that is merely slower than ``timeout_s``
would time out again, so a second timeout of the same request fails it; raise ``timeout_s``
then. A retried timeout can cost up to ``2 * timeout_s``.

**Token counts** come from ``usage`` of each HTTP request: ``prompt_tokens`` is split evenly over
its choices and ``completion_tokens`` in proportion to each choice's token count (from logprobs)
or text length, so the sums over completions equal what the server reported.

**Errors**: every request (generation, set-up probes, ``/props``, tokenize/count, peek; not the
model listing that only words an error message) is retried up to ``max_retries`` times with capped exponential backoff and jitter (``Retry-After`` honoured,
capped by ``backoff_max_s``) on 429, 5xx, connection errors (a connection closed without a reply
included), one read timeout, and a **malformed reply**: HTTP 200 whose body is not JSON, is JSON
but not an object, or lacks what was asked for (a generation without a non-empty ``choices``
list of objects holding ``message.content`` / ``text``; see :func:`reply_problem`). Any other 4xx
fails at once. A request that still fails yields ``finish_reason='error'`` completions naming the
engine, URL, what happened (e.g. "malformed reply after 5 attempts: HTTP 200 but the body has no
'choices' list (body: '...')") and the fix; the rest of the batch completes. ``engine.stats``
counts ``retries`` (one per backoff sleep), ``malformed_replies``, ``read_timeouts``,
``probe_failures`` and ``unresolved_stops``; the eval runner copies it into ``metrics.json``. The
API key is read from the environment variable *named* by ``api_key_env``; it is never logged,
shown in ``repr`` or written into completions. Without a model name, a ``/models`` listing that
still fails errors that call's requests (nothing can be sent without a model) and the next call
lists again; naming the model (``#MODEL``) avoids the listing.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import logging
import math
import mimetypes
import os
import random
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from slowthink.engines.base import apply_stop, check_images, error_completions
from slowthink.types import Completion, Message, Request, SlowthinkError

logger = logging.getLogger(__name__)

PrefixMode = Literal["auto", "continue", "completions"]
PREFIX_MODES: tuple[str, ...] = ("auto", "continue", "completions")

#: Server-specific request fields (vLLM / SGLang); dropped for good if the server rejects them.
EXTENSION_FIELDS: tuple[str, ...] = (
    "continue_final_message",
    "add_generation_prompt",
    "include_stop_str_in_output",
    "no_stop_trim",
)
#: Choice fields that name the matched stop (vLLM, SGLang, llama.cpp).
STOP_REASON_FIELDS: tuple[str, ...] = ("stop_reason", "matched_stop", "stopping_word")
#: Text the ``auto`` probe continues; long enough that a closed turn shows in the token counts.
_PROBE_PREFIX = " The quick brown fox jumps over the lazy dog"
_PROBE_MESSAGES = [{"role": "user", "content": "Hi"}]
_MAX_ERROR_BODY = 300
_IMAGE_CACHE_SIZE = 64

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
#: Named chat templates accepted by ``chat_template``.
NAMED_TEMPLATES: dict[str, str] = {"chatml": CHATML_TEMPLATE}


# -- options --------------------------------------------------------------------------------------
@dataclass
class OpenAIOptions:
    """Options of :class:`OpenAIEngine` (CLI/YAML engine options map 1:1 to these fields)."""

    base_url: str
    """Server base URL, e.g. ``http://127.0.0.1:8000/v1``. A URL without a path gets ``/v1``."""
    model: str | None = None
    """Model name sent with every request; ``None``: the server's only model from ``/v1/models``."""
    api_key_env: str | None = None
    """*Name* of the environment variable holding the API key (sent as a Bearer token); ``None``: no key."""
    prefix_mode: str = "auto"
    """How an assistant prefix is continued: ``auto`` (probe once), ``continue``, ``completions``."""
    chat_template: str | None = None
    """Chat template for ``completions`` mode: ``.gguf``, HF folder, ``tokenizer_config.json``, ``.jinja``, ``chatml`` or Jinja text."""
    supports_images: bool = True
    """Whether the served model takes images (servers differ; set False for a text-only model)."""
    max_concurrency: int = 8
    """HTTP requests in flight at once (>= 1); the server batches concurrent requests."""
    timeout_s: float = 600.0
    """Read/write timeout of one HTTP request, seconds (> 0). A read timeout is retried once."""
    connect_timeout_s: float = 10.0
    """Connect timeout, seconds (> 0)."""
    max_retries: int = 4
    """Retries after the first attempt on 429, 5xx, connection errors, malformed replies and one read timeout (>= 0)."""
    backoff_base_s: float = 0.5
    """First backoff delay, seconds (>= 0); doubles each retry, with jitter."""
    backoff_max_s: float = 30.0
    """Cap on one backoff delay (also caps ``Retry-After``), seconds (>= 0)."""
    server_extensions: bool = True
    """Send the vLLM/SGLang fields (continue_final_message, include_stop_str_in_output, no_stop_trim); turned off automatically when the server rejects them."""
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Extra JSON fields added to every generation request, never replacing the engine's own (e.g. ``{"top_k": 0, "min_p": 0, "repeat_penalty": 1}`` for plain sampling on llama.cpp)."""

    def __post_init__(self) -> None:
        if not self.base_url or not isinstance(self.base_url, str):
            raise SlowthinkError(
                "openai engine needs the server URL: use 'openai:http://127.0.0.1:8000/v1#model-name'"
            )
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SlowthinkError(
                f"openai engine: base URL '{self.base_url}' is not an http(s) URL: "
                "use e.g. 'openai:http://127.0.0.1:8000/v1#model-name'"
            )
        url = self.base_url.rstrip("/")
        if parts.path in ("", "/"):
            url += "/v1"
        self.base_url = url
        if self.prefix_mode not in PREFIX_MODES:
            raise ValueError(f"prefix_mode must be one of {PREFIX_MODES}, got {self.prefix_mode!r}")
        for name, low in (("max_concurrency", 1), ("max_retries", 0)):
            if int(getattr(self, name)) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)!r}")
        for name in ("timeout_s", "connect_timeout_s"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("backoff_base_s", "backoff_max_s"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.api_key_env is not None and not str(self.api_key_env).strip():
            raise ValueError("api_key_env must name an environment variable, got an empty string")


OPTION_NAMES: frozenset[str] = frozenset(f.name for f in fields(OpenAIOptions))


# -- pure helpers (unit-tested without a server) -------------------------------------------------
def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry ``attempt`` (0-based): ``min(max_s, base_s * 2**attempt)`` times a jitter
    factor in [0.5, 1] ("equal jitter"), so concurrent clients do not retry in lockstep.

    >>> 0.5 <= backoff_delay(0, 1.0, 30.0) <= 1.0
    True
    >>> backoff_delay(20, 1.0, 8.0) <= 8.0
    True
    """
    capped = min(max_s, base_s * (2.0 ** min(attempt, 60)))
    return capped * (0.5 + 0.5 * (rng or random).random())


def split_count(total: int, weights: Sequence[float]) -> list[int]:
    """Split an integer ``total`` in proportion to ``weights`` (largest remainder); sums to ``total``.

    >>> split_count(10, [1, 1, 1])
    [4, 3, 3]
    >>> split_count(7, [0, 0])
    [4, 3]
    """
    k = len(weights)
    if k == 0:
        return []
    total = max(0, int(total))
    w = [max(0.0, float(x)) for x in weights]
    if sum(w) <= 0:
        w = [1.0] * k
    s = sum(w)
    exact = [total * x / s for x in w]
    out = [math.floor(e) for e in exact]
    order = sorted(range(k), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def reply_problem(data: Any, expect: str = "object") -> str | None:
    """What makes a decoded HTTP 200 reply unusable for what was asked, or ``None`` when it is usable.

    ``expect``: ``object`` (any JSON object), ``chat`` / ``completions`` (a generation: a non-empty
    ``choices`` list of objects holding ``message.content`` / ``text``), ``models`` (a ``data``
    list), ``count`` / ``tokens`` (the tokenizer endpoints); ``+usage`` also needs an integer
    ``usage.prompt_tokens`` (the prefix-mode probe measures with it).

    >>> reply_problem([1, 2])
    'the body is JSON but not an object (a list)'
    >>> reply_problem({"error": {"message": "busy"}}, "chat")
    "the body has no 'choices' list"
    >>> reply_problem({"choices": [{"index": 0, "message": {"content": "hi"}}]}, "chat") is None
    True
    >>> reply_problem({"choices": [{"index": 0, "message": {"content": "hi"}}]}, "completions")
    "choice 0 has no 'text' string"
    """
    kind, _, extra = expect.partition("+")
    if not isinstance(data, dict):
        return f"the body is JSON but not an object (a {_json_type(data)})"
    if kind in ("chat", "completions"):
        choices = data.get("choices")
        if not isinstance(choices, list):
            return "the body has no 'choices' list"
        if not choices:
            return "the 'choices' list is empty"
        for k, ch in enumerate(choices):
            if not isinstance(ch, dict):
                return f"choice {k} is not an object (a {_json_type(ch)})"
            if not isinstance(ch.get("index", 0), int):
                return f"choice {k} has a non-integer 'index'"
            if kind == "chat":
                msg = ch.get("message")
                if not isinstance(msg, dict) or not isinstance(msg.get("content", ""), (str, type(None))):
                    return f"choice {k} has no 'message' object with a 'content' string"
            elif not isinstance(ch.get("text"), str):
                return f"choice {k} has no 'text' string"
        usage = data.get("usage")
        if usage is not None and not isinstance(usage, dict):
            return f"'usage' is not an object (a {_json_type(usage)})"
        if extra == "usage" and not _is_int((usage or {}).get("prompt_tokens")):
            return "the body has no integer 'usage.prompt_tokens'"
    elif kind == "models" and not isinstance(data.get("data"), list):
        return "the body has no 'data' list of models"
    elif kind == "count" and not _is_int(data.get("count")):
        return "the body has no integer 'count'"
    elif kind == "tokens" and not isinstance(data.get("tokens"), list):
        return "the body has no 'tokens' list"
    return None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _json_type(x: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(x), "number" if isinstance(x, (int, float)) else type(x).__name__)


def shorten(text: str, limit: int = 120) -> str:
    """A one-line excerpt of a reply body for error messages.

    >>> shorten("<html>" + "x" * 200, 20)
    '<html>xxxxxxxxxxxxxx...'
    """
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit] + "..."


def map_finish_reason(reason: Any) -> Literal["stop", "length", "error"]:
    """OpenAI-style finish reasons to the engine contract (``length`` stays, ``abort``/``error`` fail)."""
    if reason == "length":
        return "length"
    if reason in ("abort", "error"):
        return "error"
    return "stop"


def recover_stop(
    text: str,
    finish_reason: str,
    stops: Sequence[str],
    choice: dict[str, Any] | None = None,
    token_strs: Sequence[str] | None = None,
) -> tuple[str, str | None, bool]:
    """Put the matched stop string back at the end of ``text`` (steps 1-3 of the module docstring).

    Returns ``(text, stop_str, resolved)``; ``resolved`` is False when the server trimmed a stop
    or hit EOS and said nothing that tells which (then the token-count check decides).

    >>> recover_stop(" 5,", "stop", [","])
    (' 5,', ',', True)
    >>> recover_stop(" 5", "stop", [",", "."], {"stop_reason": ","})
    (' 5,', ',', True)
    >>> recover_stop(" 5", "stop", [","], {"stop_reason": None})
    (' 5', None, True)
    >>> recover_stop(" 5", "stop", [",", "."], None, [" ", "5", ","])
    (' 5,', ',', True)
    >>> recover_stop(" 5", "stop", [","])
    (' 5', None, False)
    """
    stops = [s for s in stops if s]
    if not stops:
        return text, None, True
    cut, matched = apply_stop(text, stops)
    if matched is not None:
        return cut, matched, True
    if finish_reason != "stop":
        return text, None, True
    choice = choice or {}
    for key in STOP_REASON_FIELDS:
        if key not in choice:
            continue
        value = choice[key]
        if isinstance(value, str) and value in stops:
            return text + value, value, True
        if key == "stopping_word":
            continue  # llama.cpp leaves it empty both when nothing matched and when it does not report
        return text, None, True  # EOS, a stop token id, or a stop string we did not ask for
    if token_strs:
        full = "".join(token_strs)
        if len(full) > len(text) and full.startswith(text):
            here = [s for s in stops if full.startswith(s, len(text))]
            if here:
                best = max(here, key=len)
                return text + best, best, True
    return text, None, False


def stop_candidates_by_count(
    generated: int, text_count: int, counts_with_stop: Sequence[int], stops: Sequence[str]
) -> list[str]:
    """Step 4: the stops whose ``text + stop`` token count is closest to the generated count (several
    when tied), or ``[]`` (EOS) when the text alone accounts for every generated token.

    >>> stop_candidates_by_count(18, 18, [19], [","])
    []
    >>> stop_candidates_by_count(3, 2, [3, 4], [",", " and"])
    [',']
    >>> stop_candidates_by_count(8, 7, [8, 8], ["9", "7"])
    ['9', '7']
    """
    if generated <= text_count or not stops:
        return []
    best = min(abs(c - generated) for c in counts_with_stop)
    return [s for s, c in zip(stops, counts_with_stop) if abs(c - generated) == best]


def trim_logprobs(
    token_strs: Sequence[str], logprobs: list[float], tops: list[dict[str, float]] | None, text_len: int
) -> tuple[list[float], list[dict[str, float]] | None]:
    """Drop logprob entries of tokens that start at or after ``text_len`` (generated past a stop)."""
    keep, pos = 0, 0
    for tok in token_strs:
        if pos >= text_len and keep > 0:
            break
        keep += 1
        pos += len(tok)
    return logprobs[:keep], (tops[:keep] if tops is not None else None)


def image_data_url(image: Any) -> str:
    """A ``data:`` URL holding the image bytes (file path, ``Path`` or PIL image)."""
    if hasattr(image, "save") and hasattr(image, "mode"):  # PIL image
        buf = io.BytesIO()
        img = image if image.mode in ("RGB", "RGBA", "L") else image.convert("RGB")
        img.save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    path = Path(image)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SlowthinkError(
            f"cannot read image {path}: {e.strerror or e} (check the path in the problem)"
        ) from e
    mime = mimetypes.guess_type(path.name)[0]
    if not mime or not mime.startswith("image/"):
        mime = _sniff_image_mime(data)
        if mime is None:
            raise SlowthinkError(f"{path} is not a known image format (use PNG, JPEG, GIF or WebP)")
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _sniff_image_mime(data: bytes) -> str | None:
    signatures = {
        b"\x89PNG": "image/png",
        b"\xff\xd8\xff": "image/jpeg",
        b"GIF8": "image/gif",
        b"BM": "image/bmp",
    }
    for sig, mime in signatures.items():
        if data.startswith(sig):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def chat_messages(messages: Sequence[Message], image_url: Any = image_data_url) -> list[dict[str, Any]]:
    """OpenAI chat messages; images become ``image_url`` parts (data URLs) before the text."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.images:
            parts: list[dict[str, Any]] = [
                {"type": "image_url", "image_url": {"url": image_url(img)}} for img in m.images
            ]
            parts.append({"type": "text", "text": m.content})
            out.append({"role": m.role, "content": parts})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def sampling_fields(request: Request, n: int, seed: int | None) -> dict[str, Any]:
    """The sampling part of a request body, shared by the chat and completions endpoints."""
    body: dict[str, Any] = {
        "n": n,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
    }
    stops = [s for s in request.stop if s]
    if stops:
        body["stop"] = stops
    if seed is not None:
        body["seed"] = seed
    return body


def parse_choice_logprobs(
    choice: dict[str, Any], chat: bool
) -> tuple[list[str] | None, list[float] | None, list[dict[str, float]] | None]:
    """(token strings, logprobs, top logprobs) of one choice, in either endpoint's layout."""
    lp = choice.get("logprobs")
    if not lp:
        return None, None, None
    if chat:
        content = lp.get("content") or []
        toks = [str(t.get("token", "")) for t in content]
        vals = [float(t.get("logprob", 0.0)) for t in content]
        tops = [
            {str(x.get("token", "")): float(x.get("logprob", 0.0)) for x in (t.get("top_logprobs") or [])}
            for t in content
        ]
        return toks, vals, tops
    toks = [str(t) for t in lp.get("tokens") or []]
    vals = [float(v) if v is not None else 0.0 for v in lp.get("token_logprobs") or []]
    tops = [{str(k): float(v) for k, v in (t or {}).items()} for t in lp.get("top_logprobs") or []]
    return toks, vals, tops


# -- chat templates for ``completions`` mode ------------------------------------------------------
_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def read_gguf_metadata(path: str | os.PathLike[str], keys: Sequence[str]) -> dict[str, Any]:
    """Read selected metadata values (strings, integers, string arrays) from a GGUF file header."""
    want = set(keys)
    out: dict[str, Any] = {}
    with open(path, "rb") as f:

        def u32() -> int:
            return struct.unpack("<I", f.read(4))[0]

        def u64() -> int:
            return struct.unpack("<Q", f.read(8))[0]

        def string() -> str:
            return f.read(u64()).decode("utf-8", errors="replace")

        def value(t: int, keep: bool) -> Any:
            if t in _GGUF_FIXED:
                raw = f.read(_GGUF_FIXED[t])
                if not keep:
                    return None
                fmt = {
                    0: "<B",
                    1: "<b",
                    2: "<H",
                    3: "<h",
                    4: "<I",
                    5: "<i",
                    6: "<f",
                    7: "<?",
                    10: "<Q",
                    11: "<q",
                    12: "<d",
                }[t]
                return struct.unpack(fmt, raw)[0]
            if t == _GGUF_STRING:
                if keep:
                    return string()
                f.seek(u64(), 1)
                return None
            if t == _GGUF_ARRAY:
                et, count = u32(), u64()
                if et in _GGUF_FIXED and not keep:
                    f.seek(_GGUF_FIXED[et] * count, 1)
                    return None
                items = [value(et, keep) for _ in range(count)]
                return items if keep else None
            raise ValueError(f"unknown GGUF metadata type {t}")

        if f.read(4) != b"GGUF":
            raise SlowthinkError(f"{path} is not a GGUF file")
        u32()  # version
        u64()  # tensor count
        for _ in range(u64()):
            key = string()
            v = value(u32(), key in want)
            if key in want:
                out[key] = v
                if len(out) == len(want):
                    break
    return out


@dataclass
class ChatTemplate:
    """A Jinja chat template rendered like transformers / llama.cpp do."""

    template: str
    bos_token: str = ""
    eos_token: str = ""
    source: str = "given"

    _compiled: Any = field(default=None, init=False, repr=False, compare=False)

    def _compile(self) -> Any:
        if self._compiled is None:
            try:
                import jinja2
                import jinja2.ext
                from jinja2.sandbox import ImmutableSandboxedEnvironment
            except ImportError as e:  # pragma: no cover - jinja2 comes with the server extras
                raise SlowthinkError("prefix_mode='completions' needs jinja2: pip install jinja2") from e

            def raise_exception(message: str) -> None:
                raise jinja2.TemplateError(message)

            env = ImmutableSandboxedEnvironment(
                trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
            )
            env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(
                x, ensure_ascii=False, indent=indent
            )
            env.globals["raise_exception"] = raise_exception
            env.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
            try:
                self._compiled = env.from_string(self.template)
            except jinja2.TemplateError as e:
                raise SlowthinkError(f"chat template from {self.source} does not compile: {e}") from e
        return self._compiled

    def render(self, messages: Sequence[Message]) -> str:
        """Render text-only messages with the assistant turn opened (no prefix); leading BOS stripped."""
        import jinja2

        msgs = [{"role": m.role, "content": m.content} for m in messages]
        try:
            text = self._compile().render(
                messages=msgs, add_generation_prompt=True, bos_token=self.bos_token, eos_token=self.eos_token
            )
        except jinja2.TemplateError as e:
            raise SlowthinkError(f"chat template from {self.source} rejected the messages: {e}") from e
        if self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token) :]  # the server adds BOS itself
        return text


def load_chat_template(spec: str) -> ChatTemplate:
    """``chat_template`` option -> template (see :class:`OpenAIOptions`)."""
    if spec in NAMED_TEMPLATES:
        return ChatTemplate(NAMED_TEMPLATES[spec], source=spec)
    if "{%" in spec or "{{" in spec:
        return ChatTemplate(spec, source="literal")
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return gguf_chat_template(path)
    if path.is_dir():
        for name in ("chat_template.jinja", "tokenizer_config.json", "chat_template.json"):
            if (path / name).is_file():
                return load_chat_template(str(path / name))
        raise SlowthinkError(
            f"no chat template in {path} (expected tokenizer_config.json or chat_template.jinja)"
        )
    if path.is_file() and path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        tpl = data.get("chat_template")
        if isinstance(tpl, list):  # [{"name": "default", "template": ...}, ...]
            named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
            tpl = named.get("default") or next(iter(named.values()), None)
        if not tpl:
            raise SlowthinkError(f"{path} has no 'chat_template' entry: pass a template that has one")

        def tok(key: str) -> str:
            v = data.get(key) or ""
            return v.get("content", "") if isinstance(v, dict) else str(v)

        return ChatTemplate(tpl, tok("bos_token"), tok("eos_token"), source=str(path))
    if path.is_file():
        return ChatTemplate(path.read_text(encoding="utf-8"), source=str(path))
    raise SlowthinkError(
        f"chat_template '{spec}' is neither a file, a folder, a known name ({', '.join(NAMED_TEMPLATES)}) "
        "nor Jinja text: pass the model's tokenizer_config.json, .gguf or .jinja file"
    )


def gguf_chat_template(path: str | os.PathLike[str]) -> ChatTemplate:
    """The chat template (and BOS/EOS token texts) stored in a GGUF file."""
    keys = ["tokenizer.chat_template", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"]
    meta = read_gguf_metadata(path, keys)
    tpl = meta.get("tokenizer.chat_template")
    if not tpl:
        raise SlowthinkError(
            f"{path} has no chat template in its metadata: pass chat_template=... explicitly"
        )
    bos = eos = ""
    ids = [meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id")]
    if ("{{ bos_token" in tpl or "bos_token" in tpl or "eos_token" in tpl) and any(
        i is not None for i in ids
    ):
        tokens = read_gguf_metadata(path, ["tokenizer.ggml.tokens"]).get("tokenizer.ggml.tokens") or []
        bos = tokens[ids[0]] if ids[0] is not None and ids[0] < len(tokens) else ""
        eos = tokens[ids[1]] if ids[1] is not None and ids[1] < len(tokens) else ""
    return ChatTemplate(tpl, bos, eos, source=str(path))


# -- the engine -----------------------------------------------------------------------------------
class _HTTPFailure(Exception):
    """A request that failed for good (after retries where allowed).

    ``kind``: ``connect`` (connection errors), ``timeout`` (read/write timeout), ``status`` (an
    HTTP error status), ``malformed`` (HTTP 200 with a body that is not the JSON asked for) or
    ``http`` (any other transport error); ``attempts``: how many times it was sent.
    """

    def __init__(
        self,
        kind: str,
        detail: str,
        status: int | None = None,
        body: str = "",
        url: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.status, self.body, self.url = kind, detail, status, body, url
        self.attempts = attempts


@dataclass
class _Call:
    """One HTTP generation request: ``n`` samples of request ``index`` (samples from ``offset``)."""

    index: int
    route: Literal["chat", "completions"]
    n: int
    offset: int = 0


@dataclass
class _Outcome:
    completions: list[Completion] = field(default_factory=list)
    error: str | None = None


class OpenAIEngine:
    """Engine for any OpenAI-compatible server. See the module docstring for every behaviour."""

    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, **options: Any) -> None:
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise SlowthinkError(
                f"unknown openai engine option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(OPTION_NAMES))}"
            )
        self.options = OpenAIOptions(base_url=base_url, model=model, **options)
        self.base_url = self.options.base_url
        self.model = self.options.model
        self.supports_images = bool(self.options.supports_images)
        self.prefix_mode: str = self.options.prefix_mode
        self.notes: list[str] = []
        self.stats: dict[str, int] = {
            "http_requests": 0,
            "retries": 0,
            "malformed_replies": 0,
            "read_timeouts": 0,
            "probe_failures": 0,
            "unresolved_stops": 0,
            "fill_requests": 0,
            "tokenize_requests": 0,
            "peek_requests": 0,
        }
        """Counters (read by the eval runner into metrics): HTTP requests sent, ``retries`` (each
        backoff sleep), replies that were malformed (HTTP 200, unusable body), read timeouts, failed
        set-up probes, stop strings left unresolved, and extra requests (n fill, tokenize, peek)."""
        self._lock = threading.Lock()
        self._setup_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self._ready = False
        self._n_supported: bool | None = None
        self._extensions = bool(self.options.server_extensions)
        self._template: ChatTemplate | None = None
        self._template_error: str | None = None
        self._tokenize_kind: str | None = None  # "llama-cpp-python" | "llama.cpp" | "none"
        self._bos_count: int = 0
        self._warned: set[str] = set()
        self._rng = random.Random()
        self._image_cache: OrderedDict[Any, str] = OrderedDict()
        self._client = self._make_client()

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, target: str | None, fragment: str | None, **options: Any) -> OpenAIEngine:
        """``openai:URL#model``; options not meant for this engine (n_ctx, device, ...) are ignored."""
        if not target:
            raise SlowthinkError(
                "openai engine needs the server URL: use 'openai:http://127.0.0.1:8000/v1#model-name'"
            )
        keep = {k: v for k, v in options.items() if k in OPTION_NAMES and k not in ("base_url", "model")}
        dropped = sorted(set(options) - set(keep) - {"model"})
        if dropped:
            logger.debug("openai engine ignores options %s", dropped)
        model = fragment or options.get("model")
        return cls(target, model, **keep)

    def _make_client(self):
        try:
            import httpx
        except ImportError as e:  # pragma: no cover - depends on the install
            raise SlowthinkError("the openai engine needs httpx: pip install 'slowthink[openai]'") from e
        headers = {"Content-Type": "application/json"}
        env = self.options.api_key_env
        if env:
            key = os.environ.get(env)
            if not key:
                raise SlowthinkError(
                    f"openai engine: environment variable {env} (api_key_env) is not set: export it with the API key"
                )
            headers["Authorization"] = f"Bearer {key}"
            self._secret = _Secret(key)
        else:
            self._secret = _Secret(None)
        n = int(self.options.max_concurrency)
        return httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(
                float(self.options.timeout_s), connect=float(self.options.connect_timeout_s)
            ),
            limits=httpx.Limits(max_connections=n + 2, max_keepalive_connections=n + 2),
        )

    def __repr__(self) -> str:
        key = f", api_key_env={self.options.api_key_env!r}" if self.options.api_key_env else ""
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r}, prefix_mode={self.prefix_mode!r}{key})"

    __str__ = __repr__

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- HTTP ---------------------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        """The server root (base URL without a trailing ``/v1``), where non-OpenAI endpoints live."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def _scrub(self, text: str) -> str:
        return self._secret.scrub(text)

    def _count(self, key: str, k: int = 1) -> None:
        with self._lock:
            self.stats[key] = self.stats.get(key, 0) + k

    def _warn_once(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
            self.notes.append(message)
        logger.warning("%s", message)

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        retry: bool = True,
        expect: str = "object",
    ) -> Any:
        """One HTTP exchange with retries; returns the decoded JSON or raises :class:`_HTTPFailure`.

        Retried (``max_retries`` times, backoff, counted in ``stats["retries"]``): connection
        errors, 429, 5xx, and an HTTP 200 whose body is not usable for ``expect`` (see
        :func:`reply_problem`); a read timeout is retried once. Anything else fails at once.
        """
        import httpx

        retryable = (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.RemoteProtocolError,
            httpx.ReadError,
            httpx.WriteError,
        )
        url = path if path.startswith("http") else self.base_url + path
        attempts = 1 + (int(self.options.max_retries) if retry else 0)
        timeouts_left = 1  # a stalled reply is retried once; a generation that is just slow would stall again
        for attempt in range(attempts):
            last = attempt == attempts - 1
            tries = attempt + 1
            self._count("http_requests")
            try:
                r = (
                    self._client.request(method, url, json=body)
                    if body is not None
                    else self._client.request(method, url)
                )
            except retryable as e:
                if last:
                    raise _HTTPFailure(
                        "connect",
                        f"{type(e).__name__}: {self._scrub(str(e)) or 'connection failed'}",
                        url=url,
                        attempts=tries,
                    ) from None
                self._sleep_before_retry(attempt, None)
                continue
            except httpx.TimeoutException as e:
                self._count("read_timeouts")
                if not last and timeouts_left:
                    timeouts_left -= 1
                    self._sleep_before_retry(attempt, None)
                    continue
                raise _HTTPFailure(
                    "timeout",
                    f"{type(e).__name__} after {self.options.timeout_s:g}s",
                    url=url,
                    attempts=tries,
                ) from None
            except httpx.HTTPError as e:
                raise _HTTPFailure(
                    "http", f"{type(e).__name__}: {self._scrub(str(e))}", url=url, attempts=tries
                ) from None
            status = r.status_code
            if status < 400:
                try:
                    data = r.json()
                except ValueError:
                    problem: str | None = "the body is not JSON"
                else:
                    problem = reply_problem(data, expect)
                if problem is None:
                    return data
                self._count("malformed_replies")
                if last:
                    raise _HTTPFailure(
                        "malformed", problem, status, self._scrub(r.text or ""), url=url, attempts=tries
                    )
                self._sleep_before_retry(attempt, None)
                continue
            text = self._scrub(r.text or "")
            if (status == 429 or status >= 500) and not last:
                self._sleep_before_retry(attempt, r.headers.get("retry-after"))
                continue
            raise _HTTPFailure("status", f"HTTP {status}", status, text, url=url, attempts=tries)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep_before_retry(self, attempt: int, retry_after: str | None) -> None:
        self._count("retries")
        delay = backoff_delay(
            attempt, float(self.options.backoff_base_s), float(self.options.backoff_max_s), self._rng
        )
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), float(self.options.backoff_max_s)))
        time.sleep(delay)

    # -- error messages ---------------------------------------------------------------------------
    def _describe(self, failure: _HTTPFailure, what: str) -> str:
        head = f"openai engine: {what} to {failure.url or self.base_url} failed"
        tries = f"after {failure.attempts} attempt{'s' if failure.attempts != 1 else ''}"
        if failure.kind == "connect":
            return (
                f"{head}: cannot reach the server ({failure.detail}) {tries}; "
                "start the server or fix the URL in the engine spec 'openai:URL#model'"
            )
        if failure.kind == "timeout":
            return (
                f"{head}: {failure.detail} ({tries}); the server stalled or the generation is slow: "
                "raise the engine option timeout_s or lower max_tokens"
            )
        if failure.kind == "malformed":
            return (
                f"{head}: malformed reply {tries}: HTTP {failure.status} but {failure.detail} "
                f"(body: {shorten(failure.body)!r}); the server, or a proxy in front of it, does not answer "
                "as an OpenAI-compatible API: check that the URL is the API root (usually ending in /v1) "
                "and retry later"
            )
        message = _error_message(failure.body) or failure.body[:_MAX_ERROR_BODY]
        if failure.status in (401, 403):
            who = (
                f"the key in ${self.options.api_key_env}"
                if self.options.api_key_env
                else "a request without an API key"
            )
            return f"{head}: HTTP {failure.status}, the server rejected {who}: set api_key_env to the variable holding a valid key"
        if failure.status in (400, 404) and self.model and "model" in message.lower():
            models = self._list_models()
            if models is not None and self.model not in models:
                return (
                    f"{head}: model '{self.model}' is not served there (available: {', '.join(models) or 'none'}); "
                    f"use 'openai:{self.base_url}#{models[0] if models else 'MODEL'}'"
                )
        if failure.status is not None and (failure.status == 429 or failure.status >= 500):
            return (
                f"{head}: HTTP {failure.status} {tries} ({message}); "
                "the server is overloaded or failing: retry later or lower max_concurrency"
            )
        if failure.status == 404:
            return f"{head}: HTTP 404 ({message}); check that the URL ends with the API root (usually /v1)"
        return f"{head}: {failure.detail} ({message}); check the request parameters for this server"

    def _list_models(self) -> list[str] | None:
        try:
            data = self._request("GET", "/models", retry=False, expect="models")
        except _HTTPFailure:
            return None  # only used to improve an error message
        return [str(m.get("id")) for m in data["data"] if isinstance(m, dict)]

    # -- setup: model, prefix mode, template -------------------------------------------------------
    def _setup(self) -> str | None:
        """Resolve the model name once (from ``/models`` when not given). Returns an error message
        for this batch, or None; a failed listing is tried again on the next call."""
        with self._setup_lock:
            if self._ready:
                return None
            if self.model is None:
                try:
                    models = self._request("GET", "/models", expect="models")
                except _HTTPFailure as f:
                    return self._describe(f, "listing the served models (no model was named)") + (
                        f"; or name the model: 'openai:{self.base_url}#MODEL'"
                    )
                ids = [str(m.get("id")) for m in models["data"] if isinstance(m, dict)]
                if not ids:
                    return f"openai engine: {self.base_url}/models lists no model: name one with 'openai:{self.base_url}#MODEL'"
                if len(ids) > 1:
                    return (
                        f"openai engine: {self.base_url} serves several models ({', '.join(ids)}): "
                        f"name one with 'openai:{self.base_url}#{ids[0]}'"
                    )
                self.model = ids[0]
            self._ready = True
            return None

    def _prepare_prefix(self) -> str | None:
        """Make prefix continuation ready: decide ``auto`` (the probe) and load the template for
        ``completions``. Returns None when ready, else why requests with a prefix cannot be sent
        now: the probe or template fetch failed after its retries; nothing is concluded from a
        failure, and the next call tries again."""
        with self._setup_lock:
            try:
                if self.prefix_mode == "auto":
                    self.prefix_mode = self._probe_prefix_mode()
                    logger.info(
                        "openai engine: prefix_mode auto -> %s at %s", self.prefix_mode, self.base_url
                    )
                if self.prefix_mode == "completions":
                    self._load_template()
            except _HTTPFailure as f:
                self._count("probe_failures")
                fetch = (
                    "the chat-template fetch"
                    if self.prefix_mode == "completions"
                    else "the prefix-mode probe"
                )
                why = self._describe(f, fetch)
                self._warn_once(
                    f"prefix-{fetch}",
                    f"openai engine: {fetch} failed at {self.base_url}; requests with an assistant prefix fail "
                    f"alone while it fails, and it is tried again on the next call (first failure: {why})",
                )
                return (
                    f"{why}; this request needs it to continue its assistant prefix, so it "
                    "failed alone (the next call tries again; prefix_mode='completions' with chat_template=... "
                    "or prefix_mode='continue' skips the probe)"
                )
        return None

    def _probe_prefix_mode(self) -> str:
        """``continue`` if the chat endpoint continues a final assistant message, else ``completions``.

        Raises :class:`_HTTPFailure` when the server fails a probe request (after retries); only a
        4xx that rejects the request (the extension or the endpoint) is an answer."""
        base = {"model": self.model, "max_tokens": 1, "temperature": 0.0}
        plain = self._request(
            "POST", "/chat/completions", {**base, "messages": _PROBE_MESSAGES}, expect="chat+usage"
        )
        p_plain = int(plain["usage"]["prompt_tokens"])
        try:
            cont = self._request(
                "POST",
                "/chat/completions",
                {
                    **base,
                    "messages": [*_PROBE_MESSAGES, {"role": "assistant", "content": _PROBE_PREFIX}],
                    "continue_final_message": True,
                    "add_generation_prompt": False,
                },
                expect="chat+usage",
            )
            p_cont: int | None = int(cont["usage"]["prompt_tokens"])
        except _HTTPFailure as f:
            if not _rejects_request(f):
                raise
            p_cont = None  # the server rejects the extension
        try:
            one = self._request(
                "POST", "/completions", {**base, "prompt": _PROBE_PREFIX}, expect="completions+usage"
            )
            two = self._request(
                "POST", "/completions", {**base, "prompt": _PROBE_PREFIX * 2}, expect="completions+usage"
            )
            t_prefix: int | None = int(two["usage"]["prompt_tokens"]) - int(one["usage"]["prompt_tokens"])
        except _HTTPFailure as f:
            if not _rejects_request(f):
                raise
            t_prefix = None  # no completions endpoint
        if p_cont is not None and (t_prefix is None or abs((p_cont - p_plain) - t_prefix) <= 1):
            return "continue"
        if t_prefix is not None:
            self._warn_once(
                "probe",
                f"openai engine: {self.base_url} ignores continue_final_message; prefixes are continued through "
                "/completions with a locally rendered chat template (prefix_mode='completions')",
            )
            return "completions"
        self._template_error = (
            f"openai engine: {self.base_url} supports neither continue_final_message nor /completions, so an "
            "assistant prefix cannot be continued exactly: use a vLLM or SGLang server, or requests without prefix"
        )
        return "completions"

    def _load_template(self) -> None:
        """Find the chat template for ``completions`` mode. Raises :class:`_HTTPFailure` when the
        server's ``/props`` failed (after retries) and there is no local fallback."""
        if self._template is not None or self._template_error is not None:
            return
        try:
            if self.options.chat_template:
                self._template = load_chat_template(self.options.chat_template)
                return
            local_gguf = bool(self.model and self.model.endswith(".gguf") and Path(self.model).is_file())
            props = None
            try:
                props = self._request("GET", self.root_url + "/props")
            except _HTTPFailure as f:
                # no /props (llama-cpp-python) or it failed while the served .gguf is here to read
                if not (f.status in _ENDPOINT_ABSENT or local_gguf):
                    raise
            if isinstance(props, dict) and props.get("chat_template"):
                self._template = ChatTemplate(
                    str(props["chat_template"]),
                    str(props.get("bos_token") or ""),
                    str(props.get("eos_token") or ""),
                    source=self.root_url + "/props",
                )
                return
            if local_gguf:
                self._template = gguf_chat_template(self.model)
                return
            self._template_error = (
                f"openai engine: prefix_mode='completions' needs the model's chat template and {self.base_url} does "
                "not expose it: pass the engine option chat_template=PATH (tokenizer_config.json, .gguf or .jinja)"
            )
        except SlowthinkError as e:
            self._template_error = f"openai engine: {e}"

    # -- generation -------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        """Return ``len(requests)`` lists, the i-th holding ``requests[i].n`` completions."""
        requests = list(requests)
        check_images(self.name, self.supports_images, requests)
        if not requests:
            return []
        problem = self._setup()
        if problem is not None:
            return [error_completions(r, problem) for r in requests]
        prefix_problem = self._prepare_prefix() if any(r.prefix for r in requests) else None

        results: list[list[Completion]] = [[] for _ in requests]
        errors: list[str | None] = [None] * len(requests)
        calls: list[_Call] = []
        for i, r in enumerate(requests):
            if r.prefix and prefix_problem is not None:
                errors[i] = prefix_problem
                continue
            route, err = self._route(r)
            if err is not None:
                errors[i] = err
                continue
            n = _samples_to_send(r)
            if n > 1 and self._n_supported is False:
                calls.extend(_Call(i, route, 1, k) for k in range(n))
            else:
                calls.append(_Call(i, route, n, 0))
        self._run(requests, calls, results, errors)

        # the server returned fewer choices than n: fill with single-sample requests
        fill: list[_Call] = []
        for i, r in enumerate(requests):
            got, n = len(results[i]), _samples_to_send(r)
            if errors[i] is None and got == 0:  # reply_problem() rules this out; kept as a guard
                errors[i] = (
                    f"openai engine: {self.base_url} returned no choice for request {i} (malformed reply)"
                )
            elif errors[i] is None and got < n:
                if self._n_supported is not False:
                    with self._lock:
                        self._n_supported = False
                    self._warn_once(
                        "n",
                        f"openai engine: {self.base_url} returned {got} of n={r.n} choices (it ignores n); the missing "
                        "samples are sent as separate requests (sample k uses seed + k)",
                    )
                route, _ = self._route(r)
                fill.extend(_Call(i, route, 1, k) for k in range(got, n))
        if fill:
            self._count("fill_requests", len(fill))
            self._run(requests, fill, results, errors)

        out: list[list[Completion]] = []
        for i, r in enumerate(requests):
            if errors[i] is not None:
                out.append(error_completions(r, errors[i]))
            elif r.temperature == 0 and results[i] and len(results[i]) < r.n:
                out.append([dataclasses.replace(results[i][k % len(results[i])]) for k in range(r.n)])
            elif len(results[i]) < r.n:
                missing = r.n - len(results[i])
                msg = f"openai engine: {self.base_url} returned {len(results[i])} of n={r.n} samples for request {i}"
                out.append(results[i] + [Completion("", "error", error=msg) for _ in range(missing)])
            else:
                out.append(results[i][: r.n])
        return out

    def _route(self, r: Request) -> tuple[Literal["chat", "completions"], str | None]:
        if self.prefix_mode != "completions":
            return "chat", None
        if r.images:
            if r.prefix:
                return "chat", (
                    "openai engine: a request with an image and an assistant prefix needs prefix_mode='continue' "
                    "(a vLLM or SGLang server); prefix_mode='completions' is text only"
                )
            return "chat", None
        if self._template is None:
            if not r.prefix:
                return "chat", None
            return (
                "completions",
                self._template_error or "openai engine: no chat template for prefix_mode='completions'",
            )
        return "completions", None

    def _run(
        self,
        requests: list[Request],
        calls: list[_Call],
        results: list[list[Completion]],
        errors: list[str | None],
    ) -> None:
        if not calls:
            return
        workers = max(1, min(int(self.options.max_concurrency), len(calls)))
        if workers == 1:
            outcomes = [self._safe_execute(requests[c.index], c) for c in calls]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slowthink-openai") as pool:
                outcomes = list(pool.map(lambda c: self._safe_execute(requests[c.index], c), calls))
        for c, o in zip(calls, outcomes):
            if o.error is not None:
                if errors[c.index] is None:
                    errors[c.index] = o.error
            else:
                results[c.index].extend(o.completions)

    def _safe_execute(self, r: Request, call: _Call) -> _Outcome:
        try:
            return self._execute(r, call)
        except Exception as e:  # one bad request never fails the batch
            logger.debug("openai engine: request %d failed", call.index, exc_info=True)
            return _Outcome(
                error=f"openai engine: request {call.index} to {self.base_url} failed: {type(e).__name__}: {self._scrub(str(e))}"
            )

    def _execute(self, r: Request, call: _Call) -> _Outcome:
        path = "/chat/completions" if call.route == "chat" else "/completions"
        what = f"request {call.index} (n={call.n}, {path})"
        for _ in range(2):  # a second pass only after dropping rejected server extensions
            try:
                body = self._body(r, call)
            except SlowthinkError as e:
                return _Outcome(error=f"openai engine: request {call.index}: {e}")
            extensions = self._extensions
            try:
                data = self._request("POST", path, body, expect=call.route)
            except _HTTPFailure as f:
                if extensions and f.status == 400 and any(name in f.body for name in EXTENSION_FIELDS):
                    with self._lock:
                        self._extensions = False
                    self._warn_once(
                        "ext",
                        f"openai engine: {self.base_url} rejects vLLM/SGLang request fields; sending plain OpenAI requests",
                    )
                    continue
                return _Outcome(error=self._describe(f, what))
            try:
                return _Outcome(self._parse(r, call, data, body))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                return _Outcome(
                    error=f"openai engine: {what} to {self.base_url}{path} failed: malformed reply ({type(e).__name__}: "
                    f"{e}); the server does not answer as an OpenAI-compatible API: check the URL and the server"
                )
        return _Outcome(error=f"openai engine: {what} to {self.base_url}{path} was rejected twice")

    def _body(self, r: Request, call: _Call) -> dict[str, Any]:
        seed = None if r.seed is None else r.seed + call.offset
        body: dict[str, Any] = {"model": self.model}
        body.update(sampling_fields(r, call.n, seed))
        if call.route == "chat":
            messages = chat_messages(r.messages, self._image_url)
            if r.prefix:
                if not self._extensions:
                    raise SlowthinkError(
                        f"{self.base_url} rejects continue_final_message, so the prefix cannot be continued: "
                        "use prefix_mode='completions' with chat_template=..., or a vLLM/SGLang server"
                    )
                messages.append({"role": "assistant", "content": r.prefix})
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
            body["messages"] = messages
            if r.logprobs:
                body["logprobs"] = True
                if r.top_logprobs:
                    body["top_logprobs"] = r.top_logprobs
        else:
            assert self._template is not None
            body["prompt"] = self._template.render(r.messages) + r.prefix
            if r.logprobs:
                body["logprobs"] = r.top_logprobs
        if body.get("stop") and self._extensions:
            body["include_stop_str_in_output"] = True
            body["no_stop_trim"] = True
        for k, v in self.options.extra_body.items():
            body.setdefault(k, v)
        return body

    def _image_url(self, image: Any) -> str:
        if not isinstance(image, (str, os.PathLike)):
            return image_data_url(image)
        try:
            st = os.stat(image)
        except OSError as e:
            raise SlowthinkError(
                f"cannot read image {image}: {e.strerror or e} (check the path in the problem)"
            ) from e
        key = (os.fspath(image), st.st_mtime_ns, st.st_size)
        with self._lock:
            if key in self._image_cache:
                self._image_cache.move_to_end(key)
                return self._image_cache[key]
        url = image_data_url(image)
        with self._lock:
            self._image_cache[key] = url
            while len(self._image_cache) > _IMAGE_CACHE_SIZE:
                self._image_cache.popitem(last=False)
        return url

    def _parse(self, r: Request, call: _Call, data: dict[str, Any], body: dict[str, Any]) -> list[Completion]:
        chat = call.route == "chat"
        choices = sorted(data["choices"], key=lambda c: c.get("index") or 0)[: call.n]
        usage = data.get("usage") or {}
        prompt_total = int(usage.get("prompt_tokens") or 0)
        gen_total = int(usage.get("completion_tokens") or 0)
        parsed = []
        for ch in choices:
            raw = (ch.get("message") or {}).get("content") if chat else ch.get("text")
            text = raw if isinstance(raw, str) else ""
            toks, vals, tops = parse_choice_logprobs(ch, chat)
            parsed.append((ch, text, map_finish_reason(ch.get("finish_reason")), toks, vals, tops))
        if not parsed:
            return []
        weights = [len(p[3]) if p[3] else len(p[1]) + 1 for p in parsed]
        prompts = split_count(prompt_total, [1] * len(parsed))
        gens = split_count(gen_total, weights)
        out = []
        for (ch, text, finish, toks, vals, tops), p_tok, g_tok in zip(parsed, prompts, gens):
            text, stop_str, resolved = recover_stop(text, finish, r.stop, ch, toks)
            if stop_str is not None:
                finish = "stop"  # e.g. a server that ignored the stop and ran on: cut and stopped here
            if not resolved:
                stop_str = self._stop_by_count(text, r.stop, g_tok if len(parsed) == 1 else None, body)
                if stop_str is not None:
                    text += stop_str
            if toks is not None and vals is not None:
                vals, tops = trim_logprobs(toks, vals, tops, len(text))
            out.append(
                Completion(
                    text=text,
                    finish_reason=finish,
                    stop_str=stop_str,
                    prompt_tokens=p_tok,
                    generated_tokens=g_tok,
                    logprobs=vals if r.logprobs else None,
                    top_logprobs=(tops if r.logprobs and r.top_logprobs else None),
                    error="server aborted the request" if finish == "error" else None,
                )
            )
        return out

    # -- step 4 of stop recovery: token counts --------------------------------------------------------
    def _stop_by_count(
        self, text: str, stops: Sequence[str], generated: int | None, body: dict[str, Any]
    ) -> str | None:
        stops = [s for s in stops if s]
        if generated is None or generated <= 0:
            self._warn_once("stop-n", _NO_STOP_INFO.format(url=self.base_url, why="a request with n > 1"))
            return None
        try:
            text_count = self._tokenizer_count(text)
            if text_count is None or generated <= text_count:
                return None
            if len(stops) == 1:
                return stops[0]
            with_stop = [self._tokenizer_count(text + s) for s in stops]
        except _NoTokenizer:
            self._warn_once(
                "stop-tok",
                _NO_STOP_INFO.format(url=self.base_url, why="a server without a tokenize endpoint"),
            )
            return None
        except _HTTPFailure as f:
            self._count("unresolved_stops")
            self._warn_once(
                "stop-count",
                f"openai engine: a tokenize request failed ({self._describe(f, 'tokenize')}); the stop string of "
                "that completion is left unresolved (Completion.stop_str None); later completions ask again",
            )
            return None
        candidates = stop_candidates_by_count(
            generated, text_count, [10**9 if c is None else c for c in with_stop], stops
        )
        if len(candidates) > 1 and "prompt" in body:
            # tied counts: ask the model which stop it continues with (greedy, a few tokens)
            peek = {
                "model": self.model,
                "prompt": body["prompt"] + text,
                "max_tokens": max(1, generated - text_count + 1),
                "temperature": 0.0,
            }
            self._count("peek_requests")
            try:
                data = self._request("POST", "/completions", peek, expect="completions")
                ahead = str(data["choices"][0]["text"])
            except _HTTPFailure as f:
                ahead = ""
                self._warn_once(
                    "peek",
                    f"openai engine: a peek request failed ({self._describe(f, 'peek')}); tied stop strings are "
                    "then resolved by list order",
                )
            starting = [s for s in candidates if ahead.startswith(s)]
            if starting:
                return max(starting, key=len)
        return candidates[0] if candidates else None

    def _tokenizer_count(self, text: str) -> int | None:
        """Tokens of ``text`` by the server's tokenizer (BOS not counted). None when the tokenizer
        probe failed this time (it runs again next time); raises :class:`_NoTokenizer` when the
        server has no tokenize endpoint and :class:`_HTTPFailure` when the count request failed."""
        with self._tokenizer_lock:
            if self._tokenize_kind is None:
                self._detect_tokenizer()
            kind = self._tokenize_kind
        if kind is None:
            return None
        if kind == "none":
            raise _NoTokenizer
        return self._raw_count(kind, text)

    def _raw_count(self, kind: str, text: str, *, baseline: bool = True) -> int:
        self._count("tokenize_requests")
        if kind == "llama-cpp-python":
            data = self._request(
                "POST",
                self.root_url + "/extras/tokenize/count",
                {"model": self.model, "input": text},
                expect="count",
            )
            n = int(data["count"])
        else:
            data = self._request("POST", self.root_url + "/tokenize", {"content": text}, expect="tokens")
            n = len(data["tokens"])
        return n - (self._bos_count if baseline else 0)

    def _detect_tokenizer(self) -> None:
        """Find the server's tokenize endpoint (and its BOS count). ``none`` is concluded only when
        each endpoint answers that it does not exist; any other failure leaves the kind undecided
        for this completion (stop unresolved, warned once) and the next one probes again."""
        for kind in ("llama-cpp-python", "llama.cpp"):
            try:
                n = self._raw_count(kind, "", baseline=False)
            except _HTTPFailure as f:
                if f.kind == "status" and f.status in _ENDPOINT_ABSENT:
                    continue
                self._count("probe_failures")
                self._count("unresolved_stops")
                self._warn_once(
                    "tok-probe",
                    f"openai engine: the tokenizer probe failed ({self._describe(f, 'tokenizer probe')}); "
                    "the stop string of that completion is left unresolved (Completion.stop_str None) and "
                    "the probe runs again for the next one",
                )
                return
            self._bos_count = n
            self._tokenize_kind = kind
            return
        self._tokenize_kind = "none"


def _samples_to_send(r: Request) -> int:
    """Greedy samples are identical: ask for one and copy it (some servers reject greedy ``n > 1``)."""
    return 1 if r.temperature == 0 else r.n


_NO_STOP_INFO = (
    "openai engine: {url} trims stop strings without saying which one matched, and this cannot be recovered "
    "for {why}; Completion.stop_str is left None when finish_reason is 'stop'"
)


class _NoTokenizer(Exception):
    pass


#: Statuses saying an endpoint is not there (so a probe concludes "not supported", not "failed").
_ENDPOINT_ABSENT = (404, 405, 501)


def _rejects_request(failure: _HTTPFailure) -> bool:
    """A probe answer meaning "this server does not take this request" (not a passing failure)."""
    return failure.kind == "status" and failure.status in (400, 422, *_ENDPOINT_ABSENT)


class _Secret:
    """Holds the API key; its repr never shows it, and :meth:`scrub` removes it from any text."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "_Secret(***)" if self._value else "_Secret(None)"

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if self._value and text else text


def _error_message(body: str) -> str:
    """The server's error message out of an OpenAI-style error body (or the raw text, shortened)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:_MAX_ERROR_BODY]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err
        else:
            msg = err if isinstance(err, str) else data.get("detail") or data.get("message") or err
        if not isinstance(msg, str):
            msg = json.dumps(msg)[:_MAX_ERROR_BODY]
        return msg[:_MAX_ERROR_BODY]
    return str(data)[:_MAX_ERROR_BODY]


__all__ = [
    "CHATML_TEMPLATE",
    "ChatTemplate",
    "OpenAIEngine",
    "OpenAIOptions",
    "PREFIX_MODES",
    "backoff_delay",
    "chat_messages",
    "gguf_chat_template",
    "image_data_url",
    "load_chat_template",
    "read_gguf_metadata",
    "recover_stop",
    "split_count",
    "stop_candidates_by_count",
]
