"""Bad input gets a crossrank error whose message says how to fix it; nothing crashes or hangs."""

from __future__ import annotations

import pytest

from crossrank import (
    CrossrankError,
    InputTooLargeError,
    InvalidInputError,
    ModelNotFoundError,
    Reranker,
    UnsupportedModelError,
)


@pytest.fixture(scope="module")
def reranker(tiny_xlmr_dir):
    return Reranker(str(tiny_xlmr_dir))


@pytest.mark.parametrize(
    "query,documents,match",
    [
        ("", ["doc"], "query is empty"),
        ("   ", ["doc"], "query is empty"),
        (None, ["doc"], "query must be a string"),
        ("q", [], "no documents to rerank"),
        ("q", (), "no documents to rerank"),
        ("q", ["ok", ""], "document 1 is empty"),
        ("q", ["ok", 42], "document 1 must be a string"),
        ("q", ["ok", None], "document 1 must be a string"),
        ("q", ["ok", "\u200b"], "document 1 has no text the model can read"),
        ("q", ["\ufeff\ufeff", "ok"], "document 0 has no text the model can read"),
        ("q", "a single string", "documents must be a list"),
        ("q", None, "documents must be a list"),
    ],
)
def test_bad_queries_and_documents(reranker, query, documents, match):
    with pytest.raises(InvalidInputError, match=match):
        reranker.rerank(query, documents)


@pytest.mark.parametrize(
    "pairs,match",
    [
        ([["q"]], "pair 0 must be a \\[query, document\\]"),
        ([["q", "d", "e"]], "pair 0"),
        ("not pairs", "list of \\[query, document\\] pairs"),
        ([["q", "d"], "loose string"], "pair 1"),
    ],
)
def test_bad_pairs(reranker, pairs, match):
    with pytest.raises(InvalidInputError, match=match):
        reranker.compute_score(pairs)


def test_one_megabyte_document_is_refused_with_a_fix(reranker):
    with pytest.raises(InputTooLargeError, match="Split it into chunks"):
        reranker.rerank("q", ["x " * 524_288])


def test_one_megabyte_document_is_windowed_when_allowed(tiny_xlmr_dir):
    reranker = Reranker(str(tiny_xlmr_dir), max_document_chars=None, max_windows=4)
    [result] = reranker.rerank("q", ["word " * 200_000])
    assert result.truncated and result.window.count == 4


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"max_length": 10**9}, "exceeds what this model accepts"),
        ({"max_length": 2}, "max_length must be an integer of at least"),
        ({"max_length": "512"}, "max_length must be an integer"),
        ({"query_max_length": 600}, "query_max_length must be an integer in"),
        ({"aggregate": "median"}, "aggregate must be one of"),
        ({"truncate": "middle"}, "truncate must be None"),
        ({"window": 0}, "window must be a positive integer"),
        ({"window": 4, "stride": 8}, r"stride \(8\) is larger than window \(4\)"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"dtype": "int3"}, "dtype must be one of"),
        ({"backend": "tpu"}, "backend must be one of"),
        ({"backend": None}, "backend must be one of"),
        ({"device": "tpu"}, "device must be 'cpu', 'cuda' or 'cuda:N'"),
        ({"device": "cuda:x"}, "device must be 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_bad_settings(tiny_xlmr_dir, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        Reranker(str(tiny_xlmr_dir), **kwargs)


def test_options_must_be_score_options(reranker):
    with pytest.raises(InvalidInputError, match=r"with_options\("):
        reranker.rerank("q", ["doc"], options={"window": 10})


def test_a_short_max_length_gets_a_query_budget_that_fits(tiny_xlmr_dir):
    small = Reranker(str(tiny_xlmr_dir), max_length=16)  # 16 * 3 // 4 = 12 would leave no passage token
    assert small.options.query_max_length == 16 - 4 - 1
    assert len(small.compute_score([["a long query " * 5, "passage"]])) == 1


def test_with_options_derives_the_query_budget_from_a_new_max_length(reranker, tiny_xlmr_dir):
    assert reranker.with_options(max_length=256).query_max_length == 192
    fixed = Reranker(str(tiny_xlmr_dir), query_max_length=8)
    assert fixed.with_options(max_length=256).query_max_length == 8


@pytest.mark.parametrize("model", ["no-such-model", "", "./does/not/exist", "org/name/extra"])
def test_unknown_models_name_the_alternatives(model):
    with pytest.raises(ModelNotFoundError, match="embedded"):
        Reranker(model)


def test_a_bi_encoder_is_refused():
    with pytest.raises(UnsupportedModelError, match="not a cross-encoder"):
        Reranker("embedded-backbone")


def test_a_multi_label_classifier_is_refused(tmp_path, tiny_xlmr_dir):
    import json
    import shutil

    folder = tmp_path / "three-labels"
    shutil.copytree(tiny_xlmr_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="3 labels"):
        Reranker(str(folder))


def test_all_errors_share_one_base_class():
    assert issubclass(InputTooLargeError, CrossrankError)
    assert issubclass(ModelNotFoundError, LookupError)


def test_an_invisible_query_is_refused(reranker):
    with pytest.raises(InvalidInputError, match="the query '\\\\u200b' has no text the model can read"):
        reranker.rerank("\u200b", ["a document"])


def test_device_auto_means_the_default_device():
    """'auto' is the same as None (CUDA when available), so the CPU rules of backend='auto' apply to it."""
    from crossrank.backends.base import check_device

    assert check_device("auto") is None and check_device(None) is None
    assert check_device("cpu") == "cpu" and check_device("cuda:1") == "cuda:1"
