"""What an index does to the folder it lives in and the folders it reads: it never deletes or reads files
that are not its own, and refuses duplicate document ids instead of indexing both."""

from __future__ import annotations

import pytest

from crossrank.errors import InvalidInputError
from crossrank.retrieval import EmbeddedIndex, IndexConfig, create_retriever
from crossrank.retrieval.sources import chunk_documents, read_documents

HASH = IndexConfig(embedder="hash")


def test_an_index_is_not_created_among_other_files_and_never_deletes_them(tmp_path, docs):
    folder = tmp_path / "project"
    (folder / "gen-ai-notes").mkdir(parents=True)
    (folder / "gen-ai-notes" / "todo.txt").write_text("my notes", encoding="utf-8")
    for config in (HASH, IndexConfig(backend="qdrant", embedder="hash")):
        with pytest.raises(InvalidInputError, match="not a crossrank index .*gen-ai-notes.*new or empty"):
            create_retriever(folder, config)
    assert not (folder / "manifest.json").exists()
    # an index whose folder later gains such a folder leaves it alone through any number of updates
    index = EmbeddedIndex.create(tmp_path / "ix", HASH)
    (tmp_path / "ix" / "gen-ai-notes").mkdir()
    (tmp_path / "ix" / ".tmp-mine").write_text("mine", encoding="utf-8")
    for n in range(3):
        index.add(chunk_documents([{"id": f"d{n}", "text": "tea and coffee"}]))
    assert (tmp_path / "ix" / "gen-ai-notes").is_dir() and (tmp_path / "ix" / ".tmp-mine").is_file()
    # an existing empty folder (a TemporaryDirectory) is fine
    (tmp_path / "empty").mkdir()
    EmbeddedIndex.create(tmp_path / "empty", HASH)


def test_an_index_inside_the_document_folder_is_not_read_as_documents(tmp_path):
    from crossrank.cli.main import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "caffeine.txt").write_text("Caffeine is a stimulant found in coffee.", encoding="utf-8")
    (docs / "paris.txt").write_text("Paris is the capital of France.", encoding="utf-8")
    index = docs / "index"
    assert main(["index", "build", "--input", str(docs), "--index", str(index), "--embedder", "hash"]) == 0
    (docs / "everest.txt").write_text("Everest is the highest mountain.", encoding="utf-8")
    assert main(["index", "add", "--input", str(docs), "--index", str(index)]) == 0
    reopened = EmbeddedIndex.open(index)
    assert sorted(c.id for c in reopened.chunks) == ["caffeine.txt#0", "everest.txt#0", "paris.txt#0"]
    with pytest.raises(InvalidInputError, match="is a crossrank index, not documents"):
        list(read_documents(index))


def test_a_repeated_document_id_is_refused_with_both_places(tmp_path, jsonl_writer):
    from crossrank.cli.main import main

    rows = [
        {"id": "x", "text": "Paris is the capital of France."},
        {"id": "x", "text": "Everest is the highest mountain."},
    ]
    path = jsonl_writer(tmp_path / "dup.jsonl", rows)
    with pytest.raises(InvalidInputError, match=r"'x' appears twice \(.*dup.jsonl:1 and .*dup.jsonl:2\)"):
        chunk_documents(read_documents(path))
    with pytest.raises(InvalidInputError, match=r"'1' appears twice \(documents\[0\] and documents\[1\]\)"):
        chunk_documents([{"id": 1, "text": "one"}, {"id": "1", "text": "uno"}])  # the same id as text
    # qdrant kept one point per chunk id: the first document was silently lost
    for backend in ("embedded", "qdrant"):
        folder = tmp_path / backend
        argv = ["index", "build", "--input", str(path), "--index", str(folder), "--embedder", "hash"]
        assert main([*argv, "--backend", backend]) == 2
        assert not folder.exists()


@pytest.mark.parametrize("backend", ["embedded", "qdrant"])
def test_a_build_stopped_while_embedding_leaves_no_index_behind(tmp_path, docs_file, monkeypatch, backend):
    """Ctrl-C (or any error) while embedding left an empty index that made the next `index build` say
    "an index already exists"."""
    from crossrank.cli.main import main
    from crossrank.retrieval.dense import HashEmbedder

    def interrupted(self, texts):
        raise KeyboardInterrupt

    argv = ["index", "build", "--input", str(docs_file), "--embedder", "hash", "--backend", backend]
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "new", tmp_path / "empty"):
        monkeypatch.setattr(HashEmbedder, "embed_passages", interrupted)
        assert main([*argv, "--index", str(folder)]) == 130
        assert not folder.exists() or list(folder.iterdir()) == []
        monkeypatch.undo()
        assert main([*argv, "--index", str(folder)]) == 0


