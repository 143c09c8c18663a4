"""``slowthink serve``: an OpenAI-compatible front over :func:`slowthink.search.solve`.

- :mod:`.models`: a model name (``majority?n=8``, ``step_beam?n=4&beam=2&scorer=prm:DIR``) as a
  strategy and its settings, checked with ``make_config`` / ``require``.
- :mod:`.messages`: an OpenAI chat request as a :class:`~slowthink.types.Problem` (images from
  ``data:`` URLs, local files when allowed); a Trace as a completion body or stream chunks.
- :mod:`.batcher`: concurrent requests for the same model and settings coalesced into one ``solve``
  call per batching window, run on one worker thread (engines are not thread-safe).
- :mod:`.app`: the Starlette app (``/v1/chat/completions``, ``/v1/models``), its limits and errors.

Starlette and uvicorn are imported inside the functions that build and run the server (the ``serve``
extra), so ``import slowthink.serve`` stays light.
"""

from __future__ import annotations

from slowthink.serve.app import ServeConfig, Service, build_app, run_server
from slowthink.serve.batcher import Batcher
from slowthink.serve.models import DEFAULT_MODELS, ModelChoice, parse_model

__all__ = [
    "DEFAULT_MODELS",
    "Batcher",
    "ModelChoice",
    "ServeConfig",
    "Service",
    "build_app",
    "parse_model",
    "run_server",
]
