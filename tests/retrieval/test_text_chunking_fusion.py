"""Pure functions of the first stage: language detection, tokenisation, chunking, RRF."""

from __future__ import annotations

import pytest

from crossrank.errors import InvalidInputError
from crossrank.retrieval.chunking import chunk_text, token_spans
from crossrank.retrieval.fusion import reciprocal_rank_fusion
from crossrank.retrieval.text import detect_language, tokenize


def test_language_detection():
    assert detect_language("什么是咖啡因？") == "zh"
    assert detect_language("What is caffeine?") == "en"
    assert detect_language("BM25 是一种排序函数") == "zh"
    assert detect_language("") == "en"


def test_english_is_stemmed_without_stopwords():
    assert tokenize("The runners are running quickly") == ["runner", "run", "quick"]


def test_chinese_is_segmented_with_jieba_and_latin_words_stemmed():
    tokens = tokenize("北京是中国的首都，Running fast。")
    assert "北京" in tokens and "首都" in tokens
    assert "run" in tokens and "，" not in tokens


def test_token_spans_treat_each_ideograph_as_a_token():
    assert token_spans("Hi, 你好") == [(0, 2), (2, 3), (4, 5), (5, 6)]


def test_chunks_overlap_and_keep_source_offsets():
    text = " ".join(f"w{i}" for i in range(10))
    chunks = chunk_text(text, size=4, overlap=1)
    assert [c.text for c in chunks] == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert [c.n_tokens for c in chunks] == [4, 4, 4]


def test_chinese_chunking_offsets():
    text = "第一句话。第二句话！"
    chunks = chunk_text(text, size=4, overlap=0)
    assert "".join(c.text for c in chunks) == text
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_short_and_empty_text():
    assert [c.text for c in chunk_text("  one two  ")] == ["one two"]
    assert chunk_text("   ") == []


@pytest.mark.parametrize("size, overlap", [(0, 0), (4, 4), (4, -1), (True, 0)])
def test_bad_chunking_options(size, overlap):
    with pytest.raises(InvalidInputError, match="chunk"):
        chunk_text("a b c", size=size, overlap=overlap)


def test_rrf_by_hand():
    # k=60: b = 1/62 + 1/61, a = 1/61, c = 1/62
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "c"]])
    assert [d for d, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[2][1] == pytest.approx(1 / 62)


def test_rrf_ties_keep_first_appearance_and_weights_apply():
    assert [d for d, _ in reciprocal_rank_fusion([["a"], ["b"]])] == ["a", "b"]
    assert [d for d, _ in reciprocal_rank_fusion([["a"], ["b"]], weights=[1, 2])] == ["b", "a"]
