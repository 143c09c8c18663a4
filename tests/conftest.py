from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.tiny_models", "tests.fixtures.ray_cluster"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smol_engine():
    """The real embedded SmolLM2-135M-Instruct GGUF on llama.cpp (one instance per test session)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (make install)")
    from slowthink.engines import load_engine

    return load_engine("llamacpp", n_ctx=2048)
