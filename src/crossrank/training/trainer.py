"""Group-wise cross-encoder training: one positive and ``group_size - 1`` negatives per query, softmax
cross-entropy over each group (the positive is class 0), plus an optional pointwise term that anchors the
logits' level (:mod:`crossrank.training.losses`).

Steps are deterministic: the groups of step ``s`` come from ``(seed, s)`` and dropout is seeded from it,
so a run resumed from a checkpoint follows the same trajectory as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import check_fresh_output, list_checkpoints, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import GroupSampler, LoadReport, RankRecord, load_rank_files, split_held_out
from .losses import group_loss
from .metrics import ranking_metrics
from .mining import mine_negatives
from .model import Featurizer, export_embedded, freeze, load_cross_encoder, resolve_backbone, save_model
from .sentences import derive_sentence_records

logger = logging.getLogger(__name__)

# settings that may change between a run and its resumption without changing the trajectory
_RUN_ONLY = frozenset(
    {"steps", "output", "max_time_minutes", "threads", "eval_every", "save_every", "keep_checkpoints"}
)


def bf16_supported() -> bool:
    """True when this CPU (AVX-512 BF16 or AMX) runs bf16 matmuls natively."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


@dataclass
class TrainResult:
    output: Path
    model_dir: Path
    steps: int
    history: list[float]
    validation: list[dict]
    skipped_lines: list[tuple[str, int, str]]
    embedded_weights: Path | None = None


def load_training_data(config: TrainConfig, report: LoadReport) -> list[RankRecord]:
    """Records from ``data``, plus sentence-level records derived from ``sentence_data``."""
    grades = {"min_pos": config.min_positive_grade, "max_neg": config.max_negative_grade}
    records = load_rank_files(config.data, report, **grades) if config.data else []
    if config.sentence_data:
        paragraphs = load_rank_files(config.sentence_data, report, **grades)
        records += paragraphs if config.keep_sentence_paragraphs else []
        records += derive_sentence_records(paragraphs)
    return records


