"""An index folder that is cut short, edited or from another version is refused with a crossrank error
that says what is wrong and how to rebuild, never a traceback or silently fewer results."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from crossrank.cli.main import main
from crossrank.errors import InvalidInputError
from crossrank.retrieval import EmbeddedIndex, IndexConfig, open_retriever
from crossrank.retrieval.sources import chunk_documents


@pytest.fixture()
def index_dir(tmp_path, docs):
    folder = tmp_path / "good"
    EmbeddedIndex.create(folder, IndexConfig(embedder="hash")).add(chunk_documents(docs))
    return folder


def _gen(folder):
    return folder / json.loads((folder / "manifest.json").read_text())["generation"]


def _truncate_manifest(folder):
    (folder / "manifest.json").write_text('{"format": "crossrank-index", "vers', encoding="utf-8")


def _drop_generation(folder):
    shutil.rmtree(_gen(folder))


def _drop_chunk_lines(folder):
    path = _gen(folder) / "chunks.jsonl"
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[:2]), encoding="utf-8")


def _cut_chunk_line(folder):
    with (_gen(folder) / "chunks.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"id": "cut')


def _drop_bm25(folder):
    for path in (_gen(folder) / "bm25").iterdir():
        path.unlink()


def _cut_vectors(folder):
    path = _gen(folder) / "vectors.npy"
    path.write_bytes(path.read_bytes()[:100])


def _drop_vector_rows(folder):
    path = _gen(folder) / "vectors.npy"
    np.save(path, np.load(path)[:3])


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (_truncate_manifest, "manifest.json is not valid JSON"),
        (_drop_generation, "chunks.jsonl is missing"),
        (_drop_chunk_lines, "disagree on the number of chunks"),  # was an IndexError on some searches
        (_cut_chunk_line, "cannot be read"),
        (_drop_bm25, "params.index.json is missing"),  # was silently "(no results)" for every bm25 query
        (_cut_vectors, "cannot be read"),
        (_drop_vector_rows, "disagree on the number of chunks"),
    ],
)
def test_a_damaged_index_says_so_and_how_to_rebuild(index_dir, damage, what, capsys):
    damage(index_dir)
    with pytest.raises(InvalidInputError, match=f"damaged: .*{what}.*crossrank index build"):
        open_retriever(index_dir)
    assert main(["search", "--index", str(index_dir), "France", "--rerank", "none"]) == 2
    assert "is damaged" in capsys.readouterr().err


def test_an_index_from_another_version_names_the_unknown_settings(index_dir):
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["config"]["future_option"] = 1
    (index_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(InvalidInputError, match="another version of crossrank .*future_option"):
        open_retriever(index_dir)


def test_documents_of_stopwords_only_are_indexed_not_a_crash(tmp_path, jsonl_writer, capsys):
    """bm25s cannot index a corpus without a single term: `index build` died with a ValueError."""
    path = jsonl_writer(tmp_path / "stop.jsonl", [{"id": "z", "text": "the of a"}])
    folder = tmp_path / "ix"
    assert main(["index", "build", "--input", str(path), "--index", str(folder), "--embedder", "hash"]) == 0
    index = EmbeddedIndex.open(folder)
    assert len(index) == 1 and index.search("the", k=3, method="bm25") == []
    assert [c.chunk.doc_id for c in index.search("the of a", k=3, method="dense")] == ["z"]
    index.add(chunk_documents([{"id": "paris", "text": "Paris is the capital of France."}]))
    assert EmbeddedIndex.open(folder).search("France", k=3, method="bm25")[0].chunk.doc_id == "paris"


def test_an_embedder_other_than_the_indexs_is_refused(index_dir):
    """A 64-dimensional embedder on 256-dimensional vectors was a raw numpy matmul error at search time;
    another model of the same size would have returned wrong hits without a word."""
    from crossrank.retrieval.dense import HashEmbedder

    class OtherModel(HashEmbedder):
        name = "other-model"

    with pytest.raises(InvalidInputError, match="256-dimensional vectors, but the 'hash' embedder makes 64"):
        open_retriever(index_dir, embedder=HashEmbedder(dim=64))
    with pytest.raises(InvalidInputError, match="built with the 'hash' embedder, .* 'other-model'"):
        open_retriever(index_dir, embedder=OtherModel())
    with pytest.raises(InvalidInputError, match="built with the 'hash' embedder"):
        EmbeddedIndex.create(index_dir.parent / "new", IndexConfig(embedder="hash"), embedder=OtherModel())
    hits = open_retriever(index_dir, embedder=HashEmbedder()).search("capital of France", k=1, method="dense")
    assert hits[0].chunk.doc_id == "paris"


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"rrf_k": -1}, "rrf_k must be a non-negative integer"),  # was a ZeroDivisionError in search
        ({"default_method": "semantic"}, "first stage must be one of"),  # was refused only at search
        ({"b": 7.0}, r"b in \[0, 1\]"),
        ({"k1": 0}, "k1 > 0"),
        ({"chunk_tokens": 10, "chunk_overlap": 10}, "chunk overlap must be in"),
    ],
)
def test_index_settings_are_checked_when_made(tmp_path, setting, match):
    with pytest.raises(InvalidInputError, match=match):
        IndexConfig(embedder="hash", **setting)
    assert not (tmp_path / "ix").exists()
