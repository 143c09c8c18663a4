from __future__ import annotations

import pytest

from slowthink.formats import get_format
from slowthink.formats.atomic import AtomicFormat
from slowthink.formats.stages import StagesFormat
from slowthink.prompts import user_prompt
from slowthink.types import Completion, Problem, SlowthinkError


class TestStagesParse:
    fmt = StagesFormat()

    def test_well_formed(self):
        r = (
            "<SUMMARY> plan </SUMMARY>\n\n<CAPTION> facts </CAPTION>\n\n"
            "<REASONING> 3 + 5 = 8 </REASONING>\n\n<CONCLUSION> 8 </CONCLUSION>"
        )
        p = self.fmt.parse(r)
        assert [s.kind for s in p.steps] == ["summary", "caption", "reasoning", "conclusion"]
        assert p.answer_text == "8" and p.complete and p.notes == []

    @pytest.mark.parametrize(
        "response, answer, note",
        [
            # closing tag missing: content runs to the next tag
            (
                "<SUMMARY> plan <CAPTION> x </CAPTION><REASONING> r </REASONING><CONCLUSION> B </CONCLUSION>",
                "B",
                "</SUMMARY> missing",
            ),
            # conclusion never closed (runaway text)
            (
                "<SUMMARY> a </SUMMARY><CONCLUSION> 42 and then more text",
                "42 and then more text",
                "</CONCLUSION> missing",
            ),
            # duplicated tag: last one kept
            ("<CONCLUSION> 1 </CONCLUSION><CONCLUSION> 2 </CONCLUSION>", "2", "duplicated <CONCLUSION>"),
            # stray closing tag
            ("</SUMMARY><CONCLUSION> 5 </CONCLUSION>", "5", "stray closing tag </SUMMARY>"),
            # no tags at all
            ("The answer is 7.", "The answer is 7.", "no stage tags"),
            # lower-case and spaced tags
            ("< summary > p </summary><conclusion> C </conclusion>", "C", None),
            # no conclusion: fall back to reasoning
            ("<REASONING> so it is 9 </REASONING>", "so it is 9", "no CONCLUSION"),
        ],
    )
    def test_malformed(self, response, answer, note):
        p = self.fmt.parse(response)
        assert p.answer_text == answer
        if note:
            assert any(note in n for n in p.notes), p.notes

    def test_empty(self):
        p = self.fmt.parse("")
        assert p.answer_text is None and p.steps == [] and not p.complete

    def test_next_step_walks_stages(self):
        prefix = ""
        kinds = []
        while (spec := self.fmt.next_step(prefix)) is not None:
            kinds.append(spec.kind)
            assert spec.stop[0] == f"</{spec.kind.upper()}>"
            prefix += spec.opener + "x " + spec.stop[0]
        assert kinds == ["summary", "caption", "reasoning", "conclusion"]
        assert self.fmt.parse(prefix).complete

    def test_finish_step_closes_and_cuts(self):
        spec = self.fmt.next_step("")
        text, note = self.fmt.finish_step(spec, Completion("plan </SUMMARY>", stop_str="</SUMMARY>"))
        assert text == "<SUMMARY> plan </SUMMARY>" and note is None
        text, note = self.fmt.finish_step(spec, Completion("plan <CAPTION>", stop_str="<CAPTION>"))
        assert text == "<SUMMARY> plan </SUMMARY>" and "cut" in note
        text, note = self.fmt.finish_step(spec, Completion("runaway", finish_reason="length"))
        assert text.endswith("</SUMMARY>") and "not closed" in note


class TestAtomic:
    fmt = AtomicFormat()

    def test_parse(self):
        r = "Step 1: 4 * 3 = 12.\nStep 2: 12 - 5 = 7.\nTo sum up, the final answer is: 7\nStep 3: junk"
        p = self.fmt.parse(r)
        assert [s.kind for s in p.steps] == ["step", "step", "final"]
        assert p.answer_text == "7"
        assert any("after the final answer" in n for n in p.notes)

    def test_glued_steps_are_split(self):
        p = self.fmt.parse("Step 1: a. Step 2: b. The answer is 3")
        assert [s.text for s in p.steps][:2] == ["Step 1: a.", "Step 2: b. The answer is 3"]
        assert p.answer_text == "3"

    def test_no_final(self):
        p = self.fmt.parse("Step 1: hmm\nStep 2: hmm hmm")
        assert p.answer_text is None and not p.complete and "no final-answer step" in p.notes

    @pytest.mark.parametrize(
        "text, history, reason",
        [
            ("   \n", [], "empty step"),
            ("Step 1: " + "x" * 500, [], "too long"),
            ("Step 1: a = 1. Step 2: b = 2.", [], "several 'Step' markers"),
            ("Step 2: The cat is big. The cat is big.", [], "repeated sentences"),
            ("Step 2: 4 * 3 = 12 pencils.\n", ["Step 1: 4 * 3 = 12 pencils.\n"], "near-copy"),
            ("Step 2: 12 - 5 = 7.\n", ["Step 1: 4 * 3 = 12.\n"], None),
        ],
    )
    def test_validate(self, text, history, reason):
        got = self.fmt.validate_step(text, history)
        assert (got is None) if reason is None else (reason in got)

    def test_next_step_stops_after_final(self):
        assert self.fmt.next_step("Step 1: x\nTo sum up, the final answer is: 3\n") is None
        spec = self.fmt.next_step("Step 1: x")
        assert spec.opener == "\n" and spec.stop == ["\n"]


def test_free_parse_and_unknown_format():
    p = get_format("free").parse("3 + 5 = 8. The answer is 8.")
    assert p.answer_text == "The answer is 8." and p.complete
    p = get_format("free").parse("I think 8")
    assert p.answer_text == "I think 8" and "no answer cue" in p.notes[0]
    with pytest.raises(SlowthinkError, match="unknown format 'nope'"):
        get_format("nope")


def test_user_prompt_choices():
    p = Problem(id="1", question="Which?", choices=["red", "blue"])
    assert "(A) red\n(B) blue" in user_prompt(p)
    p = Problem(id="2", question="Which?", choices=list("ABCDE"))
    assert "A, B, C, D, E" in user_prompt(p)
