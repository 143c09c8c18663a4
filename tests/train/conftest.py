"""Fixture data for the training tests: both SFT layouts, stepwise PRM records, a small image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

CONVERSATION = {
    "id": "conv-1",
    "conversations": [
        {"from": "human", "value": "What is 2 + 3?"},
        {
            "from": "gpt",
            "value": "<SUMMARY> I will solve the problem. </SUMMARY> <CONCLUSION> 5 </CONCLUSION>",
        },
    ],
}
IMAGE_CONVERSATION = {
    "id": "conv-img",
    "image": "red.png",
    "conversations": [
        {"from": "human", "value": "<image>\nWhich option is correct?"},
        {"from": "gpt", "value": "<CONCLUSION> B </CONCLUSION>"},
    ],
}
ATOMIC_STEP = {
    "id": "p1#2",
    "question": "What is 10 - 4?",
    "history": ["Step 1: We add the numbers."],
    "step": "Step 2: The answer is 6.",
}
#: Stepwise PRM records: the same question with a good and a bad second step, and a soft label.
STEPWISE = [
    {
        "id": "a",
        "prompt": "What is 2 + 3?",
        "completions": ["We add the numbers.", "The answer is 5."],
        "labels": [True, True],
    },
    {
        "id": "b",
        "prompt": "What is 2 + 3?",
        "completions": ["We add the numbers.", "The answer is 42."],
        "labels": [True, False],
    },
    {"id": "c", "prompt": "What is 10 - 4?", "completions": ["The answer is 7."], "labels": [0.2]},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "red.png")
    return tmp_path
