"""Loaders for real evaluation sets read in place: BEIR folders, WikiQA TSVs, CMRC 2018 (SQuAD-style JSON)
as passage ranking (``cmrc``) and as answer-sentence selection (``cmrc-sent``)."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InvalidInputError
from ..textfiles import read_lines, read_text

logger = logging.getLogger(__name__)

FORMATS = ("beir", "wikiqa", "cmrc", "cmrc-sent")
WIKIQA_COLUMNS = ("QuestionID", "Question", "SentenceID", "Sentence", "Label")
_SENTENCE_END = re.compile(r"[。！？!?]+")


@dataclass
class EvalSet:
    """Queries (in file order), a corpus ``id -> (title, text)``, graded qrels, and for candidate-list
    formats the candidates of each query (``None``: rank the whole corpus)."""

    name: str
    queries: dict[str, str]
    corpus: dict[str, tuple[str, str]]
    qrels: dict[str, dict[str, int]]
    candidates: dict[str, list[str]] | None = None
    notes: list[str] = field(default_factory=list)
    exclude_self: bool = (
        False  # drop a retrieved document whose id is the query's (BEIR's ignore_identical_ids)
    )

    def limit(self, n: int | None) -> EvalSet:
        """The first ``n`` queries in file order (the corpus is kept whole); ``None``: all of them."""
        if n is None:
            return self
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidInputError(f"--limit must be a positive number of queries, got {n!r}")
        keep = list(self.queries)[:n]
        cands = {q: self.candidates[q] for q in keep} if self.candidates is not None else None
        return EvalSet(
            self.name,
            {q: self.queries[q] for q in keep},
            self.corpus,
            {q: self.qrels[q] for q in keep},
            cands,
            self.notes,
            self.exclude_self,
        )


def drop_blank_queries(evalset: EvalSet) -> EvalSet:
    """``evalset`` without its blank queries, with a note saying how many: a blank query cannot be embedded
    or scored, and counted as a miss it would lower every mean. The one rule of every loader (the CMRC
    2018 trial file has two blank questions)."""
    keep = [q for q, text in evalset.queries.items() if isinstance(text, str) and text.strip()]
    blank = len(evalset.queries) - len(keep)
    if not blank:
        return evalset
    kept = set(keep)
    skipped = ", ".join(q for q in evalset.queries if q not in kept)
    logger.info("%s: blank queries skipped: %s", evalset.name, skipped)
    cands = evalset.candidates
    return replace(
        evalset,
        queries={q: evalset.queries[q] for q in keep},
        qrels={q: evalset.qrels[q] for q in keep},
        candidates={q: cands[q] for q in keep} if cands is not None else None,
        notes=[*evalset.notes, f"{blank} blank questions skipped"],
    )


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``, split after 。！？!? (runs of them stay together);
    surrounding whitespace is trimmed and blank pieces dropped.

    >>> split_sentences("你好。再见！ ok")
    [(0, 3), (3, 6), (7, 9)]
    """
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        piece = text[s:e]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((s + lead, s + len(piece.rstrip())))
    return out


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    raise InvalidInputError(f"{folder} has no {stem}.jsonl or {stem}.jsonl.gz; is it a BEIR data set folder?")


def _jsonl(path: Path):
    from ..textfiles import read_lines  # UTF-8 (BOM dropped); a bad byte is an error naming file:line

    for number, line in read_lines(path):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None


