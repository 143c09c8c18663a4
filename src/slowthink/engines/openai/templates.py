"""Chat templates for the ``openai`` engine's ``completions`` prefix mode.

In ``completions`` mode the engine renders the chat template itself and calls ``/completions`` with
``prompt = rendered chat + prefix``. The template comes from the engine option ``chat_template`` (a
``.gguf`` file, a Hugging Face folder or ``tokenizer_config.json``, a ``.jinja`` file, the name
``chatml``, or the Jinja text itself, see :func:`load_chat_template`); when not given, from the
server (llama.cpp's ``/props``) or, when the served model id is a local ``.gguf`` path
(llama-cpp-python's server), from that file's metadata (:func:`gguf_chat_template`, read by
:func:`read_gguf_metadata` without loading the model). Rendering (:class:`ChatTemplate`) follows
transformers / llama.cpp: a sandboxed Jinja environment with ``raise_exception``, ``strftime_now``
and a ``tojson`` filter. A leading BOS token is stripped from the rendered text because servers
add it. Text only: images need a chat endpoint.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slowthink.types import Message, SlowthinkError

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
#: Named chat templates accepted by ``chat_template``.
NAMED_TEMPLATES: dict[str, str] = {"chatml": CHATML_TEMPLATE}


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