class Trainer:
    """Prepares data and model from a :class:`TrainConfig`, then runs, validates, checkpoints and saves."""

    def __init__(self, config: TrainConfig):
        import torch

        self.config = config.validated()
        if config.threads:
            torch.set_num_threads(config.threads)
        self.report = LoadReport()
        records = load_training_data(config, self.report)
        train, held = split_held_out(records, config.held_out_percent, config.seed)
        logger.info("%d training queries, %d held out", len(train), len(held))
        mined = mine_negatives(train, config.mine_per_query, config.mine_skip_top)
        self.sampler = GroupSampler(train, config.group_size, config.seed, mined, config.source_weights)
        for lang, sources in self.sampler.sources.items():
            shares = ", ".join(
                f"{s} {w:.2f}" for s, w in zip(sources, self.sampler.weights[lang], strict=True)
            )
            logger.info("sampling %s (half of the groups when two languages): %s", lang, shares)
        self.validation_set = self._validation_set(held)
        self.source, self.embedded = resolve_backbone(config.model)
        from ..tokenization import PairTokenizer

        self.featurizer = Featurizer(
            PairTokenizer.from_pretrained(
                self.source, max_length=config.max_length, query_max_length=config.query_max_length
            )
        )
        torch.manual_seed(config.seed)
        self.model = load_cross_encoder(self.source)
        self.frozen = freeze(self.model, config.freeze_layers, config.freeze_embeddings, self.embedded)
        self.optimizer, self.scheduler = self._optimizer()
        self.use_bf16 = config.bf16 == "on" or (config.bf16 == "auto" and bf16_supported())
        logger.info("bf16 autocast: %s; torch threads: %d", self.use_bf16, torch.get_num_threads())
        self.history: list[float] = []
        self.validation: list[dict] = []

    def _validation_set(self, held: list[RankRecord]) -> list[tuple[str, str, list[str], list[int]]]:
        per_source: dict[str, int] = {}
        out = []
        cap = self.config.val_max_candidates
        for r in held:
            if per_source.get(r.source, 0) >= self.config.val_queries_per_source or not r.neg:
                continue
            per_source[r.source] = per_source.get(r.source, 0) + 1
            pos = list(r.pos[: cap - 1])
            neg = list(r.neg[: cap - len(pos)])
            out.append((r.source, r.query, pos + neg, [1] * len(pos) + [0] * len(neg)))
        return out

    def _optimizer(self):
        import torch

        head, body = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (head if name.startswith(("classifier", "bert.pooler", "roberta.pooler")) else body).append(p)
        cfg = self.config
        optimizer = torch.optim.AdamW(
            [{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}],
            weight_decay=cfg.weight_decay,
        )

        def schedule(step: int) -> float:  # linear warm-up, then constant or linear decay to 10%
            if step < cfg.warmup:
                return (step + 1) / cfg.warmup
            if cfg.schedule == "constant":
                return 1.0
            return max(0.1, 1.0 - 0.9 * (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _autocast(self):
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16) if self.use_bf16 else contextlib.nullcontext()

    def _train_mode(self) -> None:
        self.model.train()
        for module in self.frozen:
            module.eval()

    def step(self, step: int) -> float:
        """One optimisation step (``grad_accum`` micro-batches); returns the mean group loss."""
        import torch

        cfg, total = self.config, 0.0
        self._train_mode()
        for micro in range(cfg.grad_accum):
            index = step * cfg.grad_accum + micro
            torch.manual_seed(cfg.seed * 1_000_003 + index)
            groups = self.sampler.groups(index, cfg.groups_per_step)
            for group in groups:  # one forward per group: padded to its own longest pair, not the batch's
                with self._autocast():
                    logits = self.model(**self.featurizer.tensors([group])).logits
                loss = group_loss(logits, cfg.pointwise_weight)
                (loss / (cfg.grad_accum * len(groups))).backward()
                total += loss.item() / (cfg.grad_accum * len(groups))
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    def loss_on(self, groups: list[tuple[str, list[str]]]) -> float:
        """Mean group loss on fixed groups, without dropout or updates (for checks and tests)."""
        import torch

        self.model.eval()
        with torch.no_grad(), self._autocast():
            logits = self.model(**self.featurizer.tensors(groups)).logits.float().view(len(groups), -1)
        return sum(group_loss(row, self.config.pointwise_weight).item() for row in logits) / len(groups)

    def validate(self) -> dict:
        """MAP / MRR / NDCG@10 on the held-out queries, per source and overall."""
        import torch

        if not self.validation_set:
            return {}
        self.model.eval()
        scores, labels, sources = {}, {}, {}
        with torch.no_grad(), self._autocast():
            for i, (source, query, candidates, grades) in enumerate(self.validation_set):
                logits = self.model(**self.featurizer.tensors([(query, candidates)])).logits.float().view(-1)
                scores[str(i)], labels[str(i)], sources[str(i)] = logits.tolist(), grades, source
        result = {"all": ranking_metrics(scores, labels)}
        for source in sorted(set(sources.values())):
            ids = [q for q, s in sources.items() if s == source]
            result[source] = ranking_metrics({q: scores[q] for q in ids}, {q: labels[q] for q in ids})
        return result

    def resume(self) -> int:
        """Load the newest checkpoint of ``output``, if any; return the step to continue from."""
        found = list_checkpoints(self.config.output)
        if not found:
            logger.info("no checkpoint in %s; starting from step 0", self.config.output)
            return 0
        step, self.history, saved = load_checkpoint(found[-1], self.model, self.optimizer, self.scheduler)
        changed = {k for k, v in saved.items() if k not in _RUN_ONLY and self.config.to_dict().get(k) != v}
        if changed:
            logger.warning(
                "resuming with changed settings %s; the run will differ from the original", sorted(changed)
            )
        return step

    def train(self, resume: bool = False, stop_at: int | None = None) -> TrainResult:
        """Run from step 0 (or the latest checkpoint) to ``steps`` (or ``stop_at``, to interrupt a run on
        purpose); save the model into ``output/model``."""
        cfg = self.config
        if not resume:
            check_fresh_output(cfg.output)
        start = done = self.resume() if resume else 0
        deadline = time.monotonic() + cfg.max_time_minutes * 60 if cfg.max_time_minutes else None
        with self._progress(start) as bar:
            for step in range(start, min(cfg.steps, stop_at or cfg.steps)):
                self.history.append(self.step(step))
                done = step + 1
                bar.update(1)
                self._after_step(done, bar)
                if deadline and time.monotonic() > deadline:
                    logger.warning("max_time_minutes reached at step %d of %d; stopping", done, cfg.steps)
                    break
        if done > start:  # the end is a checkpoint too: a later --resume --steps N continues from here
            self._save(done)
        return self._finish(done)

    def _save(self, done: int) -> None:
        cfg = self.config
        save_checkpoint(
            cfg.output, done, self.model, self.optimizer, self.scheduler, self.history, cfg.to_dict(),
            cfg.keep_checkpoints,
        )

    def _progress(self, start: int):
        from tqdm.auto import tqdm

        return tqdm(
            total=self.config.steps,
            initial=start,
            desc="training",
            unit="step",
            file=sys.stderr,
            mininterval=10,
            dynamic_ncols=True,
        )

    def _after_step(self, done: int, bar) -> None:
        cfg = self.config
        rate = bar.format_dict.get("rate") or 0.0
        recent = self.history[-20:]
        bar.set_postfix(
            loss=f"{sum(recent) / len(recent):.4f}",
            pairs_s=f"{rate * cfg.groups_per_step * cfg.grad_accum * cfg.group_size:.1f}",
            refresh=False,
        )
        if done % 10 == 0:
            logger.info("step %d loss %.4f (mean of last %d)", done, sum(recent) / len(recent), len(recent))
        if cfg.save_every and done % cfg.save_every == 0 and done < cfg.steps:
            self._save(done)
        if cfg.eval_every and done % cfg.eval_every == 0:
            self._log_validation(done)

    def _log_validation(self, done: int) -> None:
        metrics = self.validate()
        if metrics:
            self.validation.append({"step": done, **metrics})
            logger.info("validation at step %d: %s", done, json.dumps(metrics["all"]))
            with open(Path(self.config.output) / "validation.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": done, **metrics}) + "\n")

    def _finish(self, steps_done: int) -> TrainResult:
        cfg = self.config
        Path(cfg.output).mkdir(parents=True, exist_ok=True)
        if not self.validation or self.validation[-1]["step"] != steps_done:
            self._log_validation(steps_done)
        card = {
            "base": cfg.model,
            "steps": steps_done,
            "max_length": cfg.max_length,
            "query_max_length": cfg.query_max_length,
            "final_loss": self.history[-1] if self.history else None,
            "validation": self.validation[-1] if self.validation else None,
            "config": cfg.to_dict(),
        }
        model_dir = save_model(self.model, self.source, Path(cfg.output) / "model", card)
        weights = (
            export_embedded(self.model, Path(cfg.output) / "embedded-reranker.safetensors")
            if self.embedded
            else None
        )
        (Path(cfg.output) / "history.json").write_text(json.dumps(self.history), encoding="utf-8")
        logger.info("saved the trained model to %s", model_dir)
        return TrainResult(
            Path(cfg.output),
            model_dir,
            steps_done,
            self.history,
            self.validation,
            self.report.problems,
            weights,
        )
