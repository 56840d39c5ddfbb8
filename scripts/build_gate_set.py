"""Build the accuracy gate set shipped in the package: ``src/crossrank/backends/gate_set.jsonl.gz``.

``backend="auto"`` gates every fast backend on these query lists against torch fp32 before choosing it
(see ``crossrank/backends/auto.py``). The lists come from the permissively licensed training sources,
from queries in the held-out split of the embedded model's recipe (``training/recipes/embedded.json``:
the same hash split the trainer uses), so the shipped model never saw them:

- English: SelQA answer-sentence lists (Apache-2.0), XQuAD-en paragraph lists (CC BY-SA 4.0) and MedQuAD
  long answer-passage lists (CC BY 4.0);
- Chinese: DRCD paragraph and sentence lists (CC BY-SA 3.0) and XQuAD-zh sentence lists (CC BY-SA 4.0).

Passage and paragraph lists test long inputs (int8 errors grow with length: a gate of short texts only
passed an int8 recipe that ranked long arguments at ρ̄ 0.98), sentence lists short ones. Each source's
texts are cut to a length (``PLAN``) that keeps the file small and the gate quick. The output is
deterministic (sorted by a hash of the query; gzip without a timestamp): running this again gives the same
bytes.

    .venv/bin/python scripts/build_gate_set.py          # reads ../shared/data in place
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "crossrank" / "backends" / "gate_set.jsonl.gz"

LICENCES = {
    "SelQA-ass(dev+test)": ("Apache-2.0", "SelQA, Jurczyk, Zhai & Choi 2016"),
    "XQuAD en": ("CC BY-SA 4.0", "XQuAD, Artetxe, Ruder & Yogatama 2020"),
    "XQuAD zh": ("CC BY-SA 4.0", "XQuAD, Artetxe, Ruder & Yogatama 2020"),
    "DRCD(dev+test)": ("CC BY-SA 3.0", "DRCD, Shao et al. 2018 (converted to Simplified Chinese)"),
    "MedQuAD": ("CC BY 4.0", "MedQuAD, Ben Abacha & Demner-Fushman 2019"),
}
# (source, level, number of lists, characters per candidate text): 40 English, 40 Chinese. MedQuAD
# answers (often thousands of characters) are cut to ~1,500 characters (~350 tokens), XQuAD-en paragraphs
# to 1,000, DRCD paragraphs to 300 Chinese characters (~250 tokens).
PLAN = (
    ("SelQA-ass(dev+test)", "sentence", 16, 360),
    ("XQuAD en", "paragraph", 12, 1000),
    ("MedQuAD", "passage", 12, 1500),
    ("DRCD(dev+test)", "paragraph", 20, 300),
    ("DRCD(dev+test)", "sentence", 10, 140),
    ("XQuAD zh", "sentence", 10, 140),
)
PASSAGE_SOURCES = {"MedQuAD"}  # base sources whose texts are passages, not sentences
MAX_CHARS = {"en": 360, "zh": 140}  # queries
MIN_CANDIDATES, MAX_CANDIDATES = 5, 8


def cut(text: str, lang: str, limit: int | None = None) -> str:
    """The first ``limit`` (default ``MAX_CHARS[lang]``) characters, English cut back to a word boundary."""
    text = " ".join(text.split()) if lang == "en" else "".join(text.split())
    limit = limit or MAX_CHARS[lang]
    if len(text) <= limit:
        return text
    head = text[:limit]
    return head.rsplit(" ", 1)[0] if lang == "en" and " " in head else head


def key(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def build(recipe: str = "embedded") -> list[dict]:
    from crossrank.training.config import TrainConfig, load_recipe
    from crossrank.training.data import LoadReport, is_held_out, load_rank_files
    from crossrank.training.sentences import derive_sentence_records

    config = TrainConfig.from_dict(load_recipe(recipe))
    pct, seed = config.held_out_percent, config.seed
    report = LoadReport()
    base = load_rank_files(config.data, report) if config.data else []
    paragraphs = load_rank_files(config.sentence_data, report)
    sentences = derive_sentence_records(paragraphs)

    def held(record, trained_as: str) -> bool:
        # The trainer splits by the source name a query was trained under: paragraph sources are trained
        # at sentence level ("<source> sentences"), and as paragraphs too with keep_sentence_paragraphs.
        return is_held_out(replace(record, source=trained_as), pct, seed)

    keep_paragraphs = bool(config.keep_sentence_paragraphs)
    pools: dict[tuple[str, str], list] = {}
    for r in base + sentences:
        if held(r, r.source):
            level = "passage" if r.source in PASSAGE_SOURCES else "sentence"
            pools.setdefault((r.source.removesuffix(" sentences"), level), []).append(r)
    for r in paragraphs:
        if held(r, f"{r.source} sentences") and (not keep_paragraphs or held(r, r.source)):
            pools.setdefault((r.source, "paragraph"), []).append(r)

    lists, seen = [], set()
    for source, level, count, limit in PLAN:
        pool = pools.get((source, level), [])
        chosen = 0
        for r in sorted(pool, key=lambda r: key(r.query)):
            candidates = list(dict.fromkeys(cut(t, r.lang, limit) for t in (*r.pos[:2], *r.neg) if t.strip()))
            candidates = candidates[:MAX_CANDIDATES]
            if len(candidates) < MIN_CANDIDATES or r.query in seen:
                continue
            seen.add(r.query)
            licence, origin = LICENCES[source]
            lists.append(
                {
                    "id": f"{source}/{level}/{key(r.query)[:12]}",
                    "lang": r.lang,
                    "source": source,
                    "level": level,
                    "licence": licence,
                    "origin": origin,
                    "query": cut(r.query, r.lang),
                    "candidates": candidates,
                }
            )
            chosen += 1
            if chosen == count:
                break
        if chosen < count:
            raise SystemExit(f"only {chosen} usable held-out {level} lists in {source}, {count} wanted")
    return lists


def write(lists: list[dict], out: Path) -> int:
    raw = "".join(json.dumps(x, ensure_ascii=False, sort_keys=True) + "\n" for x in lists).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9, filename="") as fh:
        fh.write(raw)
    data = buffer.getvalue()
    out.write_bytes(data)
    langs = {lang: sum(x["lang"] == lang for x in lists) for lang in ("en", "zh")}
    pairs = sum(len(x["candidates"]) for x in lists)
    sys.stdout.write(f"{out}: {len(lists)} lists ({langs}), {pairs} pairs, {len(data):,} bytes\n")
    return len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="embedded")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    lists = build(args.recipe)
    write(lists, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
