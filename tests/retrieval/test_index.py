"""The embedded index: build, search (English and Chinese), incremental updates, persistence across
processes, and atomicity under an injected crash and a killed writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from crossrank.errors import InvalidInputError
from crossrank.retrieval import EmbeddedIndex, IndexConfig, open_retriever
from crossrank.retrieval.bm25 import BM25
from crossrank.retrieval.sources import chunk_documents, read_documents

HASH = IndexConfig(embedder="hash")


N_DOCS = 6


def build(folder, docs, config=HASH) -> EmbeddedIndex:
    index = EmbeddedIndex.create(folder, config)
    index.add(chunk_documents(docs, config.chunk_tokens, config.chunk_overlap))
    return index


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
def test_english_and_chinese_queries(tmp_path, method, docs):
    index = build(tmp_path / "ix", docs)
    assert index.search("capital city of France", k=3, method=method)[0].chunk.doc_id == "paris"
    assert index.search("北京是哪个国家的首都", k=3, method=method)[0].chunk.doc_id == "beijing"


def test_candidates_carry_ranks_scores_and_components(tmp_path, docs):
    hits = build(tmp_path / "ix", docs).search("coffee stimulant", k=4)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    top = hits[0]
    assert top.chunk.doc_id == "caffeine" and top.method == "hybrid"
    assert set(top.components) == {"bm25", "dense", "hybrid"}
    assert top.chunk.metadata == {"topic": "chemistry"}
    assert top.score == pytest.approx(top.components["hybrid"][1])


def test_add_replaces_and_delete_removes(tmp_path, docs):
    index = build(tmp_path / "ix", docs)
    n = len(index)
    index.add(chunk_documents([{"id": "paris", "text": "Paris is a city in Texas as well."}]))
    assert len(index) == n
    assert "Texas" in index.search("Paris", k=1, method="bm25")[0].chunk.text
    assert index.delete(["paris", "nope"]) == 1
    assert all(h.chunk.doc_id != "paris" for h in index.search("Paris France", k=10))
    reopened = EmbeddedIndex.open(tmp_path / "ix")
    assert len(reopened) == n - 1 and reopened.vectors.shape == (n - 1, reopened.embedder.dim)
    assert sorted(p.name for p in (tmp_path / "ix").iterdir() if p.name.startswith("gen-")) == [
        f"gen-{reopened.generation - 1:06d}",
        f"gen-{reopened.generation:06d}",
    ]


def test_long_documents_are_chunked_with_offsets(tmp_path):
    text = " ".join(f"word{i}" for i in range(500))
    index = build(
        tmp_path / "ix",
        [{"id": "long", "text": text}],
        IndexConfig(embedder="hash", chunk_tokens=100, chunk_overlap=20),
    )
    assert len(index) == 6  # starts 0, 80, ..., 400
    for chunk in index.chunks:
        assert text[chunk.start : chunk.end] == chunk.text
    assert index.search("word250", k=2, method="bm25")[0].chunk.id in {"long#3", "long#2"}


def test_empty_index_says_how_to_fill_it(tmp_path):
    index = EmbeddedIndex.create(tmp_path / "ix", HASH)
    with pytest.raises(InvalidInputError, match="index add"):
        index.search("anything")


def test_not_an_index_and_existing_index(tmp_path, docs):
    with pytest.raises(InvalidInputError, match="index build"):
        EmbeddedIndex.open(tmp_path)
    build(tmp_path / "ix", docs)
    with pytest.raises(InvalidInputError, match="already exists"):
        EmbeddedIndex.create(tmp_path / "ix", HASH)


def test_malformed_jsonl_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad.jsonl:2: not valid JSON"):
        list(read_documents(bad))
    bad.write_text('{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r":1: each line needs an \"id\""):
        list(read_documents(bad))


def test_text_and_markdown_folders(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# Tea notes\nGreen tea is steamed.", encoding="utf-8")
    (tmp_path / "notes" / "b.txt").write_text("Black tea is oxidised.", encoding="utf-8")
    (tmp_path / "notes" / "skip.bin").write_bytes(b"\x00")
    docs = list(read_documents(tmp_path / "notes"))
    assert [(d["id"], d["title"]) for d in docs] == [("a.md", "Tea notes"), ("b.txt", "b")]


def test_gzipped_json_lines_are_documents_alone_or_in_a_folder(tmp_path):
    """A .jsonl.gz (the usual form of exported corpora) was skipped in a folder and refused alone."""
    import gzip

    lines = '{"id": "a", "text": "Green tea is steamed."}\n{"id": "b", "text": "Black tea is oxidised."}\n'
    (tmp_path / "corpus").mkdir()
    with gzip.open(tmp_path / "corpus" / "tea.JSONL.GZ", "wt", encoding="utf-8") as handle:
        handle.write(lines)
    (tmp_path / "corpus" / "c.md").write_text("# Oolong\nPartly oxidised.", encoding="utf-8")
    alone = list(read_documents(tmp_path / "corpus" / "tea.JSONL.GZ"))
    assert [(d["id"], d["text"], d["source"].endswith("tea.JSONL.GZ:2")) for d in alone][1] == (
        "b", "Black tea is oxidised.", True
    )
    assert [d["id"] for d in read_documents(tmp_path / "corpus")] == ["c.md", "a", "b"]


def test_crash_inside_the_write_leaves_the_old_index(tmp_path, monkeypatch, docs):
    index = build(tmp_path / "ix", docs)
    before = [h.chunk.id for h in index.search("tea", k=5)]

    def boom(self, folder):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(BM25, "save", boom)
    with pytest.raises(OSError, match="injected"):
        index.add(chunk_documents([{"id": "new", "text": "tea ceremony in Japan"}]))
    monkeypatch.undo()
    reopened = EmbeddedIndex.open(tmp_path / "ix")
    assert len(reopened) == N_DOCS
    assert [h.chunk.id for h in reopened.search("tea", k=5)] == before
    # the next update cleans the leftover temporary folder and succeeds
    reopened.add(chunk_documents([{"id": "new", "text": "tea ceremony in Japan"}]))
    assert not [p for p in (tmp_path / "ix").iterdir() if p.name.startswith(".tmp-gen")]
    assert len(EmbeddedIndex.open(tmp_path / "ix")) == N_DOCS + 1


WRITER = """
import sys
from crossrank.retrieval import EmbeddedIndex
from crossrank.retrieval.sources import chunk_documents
index = EmbeddedIndex.open(sys.argv[1])
text = " ".join("filler%d" % i for i in range(3000))
for n in range(10_000):
    index.add(chunk_documents([{"id": "bulk%d" % n, "text": text}], 50, 0))
    print(n, flush=True)
