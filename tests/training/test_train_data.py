"""Data loading and validation, graded mapping, sampling, BM25 mining, sentence derivation, metrics."""

from __future__ import annotations

import json
import logging

import pytest

from crossrank.training.data import GroupSampler, LoadReport, RankRecord, load_rank_file, parse_record


def test_malformed_lines_are_reported_with_line_numbers_and_skipped(tmp_path, caplog):
    good = {"source": "s", "lang": "en", "query": "q", "pos": ["p"], "neg": ["n"]}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "pos": []}),
        json.dumps({"source": "s", "lang": "en", "a": "x", "b": "y", "label": 1}),
        json.dumps({**good, "neg": "a string"}),
        "",
        json.dumps({**good, "query": "q2"}),
    ]
    path = tmp_path / "rank_bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = LoadReport()
    with caplog.at_level(logging.WARNING):
        records = load_rank_file(path, report)
    assert [r.query for r in records] == ["q", "q2"]
    assert [(n, reason.split(" ")[0]) for _, n, reason in report.problems] == [
        (2, "not"),
        (3, "no"),
        (4, "a"),
        (5, "'neg'"),
    ]
    assert f"{path}:2" in caplog.text and "not valid JSON" in caplog.text


def test_data_files_follow_the_text_file_rule(tmp_path):
    """Training and calibration data were read with Python's text mode: a UTF-8 BOM made the first record
    'not valid JSON' (skipped with a warning) and a Latin-1 byte raised a raw UnicodeDecodeError."""
    import gzip

    from crossrank.errors import InvalidInputError

    lines = [json.dumps({"lang": "en", "query": f"q{i}", "pos": ["p"], "neg": ["n"]}) for i in range(2)]
    text = "\n".join(lines) + "\n"
    bom = tmp_path / "bom.jsonl.gz"
    bom.write_bytes(gzip.compress(b"\xef\xbb\xbf" + text.encode("utf-8")))
    report = LoadReport()
    assert [r.query for r in load_rank_file(bom, report)] == ["q0", "q1"] and not report.problems
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(text.encode("utf-8") + b'{"query": "caf\xe9"}\n')
    with pytest.raises(InvalidInputError, match=r"latin.jsonl:3: not valid UTF-8"):
        load_rank_file(latin)


def test_training_survives_malformed_lines(toy_config, toy_data):
    from crossrank.training.trainer import Trainer

    with toy_data.open("a", encoding="utf-8") as fh:
        fh.write('{"query": "broken"\n')
    result = Trainer(toy_config(steps=1)).train()
    assert result.steps == 1
    assert [(n, "JSON" in why) for _, n, why in result.skipped_lines] == [(21, True)]


def test_graded_records_follow_the_documented_rule():
    line = json.dumps({"lang": "zh", "query": "q", "graded": [["a", 3], ["b", 2], ["c", 1], ["d", 0]]})
    record = parse_record(line, "f:1")
    assert record.pos == ("a", "b") and record.neg == ("d",)
    with pytest.raises(ValueError, match="no positive"):
        parse_record(json.dumps({"lang": "zh", "query": "q", "graded": [["c", 1], ["d", 0]]}), "f:2")


def _records(n: int = 10) -> list[RankRecord]:
    en = [RankRecord("en-src", "en", f"q{i}", (f"p{i}",), (f"n{i}",)) for i in range(n)]
    zh = [RankRecord("zh-src", "zh", f"问{i}", (f"答{i}",), ()) for i in range(n // 5)]
    return en + zh


def test_sampler_is_deterministic_and_language_balanced():
    sampler = GroupSampler(_records(), group_size=3, seed=1)
    assert sampler.groups(5, 4) == GroupSampler(_records(), group_size=3, seed=1).groups(5, 4)
    groups = [g for step in range(200) for g in sampler.groups(step, 4)]
    share_zh = sum(q.startswith("问") for q, _ in groups) / len(groups)
    assert 0.4 < share_zh < 0.6  # 2 of 12 queries are Chinese, yet half of the groups are
    for query, passages in groups:
        assert len(passages) == 3 and passages[0].endswith(query[1:])  # positive first
        assert passages[0] not in passages[1:]


def test_bm25_mining_finds_same_source_negatives_and_never_positives():
    from crossrank.training.mining import mine_negatives

    records = [
        RankRecord("s", "en", "capital of france", ("Paris is the capital of France.",), ()),
        RankRecord("s", "en", "capital of spain", ("Madrid is the capital of Spain.",), ()),
        RankRecord("s", "en", "largest ocean", ("The Pacific is the largest ocean.",), ()),
        RankRecord("t", "zh", "法国首都", ("巴黎是法国的首都。",), ("马德里是西班牙的首都。",)),
    ]
    mined = mine_negatives(records, per_query=1)
    assert mined[0] == ("Madrid is the capital of Spain.",)
    assert all("Paris" not in n for n in mined[0]) and mined[3] == ("马德里是西班牙的首都。",)


def test_sentence_split_rule():
    from crossrank.training.sentences import split_sentences

    assert split_sentences("他说：「好。」然后走了！真的吗？是", "zh", min_chars=1) == [
        "他说：「好。」",
        "然后走了！",
        "真的吗？",
        "是",
    ]
    assert split_sentences("Dr. who? It is 3.5 m long. Yes it is.", "en", min_chars=1) == [
        "Dr. who?",
        "It is 3.5 m long.",
        "Yes it is.",
    ]


def test_ranking_metrics_match_hand_computed_values():
    from crossrank.training.metrics import ranking_metrics

    result = ranking_metrics(
        {"a": [0.9, 0.8, 0.1], "b": [0.2, 0.1], "c": [1.0]}, {"a": [0, 1, 1], "b": [1, 0], "c": [0]}
    )
    # a: relevant at ranks 2 and 3 -> AP (1/2 + 2/3) / 2, RR 1/2; b: AP 1, RR 1; c has no relevant: left out
    assert result["queries"] == 2
    assert result["map"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1) / 2)
    assert result["mrr"] == pytest.approx(0.75)


def test_group_loss_matches_hand_computed_values():
    import math

    import torch

    from crossrank.training.losses import group_loss

    logits = torch.tensor([2.0, 0.0, 0.0])
    listwise = math.log(1 + 2 * math.exp(-2))  # -log(e^2 / (e^2 + 1 + 1))
    pointwise = 0.5 * (math.log1p(math.exp(-2)) + math.log(2))  # positive at 2, both negatives at 0
    assert group_loss(logits).item() == pytest.approx(listwise, rel=1e-6)
    assert group_loss(logits, 0.5).item() == pytest.approx(listwise + 0.5 * pointwise, rel=1e-6)
    # the listwise term ignores the logits' level; the pointwise one pulls positives up, negatives down
    shifted = logits - 10
    assert group_loss(shifted).item() == pytest.approx(listwise, rel=1e-5)
    assert group_loss(shifted, 1.0).item() > group_loss(logits, 1.0).item()


def test_calibration_matches_hand_computed_values():
    import math

    from crossrank.training.metrics import calibration

    # sigmoid(0) = 0.5 counts as relevant; sigmoid(ln 3) = 0.75
    result = calibration({"a": [0.0, math.log(3)], "b": [-math.log(3)]}, {"a": [1, 0], "b": [0]})
    assert result["brier"] == pytest.approx((0.25 + 0.75**2 + 0.25**2) / 3)
    assert result["relevant_at_least_0.5"] == 1.0
    assert result["other_below_0.5"] == pytest.approx(0.5)
