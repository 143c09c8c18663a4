"""AtomThink per-step SFT rows from rollout-labelled chains whose final answer is right (issue 14,
part 4: "fine-tune SmolLM2 on atomic-step data from the data engine").

Reads ``prm.jsonl`` files written by ``slowthink annotate --mode rollout-labels`` (TRL stepwise rows:
``prompt``, ``completions``, ``labels``), keeps each distinct chain whose LAST label is true (its
graded final answer is right), and writes one ``sft_steps.jsonl`` row per step (question, history ->
step) in the ``atomic`` line format, the format QuickThink runs in. Commands of the measured run::

    .venv/bin/python bench/sft_from_rollouts.py STUDY/labels-seed7-k4-t64/prm.jsonl \\
        STUDY/labels-sampled-seed7-n2-k2/prm.jsonl --out sft/sft_steps.jsonl
    slowthink train sft --data sft/sft_steps.jsonl --out sft/model --full --epochs 2 --lr 2e-5 \\
        --batch-size 8 --max-length 384
    slowthink train export --model sft/model --out sft/sft.gguf --dtype q8_0
    slowthink eval -b reasoning-gym:chain_sum -O size=100 -O seed=1234 -O min_terms=2 -O max_terms=2 \\
        -O min_digits=1 -O max_digits=1 -s quick --format atomic --max-tokens 256 --threads 1 \\
        [--engine llamacpp --model sft/sft.gguf] --out sft/quick-{before,after}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prm", nargs="+", type=Path, help="prm.jsonl files of rollout-labels runs")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows, seen = [], set()
    for path in args.prm:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            steps, labels = r["completions"], r["labels"]
            if not steps or labels[-1] is not True:
                continue  # the chain's final answer is wrong
            key = (r["prompt"], tuple(steps))
            if key in seen:
                continue
            seen.add(key)
            for i, step in enumerate(steps):
                history = [s.rstrip() + "\n" for s in steps[:i]]
                rows.append(
                    {
                        "id": f"{r['id']}#{i}",
                        "question": r["prompt"],
                        "history": history,
                        "step": step.strip(),
                        "format": "atomic",
                    }
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(json.dumps({"chains": len(seen), "rows": len(rows), "out": str(args.out)}))


if __name__ == "__main__":
    main()
