"""Options of the ``openai`` engine (CLI/YAML engine options map 1:1 to the fields)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from slowthink.types import SlowthinkError

PREFIX_MODES: tuple[str, ...] = ("auto", "continue", "completions")


@dataclass
class OpenAIOptions:
    """Options of :class:`~slowthink.engines.openai.OpenAIEngine` (CLI/YAML engine options map 1:1 to these fields)."""

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