"""


def test_killed_writer_leaves_a_loadable_index(tmp_path, docs):
    folder = tmp_path / "ix"
    build(folder, docs)
    for delay in (0.3, 0.9, 1.7):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.PIPE, text=True
        )
        time.sleep(delay + 3.0)  # interpreter start-up, then die somewhere inside an update
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        index = EmbeddedIndex.open(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert len(index) == manifest["n_chunks"] == index.vectors.shape[0]
        assert (
            len({c.doc_id for c in index.chunks if c.doc_id.startswith("bulk")}) * 60 == len(index) - N_DOCS
        )
        assert index.search("中国的首都", k=1)[0].chunk.doc_id == "beijing"
    index.delete(["bulk0"])  # the next update clears whatever the killed writers left behind
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]
    assert len([p for p in folder.iterdir() if p.name.startswith("gen-")]) == 2


def test_persistence_across_processes_via_the_cli(tmp_path, docs_file, jsonl_writer):
    folder = tmp_path / "ix"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cli = [sys.executable, "-m", "crossrank.cli.main"]
    built = subprocess.run(
        [*cli, "index", "build", "--input", str(docs_file), "--index", str(folder), "--embedder", "hash"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    assert "indexed 6 chunks of 6 documents" in built.stdout
    extra = jsonl_writer(
        tmp_path / "more.jsonl", [{"id": "kyoto", "text": "Kyoto was the capital of Japan."}]
    )
    subprocess.run(
        [*cli, "index", "add", "--input", str(extra), "--index", str(folder)],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    found = subprocess.run(
        [
            *cli,
            "search",
            "--index",
            str(folder),
            "capital of Japan",
            "--rerank",
            "none",
            "--json",
            "--top-n",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert hits[0]["doc_id"] == "kyoto" and hits[0]["source"].endswith("more.jsonl:1")
    assert hits[0]["first_stage"]["rank"] == 1 and hits[0]["rerank_score"] is None
    gone = subprocess.run(
        [*cli, "index", "delete", "--index", str(folder), "kyoto"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "removed 1 chunks" in gone.stdout


def test_vectors_match_chunks_after_updates(tmp_path, docs):
    index = build(tmp_path / "ix", docs)
    index.delete(["tea"])
    index.add(chunk_documents([{"id": "tea", "text": "茶是一种饮料。"}]))
    fresh = open_retriever(tmp_path / "ix")
    expected = fresh.embedder.embed_passages(
        [c.title + "\n" + c.text if c.title else c.text for c in fresh.chunks]
    )
    assert np.allclose(fresh.vectors, expected, atol=1e-6)


def test_an_open_index_serves_what_later_updates_committed(tmp_path, docs):
    """A Pipeline (or index) opened before `crossrank index delete` went on returning the deleted
    document, and never saw added ones, until the process restarted."""
    from crossrank.pipeline import Pipeline

    folder = tmp_path / "ix"
    build(folder, docs)
    pipeline = Pipeline(folder, None, top_n=3, method="bm25")
    assert pipeline.search("capital of France")[0].chunk.doc_id == "paris"
    writer = EmbeddedIndex.open(folder)  # another process, as far as the reader can tell
    writer.delete(["paris"])
    writer.add(chunk_documents([{"id": "kyoto", "text": "Kyoto was the capital of Japan."}]))
    hits = pipeline.search("capital of France Japan")
    assert "paris" not in {h.chunk.doc_id for h in hits} and hits[0].chunk.doc_id == "kyoto"
    assert len(pipeline.retriever) == N_DOCS and pipeline.retriever.refresh() is False


def test_index_delete_says_when_an_id_is_not_in_the_index(tmp_path, capsys):
    """`index delete` of a text file's path (its id is relative to the --input folder) printed
    "removed 0 chunks" and exited 0, as if it had worked."""
    from crossrank.cli.main import main

    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "sub" / "paris.txt").write_text("Paris is the capital of France.", encoding="utf-8")
    (tmp_path / "docs" / "tea.txt").write_text("Tea contains caffeine.", encoding="utf-8")
    folder, docs = str(tmp_path / "ix"), str(tmp_path / "docs")
    assert main(["index", "build", "-i", docs, "--index", folder, "--embedder", "hash"]) == 0
    capsys.readouterr()
    assert main(["index", "delete", "--index", folder, str(tmp_path / "docs" / "sub" / "paris.txt")]) == 2
    assert "path relative to the --input folder" in capsys.readouterr().err
    assert main(["index", "delete", "--index", folder, "sub/paris.txt", "typo"]) == 0
    out, err = capsys.readouterr()
    assert "removed 1 chunks" in out and "not in the index (ignored): 'typo'" in err
