"""Input wrappers that process reward models were trained with (see :mod:`slowthink.scorers.prm`).

These are not instructions to a policy: a PRM scores steps best when its input looks like its
training data, so the texts below are copied from the model cards and the papers' code.
"""

QWEN_MATH_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
"""Qwen2.5-Math-PRM-7B/72B model card: the system turn of every scored conversation."""

STEP_NUMBER = "Step {k}: "
"""Math-Shepherd: every step starts with ``Step k:`` (added to a step that lacks it)."""

TEMPLATES: dict[str, str] = {
    "prm.qwen_math.system": QWEN_MATH_PRM_SYSTEM,
    "prm.step_number": STEP_NUMBER,
}
