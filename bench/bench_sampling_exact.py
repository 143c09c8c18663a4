"""Do the llama.cpp engine's two paths sample from the distribution their logits define? One JSON.

Both paths of ``LlamaCppEngine`` draw N short samples (3 tokens, T=0.7, top-p 1) of one fixed
prompt: ``parallel`` (numpy sampler, the default) and ``sequential`` (``parallel=False``:
``Llama.generate`` reusing its one KV cache, llama.cpp's sampler). Each sample's exact probability
is then computed token by token, by teacher forcing, under two ways of computing the first token's
logits:

- ``multi_row``: the prompt decoded in one piece (what the parallel path does: its prompt pieces
  have >= 2 tokens);
- ``one_row``: the prompt's last token decoded ALONE after the rest is cached (what
  ``Llama.generate`` does when it re-uses a cached prompt: it replays one token to get logits).

Later tokens are decoded one at a time, as both paths generate. A chi-square goodness-of-fit test
(texts with expected count >= 5, the rest pooled) says which exact distribution each path's samples
come from. A third reference, the f32 de-quantised model in transformers, says how far the two
kernels' first-token distributions are from the weights' own (total variation).

    .venv/bin/python bench/bench_sampling_exact.py --n 1500 --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter

import numpy as np

from slowthink.engines import load_engine
from slowthink.engines._llamacpp_seqs import log_normalizer
from slowthink.types import Message, Request

QUESTION = "What is 7 + 8 + 6? Think step by step, one step per line."


def chi2_sf(x: float, k: int) -> float:
    """P(X >= x) for X ~ chi-square with k degrees of freedom (regularised upper incomplete gamma)."""
    a, z = k / 2.0, x / 2.0
    if z <= 0:
        return 1.0
    if z < a + 1:  # series for the lower function
        term = total = 1.0 / a
        n = a
        while term > total * 1e-15:
            n += 1
            term *= z / n
            total += term
        return max(0.0, 1.0 - total * math.exp(-z + a * math.log(z) - math.lgamma(a)))
    # continued fraction (Lentz) for the upper function
    b, c, d = z + 1 - a, 1e300, 1 / (z + 1 - a)
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h * math.exp(-z + a * math.log(z) - math.lgamma(a))


def goodness_of_fit(counts: Counter, exact: dict[str, float], n: int) -> dict:
    """Chi-square of observed text counts against exact probabilities (expected >= 5 kept, the
    rest pooled into one cell)."""
    cells, rest_obs, rest_exp = [], n, n
    for text, p in exact.items():
        if n * p >= 5:
            cells.append((counts[text], n * p))
            rest_obs -= counts[text]
            rest_exp -= n * p
    cells.append((rest_obs, rest_exp))
    stat = sum((o - e) ** 2 / e for o, e in cells if e > 0)
    dof = len(cells) - 1
    return {"chi2": round(stat, 2), "dof": dof, "p_value": round(chi2_sf(stat, dof), 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--tokens", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-reference", action="store_true", help="skip the transformers f32 reference")
    args = ap.parse_args()
    T = args.temperature
    req = Request(
        [Message("user", QUESTION)],
        prefix="Step 1:",
        n=args.n,
        max_tokens=args.tokens,
        temperature=T,
        top_p=1.0,
        seed=args.seed,
    )
    samples: dict[str, Counter] = {}
    walls = {}
    for name, parallel in (("parallel", True), ("sequential", False)):
        engine = load_engine("llamacpp", n_threads=args.threads, parallel=parallel)
        t0 = time.perf_counter()
        samples[name] = Counter(c.text for c in engine.generate([req])[0])
        walls[name] = round(time.perf_counter() - t0, 1)
    llm = engine.llm  # the sequential engine's Llama: its one KV cache serves the teacher forcing
    prompt = llm.tokenize(engine.render(req).encode(), add_bos=False, special=True)

    def logits() -> np.ndarray:
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)

    def log_softmax(x: np.ndarray) -> np.ndarray:
        z = x / T
        return z - log_normalizer(z)

    def first_logits(kernel: str) -> np.ndarray:
        llm.reset()
        if kernel == "multi_row":
            llm.eval(prompt)
        else:
            llm.eval(prompt[:-1])
            llm.eval(prompt[-1:])
        return logits().copy()

    texts = sorted(set(samples["parallel"]) | set(samples["sequential"]))
    exact: dict[str, dict[str, float]] = {"multi_row": {}, "one_row": {}}
    first = {}
    for kernel in exact:
        first[kernel] = first_logits(kernel)  # the KV cache now holds the prompt as that kernel left it
        for text in texts:
            toks = llm.tokenize(text.encode(), add_bos=False, special=False)
            lp = float(log_softmax(first[kernel])[toks[0]])
            for i in range(1, len(toks)):
                llm.eval([toks[i - 1]])  # one token at a time, as generation decodes
                lp += float(log_softmax(logits())[toks[i]])
            llm._ctx.kv_cache_seq_rm(-1, len(prompt), -1)  # back to the end of the prompt
            llm.n_tokens = len(prompt)
            exact[kernel][text] = math.exp(lp)
    out: dict = {
        "prompt": QUESTION,
        "prefix": "Step 1:",
        "n": args.n,
        "tokens": args.tokens,
        "temperature": T,
        "distinct_texts": len(texts),
        "exact_mass_covered": {k: round(sum(v.values()), 4) for k, v in exact.items()},
        "wall_s": walls,
        "fit": {
            path: {kernel: goodness_of_fit(samples[path], exact[kernel], args.n) for kernel in exact}
            for path in samples
        },
    }
    top = sorted(texts, key=lambda t: -exact["multi_row"][t])[:6]
    out["top_texts"] = [
        {
            "text": t,
            "exact_multi_row": round(exact["multi_row"][t], 4),
            "exact_one_row": round(exact["one_row"][t], 4),
            "parallel": round(samples["parallel"][t] / args.n, 4),
            "sequential": round(samples["sequential"][t] / args.n, 4),
        }
        for t in top
    ]
    p = {k: np.exp(log_softmax(v)) for k, v in first.items()}
    out["first_token_tv_between_kernels"] = round(float(0.5 * np.abs(p["multi_row"] - p["one_row"]).sum()), 4)
    out["first_token_max_logit_diff"] = round(float(np.abs(first["multi_row"] - first["one_row"]).max()), 4)
    if not args.no_reference:
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(args.threads)
        path = engine.model_path
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
        with torch.no_grad():
            ref = model(torch.tensor([prompt])).logits[0, -1].double().numpy()
        r = np.exp(log_softmax(ref))
        out["first_token_tv_to_f32_dequantised"] = {
            k: round(float(0.5 * np.abs(v - r).sum()), 4) for k, v in p.items()
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
