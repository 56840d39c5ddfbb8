"""Small bilingual corpora written per test (never copies of the shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DOCS = [
    {
        "id": "caffeine",
        "title": "Caffeine",
        "text": "Caffeine is a stimulant of the central nervous system found in "
        "coffee, tea and cocoa. It reduces tiredness.",
        "metadata": {"topic": "chemistry"},
    },
    {
        "id": "paris",
        "title": "Paris",
        "text": "Paris is the capital and largest city of France, on the Seine.",
    },
    {"id": "everest", "text": "Mount Everest is the highest mountain above sea level, in the Himalayas."},
    {
        "id": "beijing",
        "title": "北京",
        "text": "北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心。",
    },
    {"id": "greatwall", "text": "长城是中国古代修建的军事防御工程，东起山海关，西至嘉峪关，绵延数千公里。"},
    {"id": "tea", "title": "茶", "text": "茶起源于中国，是世界上最受欢迎的饮料之一，含有咖啡因。"},
]


def write_jsonl(path: Path, docs) -> Path:
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture()
def docs() -> list[dict]:
    return [dict(d) for d in DOCS]


@pytest.fixture()
def jsonl_writer():
    return write_jsonl


@pytest.fixture()
def docs_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "docs.jsonl", DOCS)
