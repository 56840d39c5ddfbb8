"""The adapters' shared core: argument checks made when a component is built (no model loaded)."""

from __future__ import annotations

import pytest

from crossrank.errors import InvalidInputError
from crossrank.integrations import Scorer
from crossrank.integrations._core import check_cutoffs, document_text


def test_scorer_arguments():
    assert Scorer().model == "embedded"  # loaded on first use
    remote = Scorer("embedded", url="http://127.0.0.1:8080/", api_key="k")
    assert remote.url == "http://127.0.0.1:8080" and remote.reranker is None
    assert remote.model_config() == (None, {})
    assert Scorer("embedded", reranker_options={"max_length": 128}).model_config() == (
        "embedded",
        {"max_length": 128},
    )
    with pytest.raises(InvalidInputError, match="http://"):
        Scorer(url="127.0.0.1:8080")
    with pytest.raises(InvalidInputError, match="reranker_options"):
        Scorer(object(), reranker_options={"max_length": 128})


def test_cutoffs_and_texts():
    check_cutoffs(None, None)
    check_cutoffs(3, "dynamic")
    check_cutoffs(0, 0.5)
    for top_n, threshold in ((-1, None), (None, 1.5), (None, "sometimes"), (2.5, None)):
        with pytest.raises(InvalidInputError):
            check_cutoffs(top_n, threshold)
    assert document_text("text", "documents[0]") == "text"
    for bad in (None, "", "   ", 3):
        with pytest.raises(InvalidInputError, match=r"documents\[2\] has no text"):
            document_text(bad, "documents[2]")
