"""Training: ``slowthink train sft | prm | export`` (AtomThink's and LLaVA-CoT's other half).

- :mod:`slowthink.train.data`: the record formats read (LLaVA conversations and AtomThink per-step
  records for SFT; TRL's stepwise records with soft labels for PRMs).
- :mod:`slowthink.train.sft`: supervised fine-tuning (TRL ``SFTTrainer``), loss on the assistant's
  tokens only, text LMs and VLMs (LLaVA, Qwen2-VL, Mllama), full or LoRA (PEFT).
- :mod:`slowthink.train.prm`: process reward models (``step_tag`` / ``token_cls``) whose inputs are
  built by the ``prm`` scorer itself; the folder loads as ``--scorer prm:DIR``.
- :mod:`slowthink.train.export`: a trained Llama policy back to GGUF for ``--engine llamacpp``.
- :mod:`slowthink.train.recipe`: hyper-parameters from YAML (``recipes/train/``).
- :mod:`slowthink.train.run`: what both trainers share (model folder, LoRA, checkpoints, summary).

torch, transformers, trl, peft and datasets are imported inside functions only.
"""

from slowthink.train.data import ChatExample, StepExample, load_sft, load_stepwise
from slowthink.train.export import export_gguf
from slowthink.train.prm import train_prm
from slowthink.train.recipe import Recipe
from slowthink.train.run import RunResult
from slowthink.train.sft import train_sft

__all__ = [
    "ChatExample",
    "Recipe",
    "RunResult",
    "StepExample",
    "export_gguf",
    "load_sft",
    "load_stepwise",
    "train_prm",
    "train_sft",
]
