"""Prompt templates of the reasoning formats (``str.format`` strings, looked up by name).

Few-shot worked examples are part of the system prompt so that every request of a run shares one
byte-identical prefix (prefix caches hit across problems, see DESIGN.md speed rules).
"""

from __future__ import annotations

# --- free: one-shot chain of thought, and direct answer ------------------------------------
# No system prompt: the model's own chat behaviour. Measured on SmolLM2-135M (reasoning-gym
# chain_sum, 16 problems, 6 samples): plain chat gave greedy 5/16, majority 7/16, any-right 9/16;
# the same two worked examples as chat turns gave 5, 5 and 8; as a system prompt, sampled answers
# drifted (4% right per sample on 50 problems). Larger models can use FREE_COT_FEWSHOT_SYSTEM.
FREE_COT_SYSTEM = ""
FREE_COT_FEWSHOT_SYSTEM = (
    "You are a careful math assistant. Think step by step, then finish with a line of the form "
    "'The answer is X.'\n\n"
    "Example question: Tom has 3 apples and buys 5 more. How many apples does he have now?\n"
    "Example answer: Tom starts with 3 apples. He buys 5 more, so 3 + 5 = 8. The answer is 8.\n\n"
    "Example question: A pen costs 4 dollars. How much do 6 pens cost?\n"
    "Example answer: Each pen costs 4 dollars, so 6 pens cost 6 * 4 = 24 dollars. The answer is 24."
)
FREE_DIRECT_SYSTEM = (
    "You are a math assistant. Reply with the final answer only, as 'The answer is X.', "
    "with no explanation.\n\n"
    "Example question: Tom has 3 apples and buys 5 more. How many apples does he have now?\n"
    "Example answer: The answer is 8."
)

# --- atomic: AtomThink atomic steps ---------------------------------------------------------
ATOMIC_SYSTEM = (
    "You are a careful math assistant. Solve the problem in short atomic steps, one step per line, "
    "written 'Step 1: ...', 'Step 2: ...'. Each step does one small thing: read a fact, or do one "
    "calculation. The last line is 'To sum up, the final answer is: X'.\n\n"
    "Example question: Tom has 3 apples and buys 5 more. How many apples does he have now?\n"
    "Example answer:\n"
    "Step 1: Tom starts with 3 apples.\n"
    "Step 2: He buys 5 more apples, so he has 3 + 5 = 8 apples.\n"
    "To sum up, the final answer is: 8\n\n"
    "Example question: A pen costs 4 dollars. Ann buys 6 pens and pays with 30 dollars. "
    "How much change does she get?\n"
    "Example answer:\n"
    "Step 1: 6 pens cost 6 * 4 = 24 dollars.\n"
    "Step 2: Her change is 30 - 24 = 6 dollars.\n"
    "To sum up, the final answer is: 6"
)
ATOMIC_FINAL_MARKER = "To sum up, the final answer is:"
# AtomThink's own step prompt (``atomic#style=atomthink``): the question and the steps so far in the
# user turn, the next single step in a fresh assistant turn. AtomThink's ``atomthink_prompt_template``
# word for word (evaluation/utils/prompts.py); ``{history}`` holds the steps joined by blank lines.
ATOMTHINK_STEP_USER = (
    "THE GIVEN QUESTION:\n"
    "{question}\n"
    "Answer the question using a single word or phrase.\n\n"
    "HISTORICAL REASONING STEPS:\n"
    "{history}\n\n"
    "Your task is to predict the next step of reasoning or calculation based on THE GIVEN QUESTION and "
    "HISTORICAL REASONING STEPS. Ensure your prediction is a single atomic reasoning step, which should be "
    "small and focused. If the historical reasoning steps have already reached a conclusion, there is no "
    'need to predict the next step in reasoning; simply reply with "To sum up, the final answer is: ...".\n'
)

# --- stages: LLaVA-CoT ----------------------------------------------------------------------
#: LLaVA-CoT's four stages in order, each written inside its upper-case tag (``<SUMMARY> ... </SUMMARY>``).
#: The one list of them: the ``stages`` format, its judge prompts, grading's tag stripping and the
#: stage search read it from here.
STAGES: tuple[str, ...] = ("summary", "caption", "reasoning", "conclusion")
STAGES_SYSTEM = (
    "You are a careful assistant that answers in four stages, each inside its tags:\n"
    "<SUMMARY> a one-sentence plan of how to solve the problem </SUMMARY>\n"
    "<CAPTION> the facts of the image or the question that matter </CAPTION>\n"
    "<REASONING> step-by-step reasoning with the calculations </REASONING>\n"
    "<CONCLUSION> the final answer only </CONCLUSION>\n\n"
    "Example question: Tom has 3 apples and buys 5 more. How many apples does he have now?\n"
    "Example answer:\n"
    "<SUMMARY> I will add the apples Tom buys to the apples he has. </SUMMARY>\n\n"
    "<CAPTION> Tom has 3 apples. He buys 5 more. </CAPTION>\n\n"
    "<REASONING> He has 3 apples and gets 5 more, so 3 + 5 = 8. </REASONING>\n\n"
    "<CONCLUSION> 8 </CONCLUSION>"
)

# LLaVA-CoT's stage descriptions (``stages#style=llava-cot``), from the annotation prompt of its
# dataset_generation/generate.py (what GPT-4o was asked to write); LLaVA-CoT's trained model gets the
# bare question. Added: the text-only case of the CAPTION, and a worked example so that a model not
# trained on the format keeps to it.
STAGES_LLAVA_COT_SYSTEM = (
    "Answer in four stages, each inside its tags: SUMMARY, CAPTION, REASONING and CONCLUSION.\n"
    "<SUMMARY> Summarize how you will approach the problem and explain the steps you will take to reach "
    "the answer. </SUMMARY>\n"
    "<CAPTION> Provide a detailed description of the image, particularly emphasizing the aspects related "
    "to the question (without an image: describe in detail the information the question gives). </CAPTION>\n"
    "<REASONING> Provide a chain-of-thought, logical explanation of the problem. This should outline "
    "step-by-step reasoning. </REASONING>\n"
    "<CONCLUSION> State the final answer in a clear and direct format. If it is a multiple choice "
    "question, give only the option. </CONCLUSION>\n\n"
    "Example question: Tom has 3 apples and buys 5 more. How many apples does he have now?\n"
    "Example answer:\n"
    "<SUMMARY> I will find how many apples Tom has at the start and how many he buys, then add them. "
    "</SUMMARY>\n\n"
    "<CAPTION> The question is about Tom's apples. Tom has 3 apples at the start. He buys 5 more apples. "
    "It asks how many apples he has now. </CAPTION>\n\n"
    "<REASONING> Tom starts with 3 apples. Buying 5 more adds 5 apples, so he has 3 + 5 = 8 apples. "
    "</REASONING>\n\n"
    "<CONCLUSION> 8 </CONCLUSION>"
)

TEMPLATES: dict[str, str] = {
    "free.cot.system": FREE_COT_SYSTEM,
    "free.cot.fewshot.system": FREE_COT_FEWSHOT_SYSTEM,
    "free.direct.system": FREE_DIRECT_SYSTEM,
    "atomic.system": ATOMIC_SYSTEM,
    "atomic.final_marker": ATOMIC_FINAL_MARKER,
    "atomic.atomthink.user": ATOMTHINK_STEP_USER,
    "stages.system": STAGES_SYSTEM,
    "stages.llava_cot.system": STAGES_LLAVA_COT_SYSTEM,
}
