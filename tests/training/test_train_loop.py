"""Training end to end on a tiny model: loss goes down, the result loads, resume continues the same run."""

from __future__ import annotations

import json

import pytest


def test_training_lowers_loss_and_saves_a_loadable_model(toy_config):
    from crossrank.reranker import Reranker
    from crossrank.training.trainer import Trainer

    trainer = Trainer(toy_config(steps=12))
    groups = trainer.sampler.groups(0, 8)
    before = trainer.loss_on(groups)
    result = trainer.train()
    assert result.steps == 12 and len(result.history) == 12
    assert trainer.loss_on(groups) < before

    card = json.loads((result.model_dir / "crossrank.json").read_text())
    assert card["trained"] is True and card["steps"] == 12
    reranker = Reranker(str(result.model_dir))
    scores = reranker.score_pairs([("where is the apple", "The apple is found near the old town.")])
    assert len(scores) == 1


def test_resume_continues_the_same_run(toy_config, tmp_path):
    from crossrank.training.checkpoint import list_checkpoints
    from crossrank.training.trainer import Trainer

    full = Trainer(toy_config(steps=6, output=str(tmp_path / "full"))).train()

    interrupted = toy_config(steps=6, output=str(tmp_path / "resumed"), save_every=2)
    first = Trainer(interrupted).train(stop_at=3)
    assert first.steps == 3
    assert [p.name for p in list_checkpoints(interrupted.output)][-1] == "step-3.pt"
    resumed = Trainer(interrupted).train(resume=True)

    assert resumed.steps == 6
    assert resumed.history == pytest.approx(full.history, abs=1e-6)


def test_a_new_run_in_an_output_with_checkpoints_is_refused(toy_config, toy_data, capsys):
    """A second run started without --resume in the same output saved step-2, then pruned it in favour of
    the first run's newer step-4 and step-6; --resume then continued the first run. It is refused."""
    from crossrank.cli.main import main
    from crossrank.errors import InvalidInputError
    from crossrank.training.checkpoint import list_checkpoints
    from crossrank.training.trainer import Trainer

    config = toy_config(steps=6, save_every=2)
    Trainer(config).train()
    before = {p.name: p.stat().st_mtime_ns for p in list_checkpoints(config.output)}
    with pytest.raises(InvalidInputError, match="--resume"):
        Trainer(toy_config(steps=2, save_every=2, seed=8)).train()
    assert main(["train", "--data", str(toy_data), "--output", config.output]) == 2
    assert "holds checkpoints of an earlier run (newest step-6.pt)" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in list_checkpoints(config.output)} == before


def test_resuming_from_a_checkpoint_that_does_not_fit_is_a_clear_error(toy_config):
    """--resume with other freeze settings raised torch's ValueError ('parameter group that doesn't match');
    a damaged checkpoint file raised pickle's. Both name the checkpoint and what to do."""
    from crossrank.errors import InvalidInputError
    from crossrank.training.checkpoint import list_checkpoints
    from crossrank.training.trainer import Trainer

    config = toy_config(steps=2, save_every=1)
    Trainer(config).train()
    with pytest.raises(InvalidInputError, match="step-2.pt does not fit this run.*freeze_layers"):
        Trainer(toy_config(steps=4, freeze_embeddings=False)).train(resume=True)
    list_checkpoints(config.output)[-1].write_bytes(b"garbage\n")
    with pytest.raises(InvalidInputError, match="step-2.pt is not a readable checkpoint"):
        Trainer(toy_config(steps=4)).train(resume=True)


def test_pointwise_term_anchors_the_logits_level(toy_config, tmp_path):
    import torch

    from crossrank.training.trainer import Trainer

    def logits_after(weight: float):
        output = str(tmp_path / str(weight))
        trainer = Trainer(toy_config(steps=80, lr=5e-3, head_lr=1e-2, pointwise_weight=weight, output=output))
        groups = trainer.sampler.groups(10_000, 16)
        trainer.train()
        trainer.model.eval()
        with torch.no_grad():
            out = trainer.model(**trainer.featurizer.tensors(groups)).logits.view(len(groups), -1)
        return out[:, 0], out[:, 1:]

    def offset(pos, neg) -> float:  # how far the middle between the mean logits lies from 0
        return abs(pos.mean().item() + neg.mean().item()) / 2

    listwise = logits_after(0.0)
    pos, neg = logits_after(2.0)
    assert pos.mean() > 0 > neg.mean()  # on average positives above sigmoid 0.5, negatives below
    # listwise alone leaves the level free (here both drift up); the pointwise term centres it on 0
    assert offset(pos, neg) < offset(*listwise) / 3


def test_validation_reports_ranking_metrics(toy_config):
    from crossrank.training.trainer import Trainer

    trainer = Trainer(toy_config(held_out_percent=30.0, steps=2))
    metrics = trainer.validate()
    assert metrics["all"]["queries"] > 0
    assert {"map", "mrr", "ndcg@10"} <= metrics["all"].keys()


