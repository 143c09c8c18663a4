"""Prompt of the LLM grading judge (MathVerse-style answer-equivalence check)."""

GRADE_SYSTEM = "You check whether a student's final answer to a math question matches the reference answer."

GRADE_USER = (
    "Question:\n{question}\n\n"
    "Reference answer: {gold}\n"
    "Student's final answer: {pred}\n\n"
    "Do the two answers mean the same thing? Ignore wording, units written or omitted, formatting "
    "and equivalent forms (0.5 = 1/2 = 50%); a different value, a missing part or a different option "
    "is not the same. Reply in exactly this format, with nothing else: "
    '"Judgement: 1" (the same) or "Judgement: 0" (different).'
)

GRADE_PREFIX = "Judgement:"

TEMPLATES: dict[str, str] = {
    "grading.judge.system": GRADE_SYSTEM,
    "grading.judge.user": GRADE_USER,
    "grading.judge.prefix": GRADE_PREFIX,
}

# MM-Vet's GPT grader prompt, as published by MM-Vet (yuweihao/MM-Vet, mm-vet_evaluator) and used by
# VLMEvalKit (vlmeval/dataset/utils/mmvet.py): a few-shot table the grader completes with a
# correctness score 0.0-1.0. The text, the blank lines and the trailing `` | `` of the last row are
# the upstream prompt's; :func:`slowthink.grading.mmvet.mmvet_prompt` fills the last row.
MMVET_PROMPT = """
Compare the ground truth and prediction from AI models, to give a correctness score for the prediction.
<AND> in the ground truth means it is totally right
only when all elements in the ground truth are present in the prediction,
and <OR> means it is totally right when any one element in the ground truth is present in the prediction.
The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right).
Just complete the last space of the correctness score.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0
What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries
Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes,
while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues
because the names of these countries do not accurately represent their landscapes. |
The meme talks about Iceland and Greenland. It's pointing out that despite their names,
Iceland is not very icy and Greenland isn't very green. | 0.4
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries
Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes,
while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues
because the names of these countries do not accurately represent their landscapes. |
The meme is using humor to point out the misleading nature of Iceland's and Greenland's names.
Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow.
The text 'This is why I have trust issues' is a playful way to suggest
that these contradictions can lead to distrust or confusion.
The humor in this meme is derived from the unexpected contrast between the names of the countries
and their actual physical characteristics. | 1.0
"""

#: The row the grader completes: question | ground truth | prediction | (its score).
MMVET_ROW = "\n{question} | {gold} | {prediction} | "

TEMPLATES.update({"grading.mmvet.prompt": MMVET_PROMPT, "grading.mmvet.row": MMVET_ROW})
