"""ranx metrics on hand-checkable cases, and the loaders on the real data read in place."""

from __future__ import annotations

import math

import pytest

from crossrank.errors import InvalidInputError
from crossrank.eval.datasets import answer_spans, load_dataset, split_sentences
from crossrank.eval.metrics import evaluate, evaluate_per_query, to_ranx_run


def test_metrics_by_hand():
    qrels = {"q1": {"d1": 1}, "q2": {"d3": 1, "d4": 1}}
    ranked = {"q1": ["d0", "d1", "d2"], "q2": ["d3", "d9", "d4"]}
    per = evaluate_per_query(qrels, ranked)
    assert per["mrr@10"] == {"q1": 0.5, "q2": 1.0}
    assert per["ndcg@10"]["q1"] == pytest.approx(1 / math.log2(3))
    ideal = 1 + 1 / math.log2(3)
    assert per["ndcg@10"]["q2"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert per["map"]["q2"] == pytest.approx((1 + 2 / 3) / 2)
    assert per["recall@100"] == {"q1": 1.0, "q2": 1.0}
    assert evaluate(qrels, ranked)["mrr@10"] == pytest.approx(0.75)


def test_missing_or_empty_lists_score_zero_and_order_is_ours():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    assert evaluate(qrels, {"q1": ["a"], "q2": []}) == pytest.approx(
        {"ndcg@10": 0.5, "mrr@10": 0.5, "map": 0.5, "recall@100": 0.5}
    )
    assert to_ranx_run({"q": ["x", "y", "z"]}) == {"q": {"x": 3.0, "y": 2.0, "z": 1.0}}
    assert (
        evaluate({"q": {"a": 1}}, {"q": ["b"] * 0 + ["a"] + [f"n{i}" for i in range(200)]})["recall@100"]
        == 1.0
    )


def test_sentence_split_and_answer_spans():
    assert split_sentences("第一句。第二句！！第三句") == [(0, 4), (4, 9), (9, 12)]
    assert split_sentences("Is it? Yes!  ") == [(0, 6), (7, 11)]
    context = "小明去了北京。他很高兴。"
    assert answer_spans(context, [{"text": "北京", "answer_start": 4}]) == [(4, 6)]
    assert answer_spans(context, [{"text": "高兴", "answer_start": 99}]) == [(9, 11)]  # wrong start: search
    assert answer_spans(context, [{"text": "上海", "answer_start": 0}]) == []
    twice = "北京很大。我爱北京。"  # an offset that is off by one picks the nearest occurrence, not the first
    assert answer_spans(twice, [{"text": "北京", "answer_start": 8}]) == [(7, 9)]
    assert answer_spans(twice, [{"text": "北京", "answer_start": None}]) == [(0, 2)]


@pytest.mark.parametrize(
    "folder, fmt, n_queries, corpus, n_candidates",
    [
        ("arguana", "beir", 1406, 8674, None),
        ("wikiqa", "wikiqa", 126, 1119, 1130),
        ("cmrc2018", "cmrc", 1000, 256, None),  # 2 blank questions skipped, as in cmrc-sent
        ("cmrc2018", "cmrc-sent", 1000, 3056, 11998),
    ],
)
def test_loaders_on_the_real_data(shared_data, folder, fmt, n_queries, corpus, n_candidates):
    evalset = load_dataset(shared_data / folder, fmt)
    assert len(evalset.queries) == n_queries and len(evalset.corpus) == corpus
    assert all(evalset.qrels[q] for q in evalset.queries)
    if n_candidates is None:
        assert evalset.candidates is None
    else:
        assert sum(len(c) for c in evalset.candidates.values()) == n_candidates
        assert all(set(evalset.qrels[q]) <= set(evalset.candidates[q]) for q in evalset.queries)
    small = evalset.limit(5)
    assert list(small.queries) == list(evalset.queries)[:5] and small.corpus is evalset.corpus


def test_cmrc_sentence_relevance_overlaps_the_answer(shared_data):
    evalset = load_dataset(shared_data / "cmrc2018", "cmrc-sent")
    import json

    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_trial.json").read_text(encoding="utf-8"))
    qa = data["data"][0]["paragraphs"][0]["qas"][0]
    answer = qa["answers"][0]["text"]
    relevant = [evalset.corpus[s][1] for s in evalset.qrels[str(qa["id"])]]
    assert any(answer in sentence or sentence in answer for sentence in relevant)
    assert "2 blank questions skipped" in evalset.notes


def test_heldout_cmrc_tasks_are_the_eval_loaders(shared_data):
    from crossrank.training.heldout import candidate_tasks

    evalset = load_dataset(shared_data / "cmrc2018", "cmrc-sent")
    tasks = candidate_tasks(shared_data / "cmrc2018", "cmrc-sent")
    assert [t.qid for t in tasks] == list(evalset.queries)
    first = tasks[0]
    assert first.candidates == tuple(evalset.corpus[c][1] for c in evalset.candidates[first.qid])
    assert sum(first.labels) == len(evalset.qrels[first.qid])
    wikiqa = candidate_tasks(shared_data / "wikiqa", "wikiqa")
    assert len(wikiqa) == 126 and sum(len(t.candidates) for t in wikiqa) == 1130
    assert all(any(t.labels) for t in wikiqa)


def test_bad_dataset_input(tmp_path, shared_data):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_dataset(tmp_path / "missing", "beir")
    with pytest.raises(InvalidInputError, match="format must be one of"):
        load_dataset(shared_data / "wikiqa", "msmarco")
    with pytest.raises(InvalidInputError, match="corpus.jsonl"):
        load_dataset(shared_data / "wikiqa", "beir")
    with pytest.raises(InvalidInputError, match="SQuAD"):
        load_dataset(tmp_path, "cmrc")
    wikiqa = load_dataset(shared_data / "wikiqa", "wikiqa")
    for bad in (-1, 0, 2.5, True):  # 0 ran every query, as None does
        with pytest.raises(InvalidInputError, match="--limit must be a positive number of queries"):
            wikiqa.limit(bad)
    assert wikiqa.limit(None) is wikiqa


BEIR = {
    "corpus.jsonl": '{"_id": "d1", "text": "apple pie"}\n',
    "queries.jsonl": '{"_id": "q1", "text": "apple"}\n',
    "test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
}
MALFORMED = [
    ("beir", "queries.jsonl", '{"id": "q1", "text": "apple"}\n', r"entry 1 has no '_id'"),
    ("beir", "corpus.jsonl", '{"text": "apple pie"}\n', r"corpus.jsonl: entry 1 has no '_id'"),
    ("beir", "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1.0\n", r"test.tsv:2: .*integer grade"),
    ("cmrc", "a.json", '{"data": [\n', r"a.json:2: not valid JSON"),
    (
        "cmrc-sent",
        "a.json",
        '{"data": [{"paragraphs": [{"qas": []}]}]}',
        r"paragraphs\[0\] needs a 'context'",
    ),
    ("cmrc", "a.json", '{"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q"}]}]}]}', "'id'"),
    ("wikiqa", "a.tsv", "QuestionID\tQuestion\tSentence\nQ1\tq\ts\n", "no column SentenceID, Label"),
    (
        "wikiqa",
        "a.tsv",
        "\t".join(["QuestionID", "Question", "SentenceID", "Sentence", "Label"]) + "\nQ1\tq\n",
        r"a.tsv:2: fewer columns",
    ),
]


@pytest.mark.parametrize(("fmt", "name", "text", "message"), MALFORMED)
def test_malformed_dataset_files_are_errors_naming_the_file(tmp_path, fmt, name, text, message):
    """Each raised a raw KeyError, ValueError or JSONDecodeError (a traceback from `crossrank eval`)."""
    for file, content in (BEIR if fmt == "beir" else {}).items():
        (tmp_path / file).write_text(content, encoding="utf-8")
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        load_dataset(tmp_path, fmt)


WIKIQA_TSV = (
    "QuestionID\tQuestion\tSentenceID\tSentence\tLabel\n"
    "Q1\tcafé?\tS1\tcafé au lait\t1\nQ1\tcafé?\tS2\tno\t0\n"
)


SQUAD = (
    '{"data": [{"paragraphs": [{"context": "咖啡", "qas": [{"id": "1", "question": "q", '
    '"answers": [{"text": "咖啡", "answer_start": 0}]}]}]}]}'
)


@pytest.mark.parametrize(
    ("fmt", "name", "text"),
    [
        ("wikiqa", "a.tsv", WIKIQA_TSV),
        ("beir", "test.tsv", BEIR["test.tsv"] + "\n"),  # a blank line at the end
        ("cmrc", "a.json", SQUAD),
    ],
)
def test_dataset_files_follow_the_text_file_rule(tmp_path, fmt, name, text):
    """WikiQA, qrels and SQuAD files were opened as plain UTF-8: a BOM became part of the first column
    ('no column QuestionID') or a JSON error, and a Latin-1 byte a UnicodeDecodeError traceback."""
    for file, content in (BEIR if fmt == "beir" else {}).items():
        (tmp_path / file).write_text(content, encoding="utf-8")
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_dataset(tmp_path, fmt).queries
    (tmp_path / name).write_bytes(text.encode("utf-8").replace(b"e", b"\xe9", 1))
    with pytest.raises(InvalidInputError, match=rf"{name}:1"):
        load_dataset(tmp_path, fmt)
