"""Calibration: Platt fit, folding into the head (identical rankings, stated probabilities, seen by
transformers itself), composition, and refusals."""

import json

import numpy as np
import pytest

from crossrank import Reranker
from crossrank.calibration import (
    Calibration,
    fit_platt,
    fold_into_head,
    model_calibration,
    write_calibrated_model,
)
from crossrank.errors import InvalidInputError, UnsupportedModelError
from crossrank.thresholds import sigmoid

PAIRS = [
    ("what is panda?", "hi"),
    ("what is panda?", "The giant panda is a bear species endemic to China."),
    ("咖啡因", "绿茶含有少量咖啡因，但富含L-茶氨酸，可缓解兴奋作用。"),
    ("capital of France", "Paris is the capital and largest city of France."),
]
CAL = Calibration(scale=0.5, bias=1.25, fitted_on="test")


def test_platt_fit_recovers_a_known_map():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 20_000)
    y = rng.random(z.size) < 1 / (1 + np.exp(-(2.0 * z - 1.0)))
    cal = fit_platt(z, y, fitted_on="synthetic", queries=7)
    assert cal.scale == pytest.approx(2.0, abs=0.1) and cal.bias == pytest.approx(-1.0, abs=0.1)
    assert (cal.pairs, cal.queries, cal.fitted_on) == (20_000, 7, "synthetic")


def test_platt_fit_refuses_one_class_and_inverted_data():
    with pytest.raises(InvalidInputError, match="all relevant or all not"):
        fit_platt([1.0, 2.0], [1, 1])
    with pytest.raises(InvalidInputError, match="positive scale"):
        fit_platt([-3.0, -2.0, 2.0, 3.0, -1.0, 1.0], [1, 1, 0, 0, 1, 0])  # higher logit = less relevant


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_xlmr_dir"])
def test_folded_head_gives_the_calibrated_logit_and_the_same_ranking(fixture, request, tmp_path):
    source = request.getfixturevalue(fixture)
    out = write_calibrated_model(source, tmp_path / "calibrated", CAL)
    raw = Reranker(str(source), backend="torch").compute_score(PAIRS)
    folded = Reranker(str(out), backend="torch")
    logits = folded.compute_score(PAIRS)
    # fp32 through the same forward pass: the head's last matmul is rescaled, so errors stay ~1e-6.
    assert logits == pytest.approx([CAL.apply(z) for z in raw], abs=1e-5)
    assert np.argsort(logits).tolist() == np.argsort(raw).tolist()
    assert folded.compute_score(PAIRS, normalize=True) == pytest.approx(
        [sigmoid(CAL.apply(z)) for z in raw], abs=1e-6
    )
    assert folded.info()["calibration"]["scale"] == CAL.scale and folded.info()["calibration"]["bias"] == 1.25


