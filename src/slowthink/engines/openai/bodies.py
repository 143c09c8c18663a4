"""Request bodies and reply parsing of the ``openai`` engine (pure functions, no HTTP).

A request goes to ``/chat/completions`` (``route="chat"``: OpenAI chat messages, images as
``image_url`` data-URL parts before the text; an assistant prefix is sent as a final assistant
message with ``continue_final_message: true, add_generation_prompt: false``) or to
``/completions`` (``route="completions"``: ``prompt = rendered chat template + prefix``). With
server extensions on, a request with stop strings also asks for ``include_stop_str_in_output``
(vLLM) and ``no_stop_trim`` (SGLang); ``extra_body`` fields are added, never replacing the
engine's own.

**Token counts** come from ``usage`` of each HTTP request: ``prompt_tokens`` is split evenly over
its choices and ``completion_tokens`` in proportion to each choice's token count (from logprobs)
or text length (:func:`split_count`), so the sums over completions equal what the server reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from slowthink.engines.openai.stops import recover_stop, trim_logprobs
from slowthink.engines.openai.templates import ChatTemplate
from slowthink.images import image_data_url
from slowthink.types import Completion, Message, Request, SlowthinkError

Route = Literal["chat", "completions"]
#: Server-specific request fields (vLLM / SGLang); dropped for good if the server rejects them.
EXTENSION_FIELDS: tuple[str, ...] = (
    "continue_final_message",
    "add_generation_prompt",
    "include_stop_str_in_output",
    "no_stop_trim",
)


def samples_to_send(r: Request) -> int:
    """Greedy samples are identical: ask for one and copy it (some servers reject greedy ``n > 1``)."""
    return 1 if r.temperature == 0 else r.n


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


def map_finish_reason(reason: Any) -> Literal["stop", "length", "error"]:
    """OpenAI-style finish reasons to the engine contract (``length`` stays, ``abort``/``error`` fail)."""
    if reason == "length":
        return "length"
    if reason in ("abort", "error"):
        return "error"
    return "stop"


def chat_messages(
    messages: Sequence[Message], image_url: Callable[[Any], str] = image_data_url
) -> list[dict[str, Any]]:
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


def build_body(
    r: Request,
    route: Route,
    n: int,
    seed: int | None,
    *,
    model: str | None,
    extensions: bool,
    template: ChatTemplate | None,
    extra_body: Mapping[str, Any],
    image_url: Callable[[Any], str] = image_data_url,
    server: str = "the server",
) -> dict[str, Any]:
    """The JSON body asking ``model`` for ``n`` samples of ``r`` on ``route`` (``template`` renders
    the ``completions`` prompt). Raises :class:`SlowthinkError` when a prefix cannot be continued
    on the chat route because ``server`` rejects the extensions."""
    body: dict[str, Any] = {"model": model}
    body.update(sampling_fields(r, n, seed))
    if route == "chat":
        messages = chat_messages(r.messages, image_url)
        if r.prefix:
            if not extensions:
                raise SlowthinkError(
                    f"{server} rejects continue_final_message, so the prefix cannot be continued: "
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
        if template is None:
            raise SlowthinkError("a /completions request needs the chat template (prefix_mode='completions')")
        body["prompt"] = template.render(r.messages) + r.prefix
        if r.logprobs:
            body["logprobs"] = r.top_logprobs
    if body.get("stop") and extensions:
        body["include_stop_str_in_output"] = True
        body["no_stop_trim"] = True
    for k, v in extra_body.items():
        body.setdefault(k, v)
    return body


#: Step 4 of stop recovery for one completion: ``(text, generated tokens or None) -> stop or None``.
StopResolver = Callable[[str, int | None], str | None]


def parse_reply(
    r: Request, route: Route, n: int, data: dict[str, Any], resolve_stop: StopResolver
) -> list[Completion]:
    """The completions of a validated reply (at most ``n`` choices, by index): stop strings
    recovered (``resolve_stop`` when the reply does not say which stop matched), token counts
    split over the choices, logprobs past a stop dropped."""
    chat = route == "chat"
    choices = sorted(data["choices"], key=lambda c: c.get("index") or 0)[:n]
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
            stop_str = resolve_stop(text, g_tok if len(parsed) == 1 else None)
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