@pytest.mark.parametrize("bad", ["", "  ", {"a": 1}, True, [1], 1.5])
def test_a_jsonl_id_must_be_a_non_blank_string_or_an_integer(tmp_path, jsonl_writer, bad):
    """"" became chunk id "#0", {"a": 1} the id "{'a': 1}" and true "True": documents nobody can name
    in `index delete` or match in `index add`."""
    path = jsonl_writer(tmp_path / "ids.jsonl", [{"id": "ok", "text": "fine"}, {"id": bad, "text": "Tea"}])
    with pytest.raises(InvalidInputError, match=r'ids.jsonl:2: "id" must be a non-blank string'):
        list(read_documents(path))
    path = jsonl_writer(tmp_path / "ids.jsonl", [{"id": 7, "text": "seven"}, {"_id": "d1", "text": "one"}])
    assert [d["id"] for d in read_documents(path)] == ["7", "d1"]


def test_index_add_says_which_indexed_documents_it_replaced(tmp_path, capsys):
    """Two folders each holding notes.txt: `index add` of the second silently replaced the first one's
    notes (same id), reporting only "added 1 chunks"."""
    from crossrank.cli.main import main

    for name, text in (("d1", "Meeting notes from Monday about the budget."), ("d2", "Shopping list.")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.txt").write_text(text, encoding="utf-8")
    index = str(tmp_path / "ix")
    assert main(["index", "build", "-i", str(tmp_path / "d1"), "--index", index, "--embedder", "hash"]) == 0
    (tmp_path / "d2" / "new.txt").write_text("Something new.", encoding="utf-8")
    capsys.readouterr()
    assert main(["index", "add", "-i", str(tmp_path / "d2"), "--index", index]) == 0
    out = capsys.readouterr().out
    assert "added 2 chunks (replacing 1 indexed documents with the same id: 'notes.txt')" in out


def test_chunks_with_a_repeated_id_are_refused_by_both_backends(tmp_path):
    """Chunks of two chunk_documents calls sharing a document id went in twice (x#0, x#0) on the embedded
    index, and overwrote each other on qdrant."""
    from crossrank.retrieval.qdrant import QdrantRetriever

    chunks = chunk_documents([{"id": "x", "text": "Paris"}]) + chunk_documents([{"id": "x", "text": "Tea"}])
    index = EmbeddedIndex.create(tmp_path / "ix", HASH)
    qdrant = QdrantRetriever(IndexConfig(backend="qdrant", embedder="hash", qdrant_location=":memory:"))
    for retriever in (index, qdrant):
        with pytest.raises(InvalidInputError, match=r"chunks\[1\] has the id 'x#0' of chunks\[0\]"):
            retriever.add(chunks)
        assert len(retriever) == 0


def test_hidden_files_and_folders_are_not_documents(tmp_path):
    """A notebook folder's .ipynb_checkpoints copy (an older version of the notes) was indexed and came
    back as a hit beside the real file; a .venv brought in every package's *.txt."""
    docs = tmp_path / "docs"
    (docs / ".ipynb_checkpoints").mkdir(parents=True)
    (docs / ".venv" / "pkg.dist-info").mkdir(parents=True)
    (docs / "notes.txt").write_text("Project notes: the budget is 10k.", encoding="utf-8")
    (docs / ".ipynb_checkpoints" / "notes-checkpoint.txt").write_text("the budget is 5k.", encoding="utf-8")
    (docs / ".venv" / "pkg.dist-info" / "top_level.txt").write_text("pkg", encoding="utf-8")
    (docs / ".hidden.md").write_text("# Hidden", encoding="utf-8")
    assert [d["id"] for d in read_documents(docs)] == ["notes.txt"]
    # a hidden folder or file named as the input is read
    assert [d["id"] for d in read_documents(docs / ".ipynb_checkpoints")] == ["notes-checkpoint.txt"]
    assert [d["id"] for d in read_documents(docs / ".hidden.md")] == [".hidden.md"]


@pytest.mark.parametrize("backend", ["embedded", "qdrant"])
def test_index_add_of_an_emptied_document_removes_its_old_text(tmp_path, capsys, backend):
    """A file emptied and added again kept its old chunks (no new chunk replaced them), so search still
    returned text the file no longer holds."""
    from crossrank.cli.main import main
    from crossrank.retrieval import open_retriever

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.txt").write_text("Green tea holds L-theanine.", encoding="utf-8")
    (docs / "old.txt").write_text("The old budget was ten thousand euros.", encoding="utf-8")
    index = str(tmp_path / "ix")
    build = ["index", "build", "-i", str(docs), "--index", index, "--embedder", "hash", "--backend", backend]
    assert main(build) == 0
    (docs / "old.txt").write_text("", encoding="utf-8")
    capsys.readouterr()
    assert main(["index", "add", "-i", str(docs), "--index", index]) == 0
    out = capsys.readouterr().out
    assert "removed 1 chunks of documents that are now empty" in out and "holds 1 chunks" in out
    retriever = open_retriever(index)
    hits = retriever.search("old budget euros", 5, "bm25" if backend == "embedded" else "dense")
    assert all(h.chunk.doc_id != "old.txt" for h in hits)
    if backend == "qdrant":
        retriever.client.close()
    # only emptied documents: nothing to add, the old text still goes
    (docs / "tea.txt").write_text("", encoding="utf-8")
    assert main(["index", "add", "-i", str(docs), "--index", index]) == 0
    assert "holds 0 chunks" in capsys.readouterr().out
