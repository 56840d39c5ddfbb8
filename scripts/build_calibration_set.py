"""Build the int8 calibration set shipped in the package: ``src/crossrank/backends/calibration_set.jsonl.gz``.

NNCF calibrates the OpenVINO int8 IR (``crossrank/backends/openvino_backend.py``) on these query lists:
activation ranges come from real in-domain (query, passage) inputs, English and Chinese. The lists come
from the permissively licensed training files, from queries on the *training* side of the embedded
recipe's split (never held out, under either source name the trainer uses) and never in the shipped gate
set, so calibrating and gating use disjoint queries:

- English: SelQA answer-sentence lists (Apache-2.0), MedQuAD passages (CC BY 4.0), XQuAD-en paragraphs
  (CC BY-SA 4.0);
- Chinese: DRCD paragraphs (CC BY-SA 3.0), XQuAD-zh paragraphs (CC BY-SA 4.0).

Lists are interleaved by language and source, so the first N of the file are a balanced sample. Texts
are cut to ~700 (en) / ~280 (zh) characters. Deterministic output (hash order; gzip without timestamp).

    .venv/bin/python scripts/build_calibration_set.py          # reads ../shared/data in place
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import replace
from pathlib import Path

# the same deterministic gzip writer as the gate set (run as a script, this folder is on sys.path)
from build_gate_set import write

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "crossrank" / "backends" / "calibration_set.jsonl.gz"
FILES = ("rank_selqa_ass_devtest", "rank_medquad", "rank_xquad_en", "rank_drcd_devtest", "rank_xquad_zh")
LICENCES = {
    "SelQA-ass(dev+test)": "Apache-2.0",
    "MedQuAD": "CC BY 4.0",
    "XQuAD en": "CC BY-SA 4.0",
    "XQuAD zh": "CC BY-SA 4.0",
    "DRCD(dev+test)": "CC BY-SA 3.0",
}
# Lists per source, in the order they are interleaved: 48 English, 48 Chinese.
PLAN = {"SelQA-ass(dev+test)": 24, "DRCD(dev+test)": 32, "MedQuAD": 12, "XQuAD zh": 16, "XQuAD en": 12}
MAX_CHARS = {"en": 700, "zh": 280}
MIN_CANDIDATES, MAX_CANDIDATES = 4, 8


def cut(text: str, lang: str) -> str:
    text = " ".join(text.split()) if lang == "en" else "".join(text.split())
    head = text[: MAX_CHARS[lang]]
    return head.rsplit(" ", 1)[0] if lang == "en" and len(text) > len(head) and " " in head else head


def key(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def build(shared: Path, recipe: str = "embedded") -> list[dict]:
    from crossrank.backends.gate import gate_set
    from crossrank.training.config import TrainConfig, load_recipe
    from crossrank.training.data import is_held_out, load_rank_files

    config = TrainConfig.from_dict(load_recipe(recipe))
    gated = {g.query for g in gate_set()}
    records = load_rank_files([shared / "train" / "permissive" / f"{name}.jsonl.gz" for name in FILES])

    def trained(r) -> bool:  # on the training side under both names the trainer may split it by
        return not any(
            is_held_out(replace(r, source=name), config.held_out_percent, config.seed)
            for name in (r.source, f"{r.source} sentences")
        )

    pools: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: key(r.query)):
        if r.source not in PLAN or not trained(r) or r.query in gated or cut(r.query, r.lang) in gated:
            continue
        candidates = list(dict.fromkeys(cut(t, r.lang) for t in (*r.pos[:1], *r.neg) if t.strip()))
        if len(candidates) < MIN_CANDIDATES or len(pools.get(r.source, ())) >= PLAN[r.source]:
            continue
        pools.setdefault(r.source, []).append(
            {
                "source": r.source,
                "lang": r.lang,
                "licence": LICENCES[r.source],
                "query": cut(r.query, r.lang),
                "candidates": candidates[:MAX_CANDIDATES],
            }
        )
    lists = []
    for i in range(max(PLAN.values())):
        lists.extend(pools[source][i] for source in PLAN if i < len(pools[source]))
    return lists


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared-data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    lists = build(Path(args.shared_data))
    write(lists, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
