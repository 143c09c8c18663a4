"""Prompt templates of the data engine (``slowthink annotate``), by name, with a version per mode.

A mode's :data:`PROMPT_VERSIONS` entry is recorded in every annotation and is part of its dedup key
(item id, mode, teacher, prompt version): change a template of a mode, bump its version, and a
resumed run annotates the items again instead of mixing two prompt sets in one dataset.

Sources (read, not copied; see docs/ARCHITECTURE.md "Data engine" for the departures):

* ``stages``: LLaVA-CoT's GPT-4o annotation prompt and its validity judge
  (PKU-YuanGroup/LLaVA-CoT ``dataset_generation/generate.py``).
* ``atomic-dynamic``: AtomThink's dynamic prompting (Quinn777/AtomThink
  ``data_engine/generate_with_dynamic_prompt.py``): one atomic step and a next action in JSON.
* ``atomic-segment``: AtomThink's short-CoT augmentation with the reference answer
  (``utils/prompts.py`` ``prompt_w_gt``), here fed an existing solution to cut into atomic steps.
* ``negatives``: AtomThink's ``prompt_make_wrong`` (errors by kind), one step at a time.
"""

from __future__ import annotations

#: Bump a mode's version whenever one of its templates changes.
PROMPT_VERSIONS: dict[str, str] = {
    "stages": "stages-v1",
    "atomic-segment": "atomic-segment-v1",
    "atomic-dynamic": "atomic-dynamic-v1",
    "negatives": "negatives-v1",
    "rollout-labels": "rollout-labels-v2",
}

# --- stages (LLaVA-CoT) ----------------------------------------------------------------------
STAGES_USER = (
    "I have a question (with its image, if any) that I want you to answer. Strictly follow the format with "
    "four sections: SUMMARY, CAPTION, REASONING and CONCLUSION, in this order. In SUMMARY, briefly explain "
    "what steps you will take to solve the problem. In CAPTION, describe the contents of the image (without "
    "an image: the information the question gives), focusing on the details relevant to the question. In "
    "REASONING, give a step-by-step chain of thought that solves the problem. In CONCLUSION, give the final "
    "answer in a direct format; it must match the standard answer exactly. If it is a multiple-choice "
    "question, the conclusion is only the option. The format:\n"
    "<SUMMARY> ... </SUMMARY>\n<CAPTION> ... </CAPTION>\n<REASONING> ... </REASONING>\n"
    "<CONCLUSION> ... </CONCLUSION>\n"
    "(Do not forget </CONCLUSION>!)\n\n"
    "Question: {question}\n"
    "Standard answer: {answer}{hints}"
)
STAGES_HINT = "\nHint: {hint}"
STAGES_VERIFY = (
    "Evaluate whether the assistant's response is valid. Respond with 'valid' if the response is not a "
    "refusal and it agrees with the standard answer in meaning. Respond with 'invalid' if it is a refusal or "
    "differs from the standard answer in a meaningful way. A refusal means the assistant says it cannot "
    "recognise something or will not answer; a response is not a refusal just because it contains 'no'.\n"
    "Question: {question}\n"
    "Standard answer: {answer}\n"
    "Assistant's response: {response}\n"
    "Verdict:"
)

# --- atomic-dynamic (AtomThink dynamic prompting) ---------------------------------------------
DYNAMIC_SYSTEM = (
    "You are an expert assistant that solves problems one atomic step at a time. Given the question and "
    "the steps so far, write ONLY the next step: a single small, focused reasoning or calculation step "
    "that uses the facts of the question (and image). Then choose the next action: 'continue' when more "
    "steps are needed, 'verify' when this step checks an earlier result, 'final_answer' when this step "
    "reaches the answer. Reply with one JSON object and nothing else, e.g.\n"
    '{"content": "Step 1: The cost of 6 pens is 6 * 4 = 24 dollars.", "next_action": "continue"}'
)
DYNAMIC_USER = (
    "Question: {question}\n\n"
    "Steps so far:\n{history}\n\n"
    "Allowed actions: {actions}. Reply with the JSON object of step {number}."
)
DYNAMIC_NO_STEPS = "(none yet)"
DYNAMIC_CLOSE = (
    "Question: {question}\n\n"
    "Steps so far:\n{history}\n\n"
    "Give the final answer based only on these steps. Do not use JSON. Reply with exactly one line: "
    '"Step {number}: To sum up, the final answer is: ..."'
)

# --- atomic-segment (short-CoT augmentation) --------------------------------------------------
SEGMENT_USER = (
    "Rewrite the solution below as a chain of short atomic steps. Each step does one small thing (reads one "
    "fact, or does one calculation) and keeps every number of the solution it uses. Write one step per "
    "line as 'Step 1: ...', 'Step 2: ...', and end with the line "
    "'Step N: To sum up, the final answer is: X' where X is the reference answer.\n\n"
    "Question: {question}\n"
    "Solution: {solution}\n"
    "Reference answer: {answer}\n\n"
    "Atomic steps:"
)

# --- negatives (corrupted steps for PRM data) -------------------------------------------------
NEGATIVE_USER = (
    "Below is a correct step-by-step solution. Rewrite ONLY step {number} so that it contains a {error}, "
    "keeping its style and length. Reply with the new step {number} alone, starting with 'Step {number}:', "
    "and no explanation.\n\n"
    "Question: {question}\n"
    "Solution:\n{steps}\n\n"
    "Wrong step {number}:"
)
#: The kinds of error a corrupted step holds (AtomThink's list: factual, calculation, logic).
NEGATIVE_ERRORS: dict[str, str] = {
    "calculation": "calculation error (a wrong result of an operation, e.g. 3 + 2 = 6)",
    "logic": "logical error (a wrong inference or a wrong operation for the problem)",
    "misread": "misread fact (a number or fact of the question copied wrongly)",
}

TEMPLATES: dict[str, str] = {
    "annotate.stages.user": STAGES_USER,
    "annotate.stages.hint": STAGES_HINT,
    "annotate.stages.verify": STAGES_VERIFY,
    "annotate.dynamic.system": DYNAMIC_SYSTEM,
    "annotate.dynamic.user": DYNAMIC_USER,
    "annotate.dynamic.no_steps": DYNAMIC_NO_STEPS,
    "annotate.dynamic.close": DYNAMIC_CLOSE,
    "annotate.segment.user": SEGMENT_USER,
    "annotate.negative.user": NEGATIVE_USER,
    **{f"annotate.negative.error.{k}": v for k, v in NEGATIVE_ERRORS.items()},
}
