"""The one inference path on tiny real models: ids, parity with a direct transformers forward, order,
windows, and input handling. A recording wrapper sees the batches the real torch backend runs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from crossrank import Reranker
from crossrank.backends.torch_backend import TorchBackend
from crossrank.scoring import plan_batches

# fp32 on CPU: batching with padding changes summation order only; 1e-5 is generous for 2 tiny layers.
ATOL = 1e-5

PAIRS = [
    ("what is panda?", "hi"),
    ("what is panda?", "The giant panda is a bear species endemic to China. " * 3),
    ("如何缓解咖啡因引起的失眠？", "咖啡因的半衰期约为5到6小时，下午两点以后不再摄入咖啡因。"),
    ("FSD V12.5 端到端", "FSD V12.5 uses an end-to-end neural network 端到端神经网络."),
    ("short", "x " * 40),
]


class Recording:
    """Wraps a real backend and keeps every batch it is given."""

    def __init__(self, inner):
        self.inner, self.batches = inner, []
        self.name, self.dtype, self.device = inner.name, inner.dtype, inner.device

    def forward(self, batch):
        self.batches.append(batch)
        return self.inner.forward(batch)


def direct_logit(model, tok, query, passage, max_length=512):
    enc = tok(query, passage, truncation="only_second", max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        return float(model(**enc).logits[0, 0])


@pytest.fixture(scope="module", params=["tiny_xlmr_dir", "tiny_bert_dir"])
def model_dir(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def reference(model_dir):
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    return model, AutoTokenizer.from_pretrained(str(model_dir))


def test_scores_equal_a_direct_transformers_forward(model_dir, reference):
    model, tok = reference
    reranker = Reranker(str(model_dir), batch_size=2)
    got = reranker.compute_score([list(p) for p in PAIRS])
    expected = [direct_logit(model, tok, q, p) for q, p in PAIRS]
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_input_ids_match_flagembedding_truncation(tiny_xlmr_dir, reference):
    tok = AutoTokenizer.from_pretrained(str(tiny_xlmr_dir))
    recorder = Recording(TorchBackend(tiny_xlmr_dir))
    reranker = Reranker(str(tiny_xlmr_dir), backend=recorder, max_length=32, truncate="right")
    query, passage = "Hello world", "Goodbye " * 50
    reranker.compute_score([query, passage])
    ids = recorder.batches[0].input_ids[0].tolist()
    expected = tok(query, passage, truncation="only_second", max_length=32)["input_ids"]
    assert ids == expected
    assert ids[:5] == [0, 35378, 8999, 2, 2] and ids[-1] == 2 and len(ids) == 32


def test_long_query_is_cut_to_query_max_length(tiny_xlmr_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_xlmr_dir))
    recorder = Recording(TorchBackend(tiny_xlmr_dir))
    reranker = Reranker(str(tiny_xlmr_dir), backend=recorder, max_length=40, truncate="right")
    query = "panda " * 100
    reranker.compute_score([query, "bamboo forest " * 20])
    ids = recorder.batches[0].input_ids[0].tolist()
    q_ids = tok(query, add_special_tokens=False)["input_ids"][: 40 * 3 // 4]
    assert ids[: 1 + len(q_ids)] == [0, *q_ids], "query capped at max_length*3//4 tokens"
    assert len(ids) == 40


def test_order_is_restored_after_length_sorting(tiny_xlmr_dir):
    recorder = Recording(TorchBackend(tiny_xlmr_dir))
    reranker = Reranker(str(tiny_xlmr_dir), backend=recorder, batch_size=2)
    batched = reranker.compute_score([list(p) for p in PAIRS])
    one_by_one = [reranker.compute_score(list(p))[0] for p in PAIRS]
    np.testing.assert_allclose(batched, one_by_one, atol=ATOL)
    widths = [b.input_ids.shape[1] for b in recorder.batches[:3]]
    assert widths == sorted(widths, reverse=True), "longest rows are batched first"


def test_token_budget_batches():
    assert plan_batches([10, 9, 8, 3], batch_size=10, max_batch_tokens=20) == [[0, 1], [2, 3]]
    assert plan_batches([50, 5], batch_size=10, max_batch_tokens=20) == [[0], [1]], (
        "an oversize row runs alone"
    )
    assert plan_batches([4, 4, 4], batch_size=2, max_batch_tokens=1000) == [[0, 1], [2]]


def test_batches_respect_the_token_budget(tiny_xlmr_dir):
    recorder = Recording(TorchBackend(tiny_xlmr_dir))
    reranker = Reranker(str(tiny_xlmr_dir), backend=recorder, max_batch_tokens=64, batch_size=100)
    reranker.compute_score([list(p) for p in PAIRS])
    for batch in recorder.batches:
        rows, width = batch.shape
        assert rows == 1 or rows * width <= 64


def test_long_document_windows_report_the_winner(tiny_xlmr_dir, reference):
    tok = AutoTokenizer.from_pretrained(str(tiny_xlmr_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_xlmr_dir)).eval()
    doc = " ".join(f"sentence number {i} talks about pandas and bamboo." for i in range(40))
    reranker = Reranker(str(tiny_xlmr_dir), max_length=64, stride=30)
    [scored] = reranker.score_pairs([("pandas", doc)])
    assert scored.window.count > 1 and not scored.truncated
    q_ids = tok("pandas", add_special_tokens=False)["input_ids"]
    d = tok(doc, add_special_tokens=False, return_offsets_mapping=True)
    budget = 64 - len(q_ids) - 4
    window_logits = []
    for start in range(0, max(1, len(d["input_ids"]) - budget + 30), 30):
        start = min(start, len(d["input_ids"]) - budget)
        ids = [0, *q_ids, 2, 2, *d["input_ids"][start : start + budget], 2]
        with torch.inference_mode():
            window_logits.append(float(model(input_ids=torch.tensor([ids])).logits[0, 0]))
        if start + budget >= len(d["input_ids"]):
            break
    assert len(window_logits) == scored.window.count
    best = int(np.argmax(window_logits))
    assert scored.logit == pytest.approx(window_logits[best], abs=ATOL)
    assert scored.window.index == best
    start_tok = min(best * 30, len(d["input_ids"]) - budget)
    assert scored.window.start == d["offset_mapping"][start_tok][0]
    assert 0 <= scored.window.start < scored.window.end <= len(doc)


def test_rerank_ranks_by_score_with_ties_broken_by_index(tiny_xlmr_dir):
    reranker = Reranker(str(tiny_xlmr_dir))
    docs = ["same text", "other text entirely", "same text"]
    results = reranker.rerank("query", docs)
    assert sorted(r.index for r in results) == [0, 1, 2]
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    same = [r.index for r in results if r.document == "same text"]
    assert same == [0, 2], "equal scores keep input order"
    assert all(isinstance(r.score, float) and 0 <= r.score <= 1 for r in results)


def test_rerank_top_n_threshold_and_return_documents(tiny_xlmr_dir):
    reranker = Reranker(str(tiny_xlmr_dir))
    docs = [p for _, p in PAIRS]
    assert len(reranker.rerank("panda", docs, top_n=2)) == 2
    assert all(r.document is None for r in reranker.rerank("panda", docs, return_documents=False))
    assert reranker.rerank("panda", docs, threshold=1.0) == []


def test_callers_input_is_not_mutated(tiny_xlmr_dir):
    reranker = Reranker(str(tiny_xlmr_dir))
    pairs = [list(p) for p in PAIRS]
    docs = [p for _, p in PAIRS]
    before_pairs, before_docs = copy.deepcopy(pairs), list(docs)
    reranker.compute_score(pairs)
    reranker.rerank("panda", docs, top_n=1)
    assert pairs == before_pairs and docs == before_docs


def test_normalize_is_the_sigmoid_of_the_logits(tiny_xlmr_dir):
    reranker = Reranker(str(tiny_xlmr_dir))
    raw = reranker.compute_score([list(p) for p in PAIRS])
    norm = reranker.compute_score([list(p) for p in PAIRS], normalize=True)
    np.testing.assert_allclose(norm, 1 / (1 + np.exp(-np.array(raw))), atol=1e-7)


def test_nan_logits_are_an_error_not_a_score(tiny_xlmr_dir):
    from crossrank.errors import BackendError

    class Broken(Recording):
        def forward(self, batch):
            out = self.inner.forward(batch)
            out[0] = np.nan
            return out

    reranker = Reranker(str(tiny_xlmr_dir), backend=Broken(TorchBackend(tiny_xlmr_dir)))
    with pytest.raises(BackendError, match="NaN"):
        reranker.compute_score(["q", "d"])


@pytest.mark.parametrize("tail", ["cafe\u0301", "end.\u200b", "end.  "])
def test_the_last_window_ends_at_the_documents_end(tiny_xlmr_dir, tail):
    """Characters the tokenizer drops at the end (a combining mark, a zero-width space, trailing blanks)
    still lie inside the last window's span."""
    doc = "word " * 100 + tail
    reranker = Reranker(str(tiny_xlmr_dir), max_length=64, window=10)
    [windowed] = reranker.score_pairs([("word", doc)])
    [last] = reranker.score_pairs([("end", doc)], reranker.with_options(truncate="left"))
    assert windowed.window.count > 1 and windowed.window.end <= len(doc)
    assert last.truncated and last.window.end == len(doc)


@pytest.mark.parametrize("fixture", ["tiny_xlmr_dir", "tiny_bert_dir"])
@pytest.mark.parametrize("word", ["cafe\u0301", "x\u200b", "\uff21\uff22 \ufb01le"])
def test_a_window_span_keeps_the_characters_its_last_token_was_normalised_from(fixture, word, request):
    """A window ending inside the document ends after its last token's combining mark or zero-width
    character (which the tokenizer folds away), not before it, and before the blank that follows."""
    doc = " ".join([word] * 60)
    reranker = Reranker(str(request.getfixturevalue(fixture)), max_length=64)
    n_tokens = len(reranker.engine.tokenizer.encode([word])[0].ids)
    window = 10 * n_tokens  # the first window holds the first ten words
    for options in (
        reranker.with_options(window=window, truncate="right"),
        reranker.with_options(window=window, stride=window, max_windows=1),
    ):
        [scored] = reranker.score_pairs([("q", doc)], options)
        span = scored.window
        assert scored.truncated and doc[span.start : span.end] == " ".join([word] * 10)