def _beir_entries(path: Path, keys: tuple[str, ...]):
    """The objects of a BEIR JSON-lines file, each checked to hold ``keys``."""
    for number, entry in enumerate(_jsonl(path), start=1):
        missing = [k for k in keys if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise InvalidInputError(
                f"{path}: entry {number} has no {' or '.join(repr(k) for k in missing)}; BEIR lines are "
                '{"_id": ..., "title": ..., "text": ...}'
            )
        yield entry


def _lines(path: Path):
    """The lines of a text file by the one text-file rule (:mod:`crossrank.textfiles`), for ``csv``."""
    return (line for _, line in read_lines(path))


def load_beir(folder: Path) -> EvalSet:
    """BEIR: corpus.jsonl[.gz] (``_id, title, text``), queries.jsonl[.gz], a qrels TSV (``test.tsv`` or
    ``qrels/test.tsv``, header line ``query-id corpus-id score``)."""
    corpus = {
        str(d["_id"]): (d.get("title") or "", d.get("text") or "")
        for d in _beir_entries(_find(folder, "corpus"), ("_id",))
    }
    all_queries = {str(q["_id"]): q["text"] for q in _beir_entries(_find(folder, "queries"), ("_id", "text"))}
    qrels_file = next((p for p in (folder / "test.tsv", folder / "qrels" / "test.tsv") if p.is_file()), None)
    qrels_file = qrels_file or next(
        iter(sorted(folder.glob("*.tsv")) + sorted(folder.glob("qrels/*.tsv"))), None
    )
    if qrels_file is None:
        raise InvalidInputError(f"{folder} has no qrels TSV (test.tsv or qrels/test.tsv)")
    qrels: dict[str, dict[str, int]] = {}
    for number, row in enumerate(csv.reader(_lines(qrels_file), delimiter="\t"), start=1):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if number == 1 and not row[-1].lstrip("-").isdigit():
            continue  # header
        if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
            raise InvalidInputError(
                f"{qrels_file}:{number}: expected 'query-id corpus-id score' (score an integer grade)"
            )
        if int(row[2]) > 0:
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {q: t for q, t in all_queries.items() if q in qrels}
    self_hits = sum(q in corpus for q in queries)
    notes = (
        [
            f"{self_hits} queries are also corpus documents; as in BEIR's evaluation, a query's own id is "
            "dropped from its retrieved list"
        ]
        if self_hits
        else []
    )
    return drop_blank_queries(
        EvalSet(folder.name, queries, corpus, {q: qrels[q] for q in queries}, None, notes, exclude_self=True)
    )


@dataclass(frozen=True, slots=True)
class WikiQAQuestion:
    """One WikiQA question with its candidate sentences ``(sentence id, text, label)`` in file order."""

    question: str
    sentences: list[tuple[str, str, int]]


def read_wikiqa(files: Sequence[Path]) -> dict[str, WikiQAQuestion]:
    """Every question of WikiQA TSVs (``QuestionID Question ... SentenceID Sentence Label``), in file order,
    including those without a correct sentence: the one reader of the format."""
    questions: dict[str, WikiQAQuestion] = {}
    for file in files:
        reader = csv.DictReader(_lines(file), delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in WIKIQA_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise InvalidInputError(
                f"{file}: no column {', '.join(missing)}; a WikiQA TSV has the header line "
                "QuestionID Question DocumentID DocumentTitle SentenceID Sentence Label"
            )
        try:
            for number, row in enumerate(reader, start=2):
                if row["Label"] is None:
                    raise InvalidInputError(f"{file}:{number}: fewer columns than the header names")
                entry = questions.setdefault(row["QuestionID"], WikiQAQuestion(row["Question"], []))
                entry.sentences.append((row["SentenceID"], row["Sentence"], int(row["Label"].strip() == "1")))
        except csv.Error as exc:  # e.g. a field over csv's size limit: not a WikiQA TSV
            raise InvalidInputError(f"{file}: {exc}") from None
    return questions


def load_wikiqa(folder: Path) -> EvalSet:
    """Every WikiQA TSV in ``folder``; questions with at least one correct sentence."""
    files = sorted(folder.glob("*.tsv"))
    if not files:
        raise InvalidInputError(f"{folder} has no WikiQA .tsv files (QuestionID Question ... Sentence Label)")
    queries, corpus, qrels, candidates = {}, {}, {}, {}
    for qid, entry in read_wikiqa(files).items():
        corpus.update((sid, ("", text)) for sid, text, _ in entry.sentences)
        relevant = {sid: 1 for sid, _, label in entry.sentences if label}
        if relevant:
            queries[qid], qrels[qid] = entry.question, relevant
            candidates[qid] = [sid for sid, _, _ in entry.sentences]
    return drop_blank_queries(EvalSet(folder.name, queries, corpus, qrels, candidates))


def _squad_paragraphs(folder: Path):
    files = sorted(folder.glob("*.json"))
    if not files:
        raise InvalidInputError(
            f"{folder} has no SQuAD-style .json files (data -> paragraphs -> context, qas)"
        )
    for file in files:
        try:
            data = json.loads(read_text(file))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict) or "data" not in data:
            raise InvalidInputError(f"{file} is not SQuAD-style JSON (no top-level 'data')")
        for d, article in enumerate(data["data"]):
            for p, paragraph in enumerate(article.get("paragraphs", [])):
                if not isinstance(paragraph.get("context"), str) or any(
                    "id" not in qa for qa in paragraph.get("qas", [])
                ):
                    raise InvalidInputError(
                        f"{file}: data[{d}].paragraphs[{p}] needs a 'context' text and an 'id' per question"
                    )
                pid = str(paragraph.get("id") or f"{file.stem}-{d}-{p}")
                yield pid, article.get("title", ""), paragraph


def load_cmrc(folder: Path) -> EvalSet:
    """Passage ranking: every question's own paragraph is its one relevant passage among all paragraphs
    (blank questions skipped)."""
    queries, corpus, qrels = {}, {}, {}
    for pid, title, paragraph in _squad_paragraphs(folder):
        corpus[pid] = (title, paragraph["context"])
        for qa in paragraph.get("qas", []):
            queries[str(qa["id"])] = qa.get("question")
            qrels[str(qa["id"])] = {pid: 1}
    return drop_blank_queries(EvalSet(folder.name, queries, corpus, qrels))


def answer_spans(context: str, answers: list[dict]) -> list[tuple[int, int]]:
    """Character spans of the answers. A few CMRC offsets are off by one or missing: then the occurrence
    of the answer text nearest to the given offset is taken."""
    spans = []
    for answer in answers:
        text, start = answer.get("text", ""), answer.get("answer_start", -1)
        if not text:
            continue
        if not isinstance(start, int) or isinstance(start, bool):
            start = -1
        if not (0 <= start and context[start : start + len(text)] == text):
            found = [m.start() for m in re.finditer(re.escape(text), context)]
            start = min(found, key=lambda i: abs(i - max(start, 0)), default=-1)
        if start >= 0:
            spans.append((start, start + len(text)))
    return spans


def load_cmrc_sentences(folder: Path) -> EvalSet:
    """Answer-sentence selection: candidates are the sentences of the question's paragraph; relevant are
    those overlapping an answer span."""
    queries, corpus, qrels, candidates, skipped = {}, {}, {}, {}, 0
    for pid, _title, paragraph in _squad_paragraphs(folder):
        context = paragraph["context"]
        sentences = split_sentences(context)
        ids = [f"{pid}-s{n}" for n in range(len(sentences))]
        corpus.update((sid, ("", context[s:e])) for sid, (s, e) in zip(ids, sentences, strict=True))
        for qa in paragraph.get("qas", []):
            spans = answer_spans(context, qa.get("answers", []))
            relevant = {
                sid: 1
                for sid, (s, e) in zip(ids, sentences, strict=True)
                if any(s < ae and as_ < e for as_, ae in spans)
            }
            if not relevant:
                skipped += 1
                continue
            qid = str(qa["id"])
            queries[qid], qrels[qid], candidates[qid] = qa.get("question"), relevant, ids
    notes = [f"{skipped} questions skipped: no answer span found in the paragraph"] if skipped else []
    return drop_blank_queries(EvalSet(folder.name + "-sent", queries, corpus, qrels, candidates, notes))


LOADERS = {"beir": load_beir, "wikiqa": load_wikiqa, "cmrc": load_cmrc, "cmrc-sent": load_cmrc_sentences}


def load_dataset(folder: str | Path, fmt: str) -> EvalSet:
    """Load the data set in ``folder`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in LOADERS:
        raise InvalidInputError(f"dataset format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(
            f"dataset folder {folder} does not exist; pass --dataset DIR holding the {fmt} files"
        )
    evalset = LOADERS[fmt](folder)
    if not evalset.queries:
        raise InvalidInputError(f"{folder}: no query with a relevant document was found for format {fmt}")
    logger.info("%s: %d queries, %d corpus entries", evalset.name, len(evalset.queries), len(evalset.corpus))
    return evalset
