"""Properties of the embedded index on any text: adding documents and searching gives results or a
crossrank error, the index stays loadable and consistent, and searches return at most k ranked hits."""

from __future__ import annotations

import pytest
from fuzz_strategies import edge_numbers, examples, junk, unicode_text
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank import CrossrankError
from crossrank.retrieval import EmbeddedIndex, IndexConfig
from crossrank.retrieval.sources import chunk_documents

DOC = st.fixed_dictionaries(
    {"id": st.one_of(unicode_text(8, runs=False), st.integers()), "text": unicode_text(60)},
    optional={"title": unicode_text(8, runs=False)},
)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-index") / "ix"
    index = EmbeddedIndex.create(folder, IndexConfig(embedder="hash"))
    index.add(chunk_documents([{"id": "seed", "text": "Paris is the capital of France."}]))
    return index


@settings(max_examples=examples(40))
@given(docs=st.lists(DOC, min_size=1, max_size=3), size=st.sampled_from([1, 5, 50]))
def test_adding_any_documents(index, docs, size):
    before = len(index)
    try:
        chunks = chunk_documents(docs, size, 0)
        added = index.add(chunks)
    except CrossrankError:
        assert len(index) == before
        return
    assert added == len(chunks)
    reopened = EmbeddedIndex.open(index.folder)
    assert len(reopened) == len(index) == reopened.vectors.shape[0]


@settings(max_examples=examples(120))
@given(
    query=st.one_of(unicode_text(), junk(2)),
    k=st.one_of(st.integers(1, 20), edge_numbers()),
    method=st.sampled_from([None, "bm25", "dense", "hybrid", "nope"]),
)
def test_searching_with_any_query(index, query, k, method):
    try:
        hits = index.search(query, k, method)
    except CrossrankError:
        return
    assert len(hits) <= k
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert len({h.chunk.id for h in hits}) == len(hits)
