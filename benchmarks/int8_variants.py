"""Which parts of a model can be int8-quantised within the accuracy gate, and what each choice buys.

Quantises the cached fused fp32 ONNX export of MODEL (``crossrank export MODEL`` first) five ways with
ONNX Runtime's dynamic per-channel int8, then, for each variant, runs the accuracy gate of issue #4
(WikiQA dev query lists vs torch fp32: mean Spearman >= 0.99, same top-1 on >= 95%) and times the same
pairs (best of two passes, 2 threads by default).

    python benchmarks/int8_variants.py --model embedded --questions 40

Variants (the pooler and classification head always stay fp32, as in crossrank's own int8 export):
``all`` (crossrank's int8 export), ``no-ffn-down`` (FFN output projection kept fp32), ``attention-only``
(both FFN projections fp32), ``no-attention-op`` (the fused Attention op fp32), ``linear-only-no-down``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("CROSSRANK_SHARED_DATA", HERE.parents[1] / "shared" / "data"))


def variants(model_file: Path) -> dict[str, list[str]]:
    """Variant name -> nodes kept in fp32 besides the head (which crossrank's quantiser always keeps)."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    matmuls = [n.name for n in graph.node if n.op_type == "MatMul"]
    attention = [n.name for n in graph.node if n.op_type == "Attention"]
    ffn_down = [n for n in matmuls if "/output/dense" in n and "attention" not in n]
    ffn_up = [n for n in matmuls if "intermediate" in n]
    return {
        "all": [],
        "no-ffn-down": ffn_down,
        "attention-only": ffn_down + ffn_up,
        "no-attention-op": attention,
        "linear-only-no-down": attention + ffn_down,
    }


def quantise(source: Path, out: Path, keep_fp32: list[str]) -> None:
    """A copy of the fp32 export folder ``source`` with its graph quantised by crossrank's own quantiser."""
    from crossrank.backends.onnx_export import quantize_int8

    shutil.copytree(source, out)
    quantize_int8(source / "model.onnx", out / "model.onnx", keep_fp32=keep_fp32)
    manifest = json.loads((out / "crossrank-onnx.json").read_text(encoding="utf-8"))
    manifest.update(dtype="int8", gate=None)
    (out / "crossrank-onnx.json").write_text(json.dumps(manifest), encoding="utf-8")


def pairs_per_second(reranker, pairs) -> float:
    reranker.compute_score(pairs[:32])
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        reranker.compute_score(pairs)
        best = min(best, time.perf_counter() - start)
    return len(pairs) / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--questions", type=int, default=40, help="WikiQA dev query lists")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from crossrank.backends import gate
    from crossrank.backends.onnx_export import cached_export
    from crossrank.models.resolve import resolve_model
    from crossrank.reranker import Reranker

    torch.set_num_threads(args.threads)
    model_dir = resolve_model(args.model).path
    fp32 = cached_export(model_dir, "fp32")
    if fp32 is None:
        raise SystemExit(f"no fp32 ONNX export of {args.model}: run `crossrank export {args.model}` first")
    lists = gate.wikiqa_lists(DATA / "wikiqa" / "WikiQA-dev.tsv", args.questions)
    pairs = [(q, d) for q, docs in lists for d in docs]
    reference = Reranker(args.model, backend="torch", dtype="fp32")
    ref = gate.score_lists(reference, lists)
    print(f"# {args.model}: {len(lists)} WikiQA dev lists, {len(pairs)} pairs, {args.threads} threads")
    print("| variant | mean Spearman | top-1 | gate | pairs/s | × torch fp32 |")
    print("|---|---:|---:|---|---:|---:|")
    base = pairs_per_second(reference, pairs)
    print(f"| torch fp32 | 1.0000 | 100% | reference | {base:.1f} | 1.00× |")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("onnx fp32", fp32)]
        for name, keep in variants(fp32 / "model.onnx").items():
            quantise(fp32, Path(tmp) / name, keep)
            runs.append((f"int8 {name}", Path(tmp) / name))
        for name, folder in runs:
            reranker = Reranker(str(folder), backend="onnx")
            result = gate.compare(ref, gate.score_lists(reranker, lists))
            speed = pairs_per_second(reranker, pairs)
            verdict = "passed" if result.passed else "FAILED"
            print(
                f"| {name} | {result.spearman_mean:.4f} | {result.top1_agreement:.0%} | {verdict} | "
                f"{speed:.1f} | {speed / base:.2f}× |",
                flush=True,
            )


if __name__ == "__main__":
    main()
