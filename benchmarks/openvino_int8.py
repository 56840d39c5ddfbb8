"""What breaks ranking when the OpenVINO IR is quantised to int8 with NNCF, and which recipe keeps it.

For each variant (an :class:`crossrank.backends.openvino_backend.Int8Recipe`), quantises the fp32 IR of
MODEL with NNCF on the shipped calibration set, then runs the accuracy gate against torch fp32 on the
shipped gate set (``backends/gate_set.jsonl.gz``) and on held-out permissive lists of the embedded recipe
(``--heldout N`` per source; calibration lists are on the training side, so disjoint from both), and times
the gate-set pairs once (a rough speed only: the lead re-measures speed alone with throughput.py).

    python benchmarks/openvino_int8.py --model embedded --variants shipped,no-smoothquant

Variant names: see ``VARIANTS`` below (``only-<group>``: quantise one layer group, everything else float).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from crossrank.backends.openvino_backend import GROUPS, INT8_RECIPE, Int8Recipe, layers

SDPA = ("ScaledDotProductAttention",)
ALL_GROUPS = ("qkv", "attn_out", "ffn_up", "ffn_down")
BASE = Int8Recipe(ignored=GROUPS["head"])  # the starting point: head float, SmoothQuant 0.95
NFD = replace(BASE, ignored=GROUPS["head"] + GROUPS["ffn_down"])  # + FFN down-projections float


def only(group: str) -> Int8Recipe:
    """Quantise one layer group (or the attention matmuls, ``sdpa``) of BASE; everything else float."""
    others = [p for g in ALL_GROUPS if g != group for p in GROUPS[g]]
    return replace(BASE, ignored=BASE.ignored + tuple(others), ignored_types=() if group == "sdpa" else SDPA)


VARIANTS: dict[str, Int8Recipe] = {
    "shipped": INT8_RECIPE,
    "base": BASE,
    "no-smoothquant": replace(BASE, smooth_quant_alpha=None),
    "sq-0.5": replace(BASE, smooth_quant_alpha=0.5),
    "sq-0.8": replace(BASE, smooth_quant_alpha=0.8),
    "calib-16": replace(INT8_RECIPE, calibration_lists=16),
    "performance": replace(INT8_RECIPE, preset="performance"),
    "no-sdpa": replace(BASE, ignored_types=SDPA),
    "no-ffn-down": NFD,
    "no-sdpa-no-ffn-down": replace(NFD, ignored_types=SDPA),
    "no-first-last": replace(BASE, ignored=BASE.ignored + layers(0, 0) + layers(11, 11)),
    "no-last-2": replace(BASE, ignored=BASE.ignored + layers(10, 11)),
    **{f"only-{g}": only(g) for g in (*ALL_GROUPS, "sdpa")},
    "nfd-first-last": replace(NFD, ignored=NFD.ignored + layers(0, 0) + layers(11, 11)),
    "nfd-sq-0.8": replace(NFD, smooth_quant_alpha=0.8),
    "nfd-sq-0.5": replace(NFD, smooth_quant_alpha=0.5),
    "nfd-f32-elsewhere": replace(NFD, float_precision="f32"),
    "shipped-f32-elsewhere": replace(INT8_RECIPE, float_precision="f32"),
    "nfd-calib-96": replace(NFD, calibration_lists=96),
    "attention-only": replace(NFD, ignored=NFD.ignored + GROUPS["ffn_up"]),
    "layers-0-5": replace(BASE, ignored=BASE.ignored + layers(6, 11)),
    "layers-6-11": replace(BASE, ignored=BASE.ignored + layers(0, 5)),
    # on top of the shipped recipe (FFN-down and head float, SmoothQuant 0.8), for long passages
    "shipped-no-sdpa": replace(INT8_RECIPE, ignored_types=SDPA),
    "shipped-attn-out-float": replace(INT8_RECIPE, ignored=INT8_RECIPE.ignored + GROUPS["attn_out"]),
    "shipped-first-last-float": replace(
        INT8_RECIPE, ignored=INT8_RECIPE.ignored + layers(0, 0) + layers(11, 11)
    ),
    "shipped-sq-0.9": replace(INT8_RECIPE, smooth_quant_alpha=0.9),
    "shipped-sq-0.6": replace(INT8_RECIPE, smooth_quant_alpha=0.6),
    "shipped-calib-96": replace(INT8_RECIPE, calibration_lists=96),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--variants", default="shipped", help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--heldout", type=int, default=8, help="held-out permissive lists per source")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--floats", action="store_true", help="also gate OpenVINO fp32 and bf16")
    parser.add_argument("--bf16", action="store_true", help="also gate OpenVINO bf16 (the next candidate)")
    parser.add_argument(
        "--arguana", type=int, default=0, metavar="QUERIES",
        help="also compare on QUERIES ArguAna queries x 10 passages (throughput.py's workload; long "
        "arguments, a held-out check: never used to build the gate or calibration sets)",
    )
    parser.add_argument("--extra-gate", default=None, metavar="PATH", help="another gate-set file to report")
    parser.add_argument(
        "--accuracy-control", type=int, default=0, metavar="ITERATIONS",
        help="also run nncf.quantize_with_accuracy_control from the shipped recipe, the metric the mean "
        "per-list Spearman vs the fp32 IR on the shipped gate set (max drop --max-drop), at most ITERATIONS "
        "reverted groups",
    )
    parser.add_argument("--ranking-subset", type=int, default=16, help="gate lists NNCF ranks groups on")
    parser.add_argument(
        "--max-drop", type=float, default=0.005,
        help="accuracy control's allowed drop of the mean Spearman vs the fp32 IR (the gate allows 0.01; "
        "a margin keeps the result off the gate's edge on other CPUs)",
    )
    args = parser.parse_args()
    import openvino as ov
    import torch

    from crossrank.backends import gate
    from crossrank.backends import openvino_backend as ovb
    from crossrank.models.resolve import resolve_model
    from crossrank.reranker import Reranker
    from crossrank.training.heldout import heldout_permissive

    torch.set_num_threads(args.threads)
    model_dir = resolve_model(args.model).path
    sets = {"gate set": [(g.query, list(g.candidates)) for g in gate.gate_set()]}
    if args.heldout:
        held = heldout_permissive("embedded", args.heldout, 8)
        sets["held-out"] = [(t.query, list(t.candidates)) for ts in held.values() for t in ts]
    if args.extra_gate:
        sets["extra gate"] = [(g.query, list(g.candidates)) for g in gate.gate_set(args.extra_gate)]
    if args.arguana:
        sys.path.insert(0, str(Path(__file__).parent))
        from throughput import workload

        flat = workload(args.arguana * 10, 10)
        sets["ArguAna"] = [(flat[i][0], [d for _, d in flat[i : i + 10]]) for i in range(0, len(flat), 10)]
    refs = _references(model_dir, sets)
    pairs = [(q, d) for q, docs in sets["gate set"] for d in docs]
    sizes = ", ".join(f"{k}: {len(v)} lists" for k, v in sets.items())
    print(f"# {args.model}: {sizes}; {len(pairs)} gate-set pairs timed; {args.threads} threads")
    heads = " | ".join(f"{k} ρ̄ | top-1" for k in sets)
    print(f"| variant | {heads} | all pass | prep s | gate-set pairs/s |")
    print("|---|" + "---:|---:|" * len(sets) + "---|---:|---:|")

    def row(name, backend, prep):
        reranker = Reranker(str(model_dir), backend=backend, truncate="right")
        results = {k: gate.compare(refs[k], gate.score_lists(reranker, v)) for k, v in sets.items()}
        reranker.compute_score(pairs[:16])
        start = time.perf_counter()
        reranker.compute_score(pairs)
        speed = len(pairs) / (time.perf_counter() - start)
        cells = " | ".join(f"{r.spearman_mean:.4f} | {r.top1_agreement:.0%}" for r in results.values())
        verdict = "yes" if all(r.passed for r in results.values()) else "no"
        print(f"| {name} | {cells} | {verdict} | {prep:.0f} | {speed:.0f} |", flush=True)

    start = time.perf_counter()
    fp32_dir = ovb.ensure_ir(model_dir, "fp32", progress=False)
    prep = time.perf_counter() - start
    if args.floats:
        row("fp32", ovb.OpenVINOBackend(fp32_dir, dtype="fp32", threads=args.threads), prep)
    if args.floats or args.bf16:
        row("bf16", ovb.OpenVINOBackend(fp32_dir, dtype="bf16", threads=args.threads), prep)
    core = ov.Core()
    for name in filter(None, args.variants.split(",")):
        recipe = VARIANTS[name]
        start = time.perf_counter()
        data = ovb.calibration_batches(model_dir, recipe.calibration_lists, recipe.batch_size)
        model = ovb.quantize(core.read_model(str(fp32_dir / ovb.MODEL_FILE)), data, recipe, progress=False)
        prep = time.perf_counter() - start
        backend = _compiled(ov, core, model, recipe, args.threads)
        row(f"int8 {name}", backend, prep)
    if args.accuracy_control:
        start = time.perf_counter()
        model = _accuracy_control(ov, core, model_dir, fp32_dir, args)
        prep = time.perf_counter() - start
        row(f"int8 accuracy-control ({args.accuracy_control} it.)", _compiled(ov, core, model, INT8_RECIPE,
                                                                             args.threads), prep)


def _accuracy_control(ov, core, model_dir, fp32_dir, args):
    """``nncf.quantize_with_accuracy_control`` starting from the shipped recipe; validation: each gate
    list one padded batch (transformers' tokenizer: the gate texts are never cut at 512 tokens), the metric
    the mean Spearman of the list's logits against the fp32 IR's (so the float model scores 1.0)."""
    import nncf
    import numpy as np
    from nncf.quantization.advanced_parameters import (
        AdvancedAccuracyRestorerParameters,
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )
    from transformers import AutoTokenizer

    from crossrank.backends import gate
    from crossrank.backends import openvino_backend as ovb

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    inputs = ovb.input_names(model_dir)
    feeds = []
    for g in gate.gate_set():
        enc = tok([g.query] * len(g.candidates), list(g.candidates), padding=True, truncation="only_second",
                  max_length=512, return_tensors="np")
        feeds.append({k: enc[k].astype(np.int64) for k in inputs})
    fp32 = core.compile_model(str(fp32_dir / ovb.MODEL_FILE), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    refs = [fp32(f)[0][:, 0] for f in feeds]
    items = [{"feed": f, "ref": r} for f, r in zip(feeds, refs, strict=True)]

    def validate(compiled, data):
        rhos = [gate.spearman(item["ref"], compiled(item["feed"])[0][:, 0]) for item in data]
        return float(np.mean(rhos)), rhos

    recipe = INT8_RECIPE
    model = core.read_model(str(fp32_dir / ovb.MODEL_FILE))
    names = [op.get_friendly_name() for op in model.get_ops()]
    import re

    patterns = [p for p in recipe.ignored if any(re.fullmatch(p, n) for n in names)]
    calibration = ovb.calibration_batches(model_dir, recipe.calibration_lists, recipe.batch_size)
    return nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset(calibration),
        nncf.Dataset(items),
        validate,
        max_drop=args.max_drop,
        preset=nncf.QuantizationPreset(recipe.preset),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(calibration),
        ignored_scope=nncf.IgnoredScope(patterns=patterns, validate=False),
        advanced_quantization_parameters=AdvancedQuantizationParameters(
            smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=recipe.smooth_quant_alpha)
        ),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            max_num_iterations=args.accuracy_control, ranking_subset_size=args.ranking_subset
        ),
    )


def _references(model_dir, sets):
    """torch fp32 logits of every set, cached under $CROSSRANK_HOME/bench (slow on 2 cores)."""
    import hashlib
    import json

    from crossrank.backends import gate
    from crossrank.backends.artifacts import source_fingerprint
    from crossrank.models.build import crossrank_home
    from crossrank.reranker import Reranker

    digest = hashlib.sha256(json.dumps([str(source_fingerprint(model_dir)), sets]).encode()).hexdigest()
    path = crossrank_home() / "bench" / f"torch-fp32-{digest[:16]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    reference = Reranker(str(model_dir), backend="torch", dtype="fp32", truncate="right")
    refs = {name: gate.score_lists(reference, lists) for name, lists in sets.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(refs))
    return refs


def _compiled(ov, core, model, recipe, threads):
    """An OpenVINOBackend-like object over an in-memory quantised model (no cache folder per variant)."""
    from crossrank.backends import openvino_backend as ovb

    class Variant:
        name, dtype, device = "openvino", "int8", "cpu"

        def __init__(self):
            hint = ovb._precision_hint("int8", recipe)
            config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1}
            self.request = core.compile_model(model, "CPU", config).create_infer_request()
            self.inputs = [i.get_any_name() for i in model.inputs]

        def forward(self, batch):
            import numpy as np

            return np.array(self.request.infer(ovb._feed(batch, self.inputs))[0][:, 0], dtype=np.float32)

    return Variant()


if __name__ == "__main__":
    main()
