"""Text the tokenizer cannot take (lone surrogates) and files in odd encodings: a crossrank error naming
the field or ``file:line`` at every entry point (library, CLI, index build and search), never a raw
TypeError; valid but unusual text (NUL, combining marks, RTL, emoji, BOMs, UTF-16) is scored."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys

import pytest

from crossrank import FlagReranker, InvalidInputError, Reranker
from crossrank.textfiles import read_lines, read_text


@pytest.fixture(scope="module")
def reranker(tiny_xlmr_dir):
    return Reranker(str(tiny_xlmr_dir))


@pytest.mark.parametrize(
    "query,documents,match,pair_match",
    [
        ("\ud800", ["doc"], r"query holds a lone surrogate U\+D800 at character 0", "the query of pair 0"),
        ("ok", ["fine", "ab\udfffc"], r"document 1 holds a lone surrogate U\+DFFF at character 2",
         "document 1"),
        ("caf\udce9", ["doc"], r"query .* U\+DCE9 at character 3", "the query of pair 0"),  # surrogateescape
    ],
)
def test_lone_surrogates_are_refused_naming_field_and_position(reranker, query, documents, match, pair_match):
    with pytest.raises(InvalidInputError, match=match):
        reranker.rerank(query, documents)
    with pytest.raises(InvalidInputError, match=f"{pair_match} holds a lone surrogate"):
        reranker.compute_score([[query, d] for d in documents])


def test_flag_reranker_refuses_surrogates(tiny_xlmr_dir):
    flag = FlagReranker(str(tiny_xlmr_dir))
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        flag.compute_score(["query", "\ud83d"])


def test_unusual_but_valid_text_is_scored(reranker):
    docs = ["nul\x00inside", "e\u0301\u0301\u0301", "مرحبا بالعالم", "😀" * 600, "x" * 5000, "\ufffe\uffff"]
    results = reranker.rerank("emoji 😀 \u202eRTL\u202c", docs)
    assert sorted(r.index for r in results) == list(range(len(docs)))
    with pytest.raises(InvalidInputError, match="U\\+D83D at character 1"):  # a pair is two code points here
        reranker.compute_score(["a\ud83d\ude00", "in a Python str, unlike JSON, the pair is not joined"])


# ------------------------------------------------------------------------------------------ files


def test_read_lines_utf8_bom_crlf_and_utf16(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_bytes(codecs.BOM_UTF8 + "één\r\ntwo\n\nthree".encode())
    assert list(read_lines(plain)) == [(1, "één"), (2, "two"), (3, ""), (4, "three")]
    wide = tmp_path / "b.txt"
    wide.write_bytes("über\r\n中文\n".encode("utf-16"))  # with a BOM, as Windows Notepad writes it
    assert list(read_lines(wide)) == [(1, "über"), (2, "中文")]
    assert read_text(wide) == "über\n中文\n"
    assert read_text(plain) == "één\ntwo\n\nthree"


def test_invalid_utf8_names_file_line_and_byte(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"fine\nna\xefve\n")
    with pytest.raises(InvalidInputError, match=r"latin1.txt:2: not valid UTF-8 at byte 3 .*iconv"):
        list(read_lines(bad))
    with pytest.raises(InvalidInputError, match=r"latin1.txt:2: not valid UTF-8 at byte 3"):
        read_text(bad)
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_text(tmp_path / "missing.txt")


def crossrank(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "crossrank.cli.main", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
    )


def test_cli_files_in_odd_encodings(tmp_path, tiny_xlmr_dir):
    model = ["--model", str(tiny_xlmr_dir)]
    docs = tmp_path / "docs.txt"
    docs.write_bytes(codecs.BOM_UTF8 + b"Paris est la capitale.\r\nBerlin.\r\n")
    ok = crossrank("rerank", "-q", "capitale", "-d", str(docs), "--json", *model)
    assert ok.returncode == 0, ok.stderr
    assert sorted(r["document"] for r in json.loads(ok.stdout)) == ["Berlin.", "Paris est la capitale."]
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Köln liegt am Rhein.\n".encode("latin-1"))
    bad = crossrank("rerank", "-q", "Köln", "-d", str(latin1), *model)
    assert bad.returncode == 2 and b"latin1.txt:1: not valid UTF-8" in bad.stderr
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(["q", "bad \ud800 text"]) + "\n", encoding="utf-8")  # ASCII \ud800 escape
    surrogate = crossrank("score", str(pairs), *model)
    assert surrogate.returncode == 2
    assert b"pairs.jsonl:1: the document holds a lone surrogate U+D800" in surrogate.stderr
    piped = crossrank("score", *model, stdin=b"\xff\xfe" + '["q", "d"]\n'.encode("utf-16-le"))
    assert piped.returncode == 0, piped.stderr
    assert "Traceback" not in (bad.stderr + surrogate.stderr).decode()


def test_index_build_and_search_refuse_bad_text(tmp_path):
    from crossrank.retrieval import EmbeddedIndex, IndexConfig
    from crossrank.retrieval.base import Chunk
    from crossrank.retrieval.sources import chunk_documents, read_documents

    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(
        "".join(json.dumps(d) + "\n" for d in ({"id": "a", "text": "fine"}, {"id": "b", "text": "x\udc00"})),
        encoding="utf-8",
    )
    with pytest.raises(InvalidInputError, match=r"docs.jsonl:2: field 'text' holds a lone surrogate"):
        chunk_documents(read_documents(jsonl))
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "good.md").write_bytes(codecs.BOM_UTF8 + b"# Title\nBody text.\n")
    (folder / "bad.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(InvalidInputError, match=r"bad.txt:1: not valid UTF-8"):
        list(read_documents(folder))
    index = EmbeddedIndex.create(tmp_path / "ix", IndexConfig(embedder="hash"))
    with pytest.raises(InvalidInputError, match=r"chunks\[0\].text holds a lone surrogate"):
        index.add([Chunk(id="c#0", doc_id="c", text="bad \ud800")])
    index.add(chunk_documents([{"id": "ok", "text": "capital of France is Paris"}]))
    with pytest.raises(InvalidInputError, match="query holds a lone surrogate"):
        index.search("\udfff Paris", k=3)
    assert index.search("Paris", k=3)[0].chunk.doc_id == "ok"
