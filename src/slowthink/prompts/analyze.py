"""Prompt templates of the capability analysis (``slowthink analyze capabilities``).

``analyze.capability`` asks a model to label a numbered batch of reasoning steps with one capability
each; placeholders ``{capabilities}`` (one ``- name: description`` line each) and ``{steps}`` (one
``[k] text`` block each). The reply is one ``k: name`` line per step, parsed by
:mod:`slowthink.analyze.classify`.
"""

from __future__ import annotations

CAPABILITY_SYSTEM = (
    "You are an expert annotator of step-by-step solutions. You label each reasoning step with the one "
    "capability it mainly exercises, and answer in exactly the format you are asked for."
)

CAPABILITY = (
    "Capabilities:\n{capabilities}\n\n"
    "Steps (each from some solution; judge each on its own):\n{steps}\n\n"
    "For each step, write one line `k: capability_name` with the step number k and the name of the "
    "capability from the list above that the step mainly exercises. Write one line per step, in order, "
    "and nothing else."
)

TEMPLATES: dict[str, str] = {
    "analyze.capability.system": CAPABILITY_SYSTEM,
    "analyze.capability": CAPABILITY,
}
