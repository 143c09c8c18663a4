"""Process reward models by protocol on tiny random models built offline: shapes, ranges, batched
forward passes with padding, caching per (problem, prefix), and the VLM path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from slowthink.scorers import load_scorer
from slowthink.scorers.base import ScoreQuery, StepScorer
from slowthink.scorers.prm import PRMConfig, PRMScorer
from slowthink.types import Problem, SlowthinkError

pytestmark = pytest.mark.hf

APPLES = Problem("apples", "Tom has 3 apples and buys 5 more. How many apples does he have now?")
PENS = Problem("pens", "A pen costs 4 dollars. How much do 6 pens cost?")
S1 = "Step 1: Tom starts with 3 apples.\n"
S2 = "Step 2: He buys 5 more, so 3 + 5 = 8.\n"
S2_BAD = "Step 2: He buys 5 more, so 3 + 5 = 9.\n"
S3 = "To sum up, the final answer is: 8\n"


@pytest.fixture(params=["step_tag", "token_cls"])
def prm(request, tiny_step_tag_prm: Path, tiny_token_cls_prm: Path) -> PRMScorer:
    folder = tiny_step_tag_prm if request.param == "step_tag" else tiny_token_cls_prm
    return load_scorer(f"prm:{folder}#{request.param}")


def _probabilities(scores) -> bool:
    return all(s is not None and 0.0 < s < 1.0 for s in scores)


def test_scores_every_step_in_one_batched_forward(prm: PRMScorer) -> None:
    assert isinstance(prm, StepScorer) and prm.name == "prm"
    queries = [
        ScoreQuery(APPLES, [S1, S2]),
        ScoreQuery(APPLES, [S1, S2_BAD]),
        ScoreQuery(PENS, ["Step 1: 6 * 4 = 24.\n"]),
    ]
    out = prm.score(queries)
    assert prm.forward_passes == 1 and prm.sequences_scored == 3
    assert [len(r.scores) for r in out] == [2, 2, 1]
    assert all(_probabilities(r.scores) for r in out)
    # Causal model: the shared first step gets the same score on both paths, padding or not.
    assert out[0].scores[0] == pytest.approx(out[1].scores[0], abs=1e-5)
    assert out[0].scores[1] != out[1].scores[1]
    assert all(r.calls == 1 and r.prompt_tokens > 10 and r.generated_tokens == 0 for r in out)


def test_each_step_is_scored_once(prm: PRMScorer) -> None:
    first = prm.score([ScoreQuery(APPLES, [S1, S2])])
    assert prm.forward_passes == 1
    again = prm.score([ScoreQuery(APPLES, [S1, S2])])
    assert prm.forward_passes == 1 and again[0].scores == first[0].scores
    assert again[0].calls == 0 and again[0].prompt_tokens == 0
    # A new step on a cached prefix: one more pass, the old scores are kept.
    deeper = prm.score([ScoreQuery(APPLES, [S1, S2, S3])])
    assert prm.forward_passes == 2 and deeper[0].scores[:2] == first[0].scores
    # Same steps for another problem: not served from the apples cache.
    prm.score([ScoreQuery(PENS, [S1])])
    assert prm.forward_passes == 3


def test_padding_does_not_change_scores(
    prm: PRMScorer, tiny_step_tag_prm: Path, tiny_token_cls_prm: Path
) -> None:
    long_path = ScoreQuery(APPLES, [S1, S2, S3, "Step 4: This is a long extra step about the 8 apples.\n"])
    short_path = ScoreQuery(PENS, ["Step 1: 6 * 4 = 24.\n"])
    batched = prm.score([long_path, short_path])
    folder = tiny_step_tag_prm if prm.config.protocol == "step_tag" else tiny_token_cls_prm
    alone = PRMScorer(folder, protocol=prm.config.protocol, batch_size=1)
    single = alone.score([long_path, short_path])
    assert alone.forward_passes == 2 and prm.forward_passes == 1
    for b, s in zip(batched, single):
        assert b.scores == pytest.approx(s.scores, abs=1e-5)


def test_a_path_that_prefixes_another_is_not_forwarded_twice(prm: PRMScorer) -> None:
    out = prm.score([ScoreQuery(APPLES, [S1]), ScoreQuery(APPLES, [S1, S2]), ScoreQuery(APPLES, [S1, S2])])
    assert prm.sequences_scored == 1
    assert out[0].scores[0] == out[1].scores[0] and out[1].scores == out[2].scores


def test_read_positions_are_the_tags(tiny_step_tag_prm: Path, tiny_token_cls_prm: Path) -> None:
    tag = PRMScorer(tiny_step_tag_prm, protocol="step_tag")
    seq = tag.encode(ScoreQuery(APPLES, [S1, S2]))
    assert [seq.ids[p] for p in seq.positions] == [tag.tag_ids[-1]] * 2
    assert seq.ids[0] == tag.tokenizer.bos_token_id
    assert tag.tokenizer.decode(seq.ids[1:]).startswith(APPLES.question + " Step 1:")
    assert tag.tokenizer.decode(seq.ids).endswith(
        "Tom starts with 3 apples. ки\nStep 2: He buys 5 more, so 3 + 5 = 8. ки"
    )
    cls = PRMScorer(tiny_token_cls_prm, protocol="token_cls", separator="<extra_0>")
    seq = cls.encode(ScoreQuery(APPLES, [S1, S2]))
    extra = cls.tokenizer.convert_tokens_to_ids("<extra_0>")
    assert cls.sep_ids == [extra] and [seq.ids[p] for p in seq.positions] == [extra, extra]
    assert _probabilities(cls.score([ScoreQuery(APPLES, [S1, S2])])[0].scores)


def test_custom_tokens_and_labels(tiny_step_tag_prm: Path, tiny_token_cls_prm: Path) -> None:
    base = PRMScorer(tiny_step_tag_prm, protocol="step_tag").score([ScoreQuery(APPLES, [S1])])[0].scores[0]
    swapped = PRMScorer(tiny_step_tag_prm, protocol="step_tag", good_token="-", bad_token="+")
    assert swapped.score([ScoreQuery(APPLES, [S1])])[0].scores[0] == pytest.approx(1 - base, abs=1e-5)
    good1 = PRMScorer(tiny_token_cls_prm, protocol="token_cls").score([ScoreQuery(APPLES, [S1])])[0].scores[0]
    good0 = (
        PRMScorer(tiny_token_cls_prm, protocol="token_cls", good_label=0)
        .score([ScoreQuery(APPLES, [S1])])[0]
        .scores[0]
    )
    assert good0 == pytest.approx(1 - good1, abs=1e-5)


def test_long_inputs_lose_their_start(tiny_step_tag_prm: Path) -> None:
    prm = PRMScorer(tiny_step_tag_prm, protocol="step_tag", max_length=40)
    long_steps = [f"Step {i}: We add the numbers 3 + 5 = 8 again.\n" for i in range(1, 6)]
    (res,) = prm.score([ScoreQuery(APPLES, long_steps)])
    assert res.scores[0] is None and res.scores[-1] is not None and res.prompt_tokens == 40


def test_errors_name_the_fix(tiny_step_tag_prm: Path, tmp_path: Path) -> None:
    with pytest.raises(SlowthinkError, match="not found"):
        PRMScorer(tmp_path / "missing")
    with pytest.raises(SlowthinkError, match="protocol"):
        load_scorer(f"prm:{tiny_step_tag_prm}#value_head")
    with pytest.raises(SlowthinkError, match="good_token_id"):
        PRMScorer(tiny_step_tag_prm, good_token="zzqqxx+")
    with pytest.raises(SlowthinkError, match="model folder"):
        load_scorer("prm")
    with pytest.raises(ValueError):
        PRMConfig(batch_size=0)


def _tiny_models_module():
    path = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_models.py"
    if not path.is_file():
        pytest.skip("tests/fixtures/tiny_models.py (tiny VLM builders) not available")
    spec = importlib.util.spec_from_file_location("_slowthink_tiny_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_vlm_prm_sees_the_image(tmp_path: Path) -> None:
    from PIL import Image

    folder = _tiny_models_module().build_tiny_llava(tmp_path / "llava_prm")
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (40, 30), (220, 20, 20)).save(red)
    Image.new("RGB", (40, 30), (20, 20, 220)).save(blue)
    # The tiny LLaVA tokenizer has no 'ки': use a word it knows as the tag, and A/B as good/bad.
    prm = PRMScorer(folder, protocol="step_tag", step_tag="Step", good_token="A", bad_token="B")
    assert prm.is_vlm and prm.processor is not None
    steps = ["The angle is 30 degrees.", "The answer is 30."]
    q_red = ScoreQuery(Problem("r", "What is the angle?", images=[str(red)]), steps)
    q_blue = ScoreQuery(Problem("b", "What is the angle?", images=[str(blue)]), steps)
    q_text = ScoreQuery(Problem("t", "What is the angle?"), steps)
    out = prm.score([q_red, q_blue, q_text])
    assert all(_probabilities(r.scores) and len(r.scores) == 2 for r in out)
    assert prm.forward_passes == 3  # image paths go one at a time, text paths batched
    assert out[0].scores != out[1].scores  # the image changes the score
    assert out[0].prompt_tokens > out[2].prompt_tokens  # image tokens counted
    with pytest.raises(SlowthinkError, match="cannot open image"):
        prm.score([ScoreQuery(Problem("x", "?", images=[str(tmp_path / "nope.png")]), steps)])


# -- the input wrapper each PRM family was trained with ------------------------------------------

Q = APPLES.question
PLAIN_2 = "He buys 5 more, so 3 + 5 = 8.\n"  # no "Step 2:": Math-Shepherd's wrapper adds it
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
RENDERED = {
    # Math-Shepherd card: f"{question} {output}", "Step k: ... ки" joined by "\n", BOS from encode.
    "math-shepherd": f"<bos>{Q} Step 1: Tom starts with 3 apples. ки\nStep 2: He buys 5 more, so 3 + 5 = 8. ки",
    # AtomThink's code: question + " " + " \n\n\n\n\n".join(steps) + " \n\n\n\n\n".
    "atomthink": f"<bos>{Q} Step 1: Tom starts with 3 apples. \n\n\n\n\nHe buys 5 more, so 3 + 5 = 8. \n\n\n\n\n",
    # TRL PRMTrainer: bos + prompt + (step + separator) per step.
    "trl": f"<bos>{Q}Step 1: Tom starts with 3 apples.\nHe buys 5 more, so 3 + 5 = 8.\n",
    # Qwen2.5-Math-PRM card: system, user = question, assistant = "<extra_0>".join(steps) + "<extra_0>".
    "qwen2.5-math-prm": (
        f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n<|im_start|>user\n{Q}<|im_end|>\n"
        "<|im_start|>assistant\nStep 1: Tom starts with 3 apples.<extra_0>He buys 5 more, so 3 + 5 = 8.<extra_0>"
        "<|im_end|>\n"
    ),
}
# The tiny chat PRM is a plain LlamaForTokenClassification: load it as such, no remote code.
LOCAL = "auto_class=token_cls,trust_remote_code=false"


def _folder(preset: str, step_tag: Path, token_cls: Path, chat: Path) -> Path:
    return {"math-shepherd": step_tag, "atomthink": step_tag, "trl": token_cls}.get(preset, chat)


@pytest.mark.parametrize("preset", list(RENDERED))
def test_rendered_input_is_the_model_cards(
    preset: str, tiny_step_tag_prm: Path, tiny_token_cls_prm: Path, tiny_chat_prm: Path
) -> None:
    folder = _folder(preset, tiny_step_tag_prm, tiny_token_cls_prm, tiny_chat_prm)
    extra = f",{LOCAL}" if preset == "qwen2.5-math-prm" else ""
    prm = load_scorer(f"prm:{folder}#{preset}{extra}")
    steps = [S1, PLAIN_2]
    text = prm.render(APPLES, steps)
    assert text == RENDERED[preset]
    # The ids the model gets are that text, and every read position is a tag's / separator's last token.
    seq = prm.encode(ScoreQuery(APPLES, steps))
    assert prm.tokenizer.decode(seq.ids) == text
    closer = prm.tag_ids[-1] if prm.config.protocol == "step_tag" else prm.sep_ids[-1]
    assert [seq.ids[p] for p in seq.positions] == [closer, closer]
    assert _probabilities(prm.score([ScoreQuery(APPLES, steps)])[0].scores)


def test_protocol_alone_means_its_family_preset(tiny_step_tag_prm: Path, tiny_token_cls_prm: Path) -> None:
    shepherd = load_scorer(f"prm:{tiny_step_tag_prm}")
    assert (
        shepherd.config.preset == "math-shepherd"
        and shepherd.render(APPLES, [S1, PLAIN_2]) == RENDERED["math-shepherd"]
    )
    trl = load_scorer(f"prm:{tiny_token_cls_prm}#token_cls")
    assert trl.config.preset == "trl" and trl.render(APPLES, [S1, PLAIN_2]) == RENDERED["trl"]


def test_qwen_scores_match_the_model_card_procedure(tiny_chat_prm: Path) -> None:
    """Encode the card's whole conversation string at once, read the head at every <extra_0>:
    the scorer's piecewise input gives the same ids and the same scores."""
    import torch
    from transformers import AutoTokenizer

    prm = load_scorer(f"prm:{tiny_chat_prm}#qwen2.5-math-prm,{LOCAL}")
    steps = [S1, S2, S3]
    tok = AutoTokenizer.from_pretrained(str(tiny_chat_prm))
    conversation = tok.apply_chat_template(
        [
            {"role": "system", "content": QWEN_SYSTEM},
            {"role": "user", "content": Q},
            {"role": "assistant", "content": "<extra_0>".join(s.strip() for s in steps) + "<extra_0>"},
        ],
        tokenize=False,
        add_generation_prompt=False,
    )
    ids = tok.encode(conversation, add_special_tokens=False)
    assert prm.encode(ScoreQuery(APPLES, steps)).ids == ids
    with torch.inference_mode():
        logits = prm.model(input_ids=torch.tensor([ids])).logits[0]
    sep = tok.convert_tokens_to_ids("<extra_0>")
    card = torch.softmax(logits[torch.tensor(ids) == sep], dim=-1)[:, 1].tolist()
    assert prm.score([ScoreQuery(APPLES, steps)])[0].scores == pytest.approx(card, abs=1e-5)