def test_frozen_layers_do_not_change(toy_config):
    import torch

    from crossrank.training.trainer import Trainer

    trainer = Trainer(toy_config(steps=3, freeze_layers=1))
    base = trainer.model.base_model
    frozen = {k: v.clone() for k, v in base.encoder.layer[0].state_dict().items()}
    words = base.embeddings.word_embeddings.weight.clone()
    trained = {k: v.clone() for k, v in base.encoder.layer[1].state_dict().items()}
    trainer.train()
    assert all(torch.equal(v, base.encoder.layer[0].state_dict()[k]) for k, v in frozen.items())
    assert torch.equal(words, base.embeddings.word_embeddings.weight)
    assert any(not torch.equal(v, base.encoder.layer[1].state_dict()[k]) for k, v in trained.items())


def test_cli_train_runs_and_reports(toy_data, tiny_xlmr_dir, tmp_path, capsys):
    from crossrank.cli.main import main

    code = main(
        [
            "train",
            "--model",
            str(tiny_xlmr_dir),
            "--data",
            str(toy_data),
            "--output",
            str(tmp_path / "cli"),
            "--steps",
            "2",
            "--group-size",
            "3",
            "--groups-per-step",
            "2",
            "--max-length",
            "48",
            "--eval-every",
            "0",
            "--bf16",
            "off",
            "--held-out-percent",
            "0",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and (tmp_path / "cli" / "model" / "config.json").is_file()


def test_cli_train_logs_follow_the_log_level(toy_data, tiny_xlmr_dir, tmp_path):
    # bm25s (used for hard-negative mining) sets its logger to DEBUG when imported; a fresh process shows
    # whether its messages still reach a user who asked for the default WARNING level
    import subprocess
    import sys

    args = ["train", "--model", str(tiny_xlmr_dir), "--data", str(toy_data), "--output", str(tmp_path / "o")]
    args += ["--steps", "1", "--group-size", "3", "--groups-per-step", "1", "--max-length", "48"]
    args += ["--eval-every", "0", "--bf16", "off", "--held-out-percent", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "crossrank.cli.main", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "DEBUG" not in done.stderr and "bm25s" not in done.stderr, done.stderr


def test_checkpoint_average_is_the_mean_and_loads(toy_config, tmp_path):
    import torch

    from crossrank.reranker import Reranker
    from crossrank.training.average import average_checkpoints, main
    from crossrank.training.checkpoint import list_checkpoints

    config = toy_config(steps=4, save_every=2, keep_checkpoints=5)
    from crossrank.training.trainer import Trainer

    Trainer(config).train()
    paths = list_checkpoints(config.output)
    assert [p.name for p in paths] == ["step-2.pt", "step-4.pt"]
    mean, _ = average_checkpoints(paths)
    states = [torch.load(p, weights_only=False)["model"] for p in paths]
    key = next(iter(mean))
    assert torch.allclose(mean[key], (states[0][key] + states[1][key]) / 2)
    assert main(["--checkpoints", *map(str, paths), "--output", str(tmp_path / "avg")]) == 0
    assert len(Reranker(str(tmp_path / "avg")).score_pairs([("q", "p")])) == 1


def test_checkpoint_average_refuses_bad_input_before_writing(toy_config, tmp_path, capsys):
    """A missing checkpoint raised FileNotFoundError; --embedded-weights on a run of another backbone raised
    InvalidInputError as a traceback, after the averaged model had been written."""
    from crossrank.training.average import main
    from crossrank.training.checkpoint import list_checkpoints
    from crossrank.training.trainer import Trainer

    config = toy_config(steps=1)
    Trainer(config).train()
    ckpt = str(list_checkpoints(config.output)[-1])
    out = tmp_path / "avg"
    for args, message in (
        ([ckpt, str(tmp_path / "nope.pt")], "no checkpoint file"),
        ([ckpt, "--embedded-weights", str(tmp_path / "e.safetensors")], "needs a run of the embedded"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["--output", str(out), "--checkpoints", *args])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sets", "wikiq"], "--sets: unknown wikiq; choose from wikiqa, cmrc, heldout"),
        (["--scorers", "cross_encodr"], "--scorers: unknown cross_encodr; choose from cross_encoder"),
        (["--sets", ","], "--sets: unknown empty list"),
        (["--sets", "wikiqa", "--scorers", "bi_encoder", "--shared-data", "/nonexistent"], "--shared-data"),
    ],
)
def test_heldout_refuses_unknown_sets_scorers_and_data_folders(args, message, capsys):
    """An unknown set printed '{}' (nothing evaluated), an unknown scorer and a missing data folder were
    tracebacks: all three are usage errors naming the option."""
    from crossrank.training.heldout import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