def test_transformers_itself_reads_the_calibrated_logit(tiny_xlmr_dir, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = write_calibrated_model(tiny_xlmr_dir, tmp_path / "calibrated", CAL)
    tok = AutoTokenizer.from_pretrained(str(tiny_xlmr_dir))
    batch = tok([q for q, _ in PAIRS], [d for _, d in PAIRS], padding=True, return_tensors="pt")
    with torch.no_grad():
        raw = AutoModelForSequenceClassification.from_pretrained(str(tiny_xlmr_dir))(**batch).logits[:, 0]
        new = AutoModelForSequenceClassification.from_pretrained(str(out))(**batch).logits[:, 0]
    assert new.tolist() == pytest.approx((raw * CAL.scale + CAL.bias).tolist(), abs=1e-5)


def test_calibrating_twice_composes_and_the_card_records_the_total(tiny_bert_dir, tmp_path):
    once = write_calibrated_model(tiny_bert_dir, tmp_path / "once", CAL)
    twice = write_calibrated_model(once, tmp_path / "twice", Calibration(2.0, -0.5, fitted_on="again"))
    total = model_calibration(twice)
    assert (total.scale, total.bias) == pytest.approx((1.0, 2.0))  # 2 * (0.5 z + 1.25) - 0.5
    raw = Reranker(str(tiny_bert_dir), backend="torch").compute_score(PAIRS)
    assert Reranker(str(twice), backend="torch").compute_score(PAIRS) == pytest.approx(
        [z + 2.0 for z in raw], abs=1e-5
    )
    assert model_calibration(tiny_bert_dir) is None  # the source folder is untouched


def test_refusals(tiny_bert_dir, tmp_path):
    with pytest.raises(InvalidInputError, match="outside"):
        write_calibrated_model(tiny_bert_dir, tiny_bert_dir / "sub", CAL)
    with pytest.raises(UnsupportedModelError, match="no classifier"):
        fold_into_head({"bert.pooler.dense.weight": np.zeros((2, 2))}, CAL)
    with pytest.raises(UnsupportedModelError, match="safetensors"):
        write_calibrated_model(tmp_path, tmp_path.parent / "elsewhere", CAL)
    with pytest.raises(InvalidInputError, match="scale"):
        Calibration.from_dict(json.loads('{"bias": 1}'))


@pytest.mark.parametrize("text", ['{"calibration": {"scale": 0.25,', "[1, 2]", "\udcff"])
def test_a_damaged_model_card_is_a_clear_error(tiny_bert_dir, tmp_path, text):
    """A crossrank.json that is not a JSON object is refused naming the file and what to do, from the
    calibration reader and from Reranker.info() (it raised a raw JSONDecodeError)."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "crossrank.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(UnsupportedModelError, match="crossrank.json"):
        model_calibration(folder)
    with pytest.raises(UnsupportedModelError, match="crossrank.json"):
        Reranker(str(folder), backend="torch").info()


@pytest.mark.slow
def test_calibrate_command_end_to_end(shared_data, tmp_path):
    import gzip
    import subprocess
    import sys

    source = shared_data / "train" / "permissive" / "rank_selqa_ass_devtest.jsonl.gz"
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(30)]
    data = tmp_path / "lists.jsonl"
    data.write_text("".join(lines), encoding="utf-8")
    out, saved = tmp_path / "calibrated", tmp_path / "new" / "calibration.json"  # folder made first
    cmd = [sys.executable, "-m", "crossrank.cli.main", "calibrate", "embedded", "--data", str(data)]
    result = subprocess.run(
        [*cmd, "--output", str(out), "--write-json", str(saved), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["queries"] == 30 and 30 * 2 <= report["pairs"] <= 30 * 10  # at most 10 candidates each
    assert 0 < report["after"]["brier"] < 0.25 and 0 <= report["after"]["ece"] < 0.5
    total = Calibration.read(saved)
    assert model_calibration(out) == total  # recorded from the head's original logit, composed
    shipped = Reranker("embedded", backend="torch")
    calibrated = Reranker(str(out), backend="torch")
    base = model_calibration(shipped.model.path)  # undo the bundled map, then apply the recorded total
    expected = [
        total.apply((z - base.bias) / base.scale) if base else total.apply(z)
        for z in shipped.compute_score(PAIRS)
    ]
    assert calibrated.compute_score(PAIRS) == pytest.approx(expected, abs=1e-4)
    missing = subprocess.run([*cmd], capture_output=True, text=True, timeout=600)
    assert missing.returncode == 2 and "nothing to write" in missing.stderr


def test_calibrate_command_refuses_data_it_cannot_fit_before_loading_a_model(tmp_path, capsys):
    """--max-candidates 0 sliced lists from their end and 1 kept no relevant passage; lists without a
    non-relevant passage left nothing to score ("no pairs to score"). Each is refused, saying why."""
    from crossrank.cli.main import main

    data = tmp_path / "lists.jsonl"
    line = {"query": "q", "lang": "en", "pos": ["p1", "p2", "p3"], "neg": ["n1", "n2"]}
    data.write_text(json.dumps(line) + "\n", encoding="utf-8")
    cmd = ["calibrate", "no-such-model", "--data", str(data), "--write-json", str(tmp_path / "c.json")]
    for option in (["--max-candidates", "0"], ["--max-candidates", "1"], ["--per-source", "0"]):
        assert main([*cmd, *option]) == 2
        assert "--max-candidates must be at least 2" in capsys.readouterr().err
    data.write_text(json.dumps({**line, "neg": []}) + "\n", encoding="utf-8")
    assert main(cmd) == 2
    assert "non-relevant passage" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_an_output_folder_that_is_not_a_calibrated_model_is_refused_not_replaced(
    tiny_bert_dir, tmp_path, capsys
):
    """--output named an existing folder of other files (or a file): the swap replaced it and deleted all
    it held. It is refused, before scoring; an earlier calibrated output is still replaced."""
    from crossrank.cli.main import main

    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not a calibrated model"):
        write_calibrated_model(tiny_bert_dir, work, CAL)
    assert (work / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(InvalidInputError, match="is a file"):
        write_calibrated_model(tiny_bert_dir, work / "notes.txt", CAL)

    data = tmp_path / "lists.jsonl"
    data.write_text(json.dumps({"query": "q", "lang": "en", "pos": ["p"], "neg": ["n"]}) + "\n", "utf-8")
    assert main(["calibrate", "no-such-model", "--data", str(data), "--output", str(work)]) == 2
    assert "not a calibrated model" in capsys.readouterr().err
    assert (work / "notes.txt").is_file()

    again = write_calibrated_model(tiny_bert_dir, tmp_path / "cal", CAL)
    assert model_calibration(write_calibrated_model(tiny_bert_dir, again, CAL)) == CAL


def test_write_json_naming_a_folder_is_refused_before_scoring(tiny_bert_dir, tmp_path, capsys):
    """--write-json naming a folder failed only after the scoring (and after --output was written); a
    missing folder is made first, which the end-to-end test above checks."""
    from crossrank.cli.main import main

    data = tmp_path / "lists.jsonl"
    data.write_text(json.dumps({"query": "q", "lang": "en", "pos": ["p"], "neg": ["n"]}) + "\n", "utf-8")
    out = tmp_path / "calibrated"
    args = ["calibrate", str(tiny_bert_dir), "--data", str(data), "--output", str(out)]
    assert main([*args, "--write-json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not out.exists()
