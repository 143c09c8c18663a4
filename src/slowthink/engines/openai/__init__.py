"""``openai``: any OpenAI-compatible HTTP server (vLLM, SGLang, llama.cpp server, OpenAI).

Spec: ``openai:http://127.0.0.1:8000/v1#model-name`` (the model may be left out when the server
serves one model: it is read from ``/v1/models``). There is no default endpoint.

One module per concern; each module's docstring describes its part of the behaviour:

* :mod:`.engine`: :class:`OpenAIEngine`: set-up (model, prefix mode ``auto`` / ``continue`` /
  ``completions``, chat template), routing, concurrent requests, ``n`` (filled with single
  requests when the server drops it), failed requests as ``finish_reason='error'`` completions.
* :mod:`.pool`: :class:`OpenAIPool`: several servers of one model as one engine (a spec listing
  several endpoints): least-outstanding dispatch, health checks, requests of a dead endpoint re-sent.
* :mod:`.options`: :class:`OpenAIOptions` (the engine options), :data:`OPTION_NAMES`.
* :mod:`.http`: the HTTP client: retries with backoff (429, 5xx, connection errors, one read
  timeout, malformed replies, :func:`reply_problem`), error messages, the API key kept out of
  every text.
* :mod:`.templates`: chat templates for ``completions`` mode (Jinja :class:`ChatTemplate`, from
  a file, a name, the server or GGUF metadata).
* :mod:`.stops`: stop-string recovery (:func:`recover_stop`; the token-count step for servers
  that say nothing).
* :mod:`.bodies`: request bodies and reply parsing (token counts split over choices).

Images go as ``data:`` URLs (:func:`slowthink.images.image_data_url`).
"""

from slowthink.engines.openai.bodies import chat_messages, map_finish_reason, split_count
from slowthink.engines.openai.engine import OpenAIEngine, RequestResult
from slowthink.engines.openai.http import backoff_delay, reply_problem
from slowthink.engines.openai.options import OPTION_NAMES, PREFIX_MODES, OpenAIOptions
from slowthink.engines.openai.pool import POOL_OPTIONS, OpenAIPool
from slowthink.engines.openai.stops import recover_stop, stop_candidates_by_count
from slowthink.engines.openai.templates import (
    CHATML_TEMPLATE,
    ChatTemplate,
    gguf_chat_template,
    load_chat_template,
    read_gguf_metadata,
)

#: The options a user may set on the ``openai`` engine (the spec gives ``base_url`` and ``model``).
USER_OPTIONS: frozenset[str] = (OPTION_NAMES - {"base_url", "model"}) | POOL_OPTIONS

__all__ = [
    "CHATML_TEMPLATE",
    "OPTION_NAMES",
    "POOL_OPTIONS",
    "PREFIX_MODES",
    "USER_OPTIONS",
    "ChatTemplate",
    "OpenAIEngine",
    "OpenAIOptions",
    "OpenAIPool",
    "RequestResult",
    "backoff_delay",
    "chat_messages",
    "gguf_chat_template",
    "load_chat_template",
    "map_finish_reason",
    "read_gguf_metadata",
    "recover_stop",
    "reply_problem",
    "split_count",
    "stop_candidates_by_count",
]
