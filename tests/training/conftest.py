"""A tiny bilingual training slice, written per test into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EN_TOPICS = [
    "apple",
    "river",
    "engine",
    "violin",
    "castle",
    "glacier",
    "tiger",
    "satellite",
    "copper",
    "harbor",
]
ZH_TOPICS = ["苹果", "河流", "引擎", "小提琴", "城堡", "冰川", "老虎", "卫星", "铜矿", "港口"]


def rank_lines() -> list[str]:
    lines = []
    for topics, lang, fmt_q, fmt_p in (
        (EN_TOPICS, "en", "where is the {t}", "The {t} is found near the old town."),
        (ZH_TOPICS, "zh", "{t}在哪里？", "{t}位于老城附近。"),
    ):
        for t in topics:
            others = [fmt_p.format(t=o) for o in topics if o != t][:4]
            lines.append(
                json.dumps(
                    {
                        "source": f"toy-{lang}",
                        "lang": lang,
                        "query": fmt_q.format(t=t),
                        "pos": [fmt_p.format(t=t)],
                        "neg": others,
                        "neg_kind": "auto",
                    },
                    ensure_ascii=False,
                )
            )
    return lines


@pytest.fixture
def toy_data(tmp_path) -> Path:
    path = tmp_path / "rank_toy.jsonl"
    path.write_text("\n".join(rank_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def toy_config(tmp_path, toy_data, tiny_xlmr_dir):
    from crossrank.training.config import TrainConfig

    def make(**overrides) -> TrainConfig:
        values = dict(
            model=str(tiny_xlmr_dir),
            data=[str(toy_data)],
            output=str(tmp_path / "out"),
            max_length=48,
            query_max_length=16,
            group_size=4,
            groups_per_step=4,
            steps=8,
            lr=2e-3,
            head_lr=2e-3,
            warmup=1,
            bf16="off",
            threads=1,
            seed=7,
            held_out_percent=0.0,
            eval_every=0,
            save_every=0,
            mine_per_query=3,
            freeze_embeddings=True,
        )
        values.update(overrides)
        return TrainConfig(**values)

    return make