def test_system_prompt_from_the_spec(tiny_chat_prm: Path) -> None:
    steps = [S1, PLAIN_2]
    default = load_scorer(f"prm:{tiny_chat_prm}#qwen2.5-math-prm,{LOCAL}")
    # Quoted: the value may hold the spec's separators (, + : #).
    custom = load_scorer(
        f'prm:{tiny_chat_prm}#qwen2.5-math-prm,{LOCAL},system="Check: one step, then the next + #1."'
    )
    assert custom.config.system == "Check: one step, then the next + #1."
    assert custom.render(APPLES, steps) == RENDERED["qwen2.5-math-prm"].replace(
        QWEN_SYSTEM, custom.config.system
    )
    none = load_scorer(f"prm:{tiny_chat_prm}#qwen2.5-math-prm,{LOCAL},system=")
    assert none.render(APPLES, steps).startswith(f"<|im_start|>user\n{Q}<|im_end|>\n")
    # The system turn is part of what the model reads: it changes the scores (causal attention).
    scores = [p.score([ScoreQuery(APPLES, steps)])[0].scores for p in (default, custom, none)]
    assert scores[0] != scores[1] and scores[0] != scores[2]
    # The wrapper on a bare protocol, as in the issue: token_cls + chat + a system prompt.
    bare = load_scorer(f'prm:{tiny_chat_prm}#token_cls,chat=true,separator=<extra_0>,system="Be exact."')
    assert bare.render(APPLES, [S1]) == (
        f"<|im_start|>system\nBe exact.<|im_end|>\n<|im_start|>user\n{Q}<|im_end|>\n"
        "<|im_start|>assistant\nStep 1: Tom starts with 3 apples.<extra_0><|im_end|>\n"
    )
    # A combination still splits at '+' outside the quotes.
    mixed = load_scorer(f'prm:{tiny_chat_prm}#qwen2.5-math-prm,{LOCAL},system="a+b":2+symbolic:1')
    assert mixed.name == "prm+symbolic"


def test_wrapper_errors_are_one_clear_line(
    tiny_step_tag_prm: Path, tiny_token_cls_prm: Path, tiny_chat_prm: Path
) -> None:
    with pytest.raises(SlowthinkError, match="scorer 'prm' has no option 'sytem'; valid: .*system"):
        load_scorer(f"prm:{tiny_chat_prm}#qwen2.5-math-prm,sytem=Be brief")
    with pytest.raises(SlowthinkError, match="unknown PRM protocol or preset 'qwen'.*qwen2.5-math-prm"):
        load_scorer(f"prm:{tiny_chat_prm}#qwen")
    with pytest.raises(SlowthinkError, match="uses protocol 'token_cls', not 'step_tag'"):
        PRMConfig(protocol="step_tag", preset="trl")
    with pytest.raises(SlowthinkError, match="has none: set chat=false"):
        load_scorer(f"prm:{tiny_token_cls_prm}#token_cls,chat=true")
    with pytest.raises(SlowthinkError, match="bad 'prm' option"):
        load_scorer(f"prm:{tiny_step_tag_prm}#step_tag,chat")
