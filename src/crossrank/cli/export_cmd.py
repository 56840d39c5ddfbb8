"""``crossrank export``: write an ONNX export (fp32 or int8) or an OpenVINO IR (fp32 or int8) of a model,
optionally gating its accuracy."""

from __future__ import annotations

import argparse
import json
import sys

HELP = """Export a cross-encoder to ONNX Runtime (the default engine): fp32, or with --int8 dynamic int8
(per-channel weights). With --engine openvino, convert it to OpenVINO IR instead: fp32 (also run as bf16),
or with --int8 NNCF static int8 calibrated on the shipped calibration set. Without --out the export goes
to crossrank's cache ($CROSSRANK_HOME/onnx/<fingerprint> or $CROSSRANK_HOME/openvino/<fingerprint>),
where backend='onnx' / backend='openvino' finds it. With --gate WIKIQA_TSV the export is scored against
torch fp32 on those query lists and the result is recorded in the export's manifest (on a CPU with native
bf16, an ONNX --gate also records torch bf16's in $CROSSRANK_HOME/gates/). None of this is needed for
backend='auto', which converts and gates its candidates itself on the gate set shipped in the package
(see 'crossrank models build')."""


def register(sub) -> None:
    parser = sub.add_parser(
        "export", help="export a model to ONNX or OpenVINO IR (fp32 or int8)", description=HELP
    )
    parser.add_argument("model", help="'embedded', a local model folder or a hub id")
    parser.add_argument(
        "--engine", choices=("onnx", "openvino"), default="onnx", help="target runtime (default onnx)"
    )
    parser.add_argument(
        "--out", "--output", dest="out", default=None, help="output folder (default: the cache)"
    )
    parser.add_argument(
        "--int8", action="store_true", help="int8 quantisation (ONNX: dynamic; OpenVINO: NNCF static)"
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17; ONNX only)")
    parser.add_argument(
        "--gate",
        metavar="WIKIQA_TSV",
        default=None,
        help="check accuracy against torch fp32 on this WikiQA-format TSV and record it",
    )
    parser.add_argument("--gate-questions", type=int, default=60, help="query lists used by --gate")
    parser.set_defaults(func=run)


GATE_FORMAT = "a WikiQA-format TSV: a header with QuestionID, Question, SentenceID, Sentence and Label"


def gate_lists(args: argparse.Namespace) -> list[tuple[str, list[str]]] | None:
    """The --gate file's query lists, read and checked before exporting (a bad file is refused before
    minutes of work, not after); ``None`` without --gate."""
    from pathlib import Path

    from ..backends.gate import wikiqa_lists
    from ..errors import InvalidInputError

    if not args.gate:
        return None
    if not Path(args.gate).is_file():
        raise InvalidInputError(f"--gate {args.gate}: no such file ({GATE_FORMAT})")
    if args.gate_questions < 0:
        raise InvalidInputError(f"--gate-questions must be 0 (all) or more, got {args.gate_questions}")
    try:
        lists = wikiqa_lists(args.gate, args.gate_questions)
    except InvalidInputError as exc:  # the reader names the file and what is wrong with it
        raise InvalidInputError(f"--gate {exc}") from None
    if not lists:
        raise InvalidInputError(
            f"--gate {args.gate} has no question with 3 or more candidate sentences ({GATE_FORMAT})"
        )
    return lists


def run(args: argparse.Namespace) -> int:
    lists = gate_lists(args)
    if args.engine == "openvino":
        return run_openvino(args, lists)
    from ..backends.onnx_export import DEFAULT_OPSET, ensure_export, read_manifest, write_manifest
    from ..models.resolve import resolve_model

    model = resolve_model(args.model)
    dtype = "int8" if args.int8 else "fp32"
    folder = ensure_export(model.path, dtype, args.opset or DEFAULT_OPSET, out=args.out)
    manifest = read_manifest(folder)
    bf16_gate = None
    if args.gate:
        from ..backends.gate import gate_record, save_torch_gate

        data = f"{args.gate} (first {args.gate_questions} query lists)"
        result, bf16 = run_gate(model.path, folder, dtype, lists)
        manifest["gate"] = gate_record(result, data)
        write_manifest(folder, manifest)
        if bf16 is not None:
            bf16_gate = gate_record(bf16, data)
            save_torch_gate(model.path, "bf16", bf16_gate)
    summary = {
        "export": str(folder),
        "dtype": dtype,
        "fused": manifest["fused_operators"],
        "gate": manifest.get("gate"),
        "torch_bf16_gate": bf16_gate,
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0 if not args.gate or manifest["gate"]["passed"] else 1


def run_openvino(args: argparse.Namespace, lists) -> int:
    """``--engine openvino``: convert (or reuse) the IR; with --gate (its ``lists``), gate it like an ONNX
    export."""
    from ..backends import openvino_backend as ovb
    from ..errors import InvalidInputError
    from ..models.resolve import resolve_model

    if args.opset is not None:
        raise InvalidInputError("--opset is an ONNX setting; drop it with --engine openvino")
    model = resolve_model(args.model)
    dtype = "int8" if args.int8 else "fp32"
    folder = ovb.ensure_ir(model.path, dtype, out=args.out)
    manifest = ovb.read_manifest(folder)
    if args.gate:
        from ..backends.gate import gate_record

        data = f"{args.gate} (first {args.gate_questions} query lists)"
        result = run_openvino_gate(model.path, folder, dtype, lists)
        manifest["gate"] = gate_record(result, data)
        ovb.write_manifest(folder, manifest)
    summary = {
        "export": str(folder),
        "engine": "openvino",
        "openvino": manifest["fingerprint"]["openvino"],
        "dtype": dtype,
        "seconds": manifest.get("seconds"),
        "gate": manifest.get("gate"),
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0 if not args.gate or manifest["gate"]["passed"] else 1


def run_openvino_gate(source, folder, dtype: str, lists):
    """The IR against torch fp32 on real query lists (int8: ranking; fp32: exactness)."""
    from ..backends.gate import MAX_ABS_FP32, compare, score_lists
    from ..backends.openvino_backend import OpenVINOBackend
    from ..reranker import Reranker

    reference = score_lists(Reranker(str(source), backend="torch", dtype="fp32", truncate="right"), lists)
    candidate = Reranker(str(source), backend=OpenVINOBackend(folder, dtype=dtype), truncate="right")
    return compare(
        reference, score_lists(candidate, lists), max_abs=MAX_ABS_FP32 if dtype == "fp32" else None
    )


def run_gate(source, folder, dtype: str, lists):
    """Compare the export with torch fp32 on real query lists (int8: ranking; fp32: exactness); on a CPU
    with native bf16, torch bf16 too (ranking), so ``auto`` can weigh it. Returns (export, bf16 or None)."""
    from ..backends.gate import MAX_ABS_FP32, compare, score_lists
    from ..backends.onnx_backend import OnnxBackend
    from ..backends.torch_backend import cpu_supports_bf16
    from ..reranker import Reranker

    reference = score_lists(Reranker(str(source), backend="torch", dtype="fp32", truncate="right"), lists)
    candidate = Reranker(str(source), backend=OnnxBackend(folder, dtype=dtype), truncate="right")
    result = compare(
        reference, score_lists(candidate, lists), max_abs=MAX_ABS_FP32 if dtype == "fp32" else None
    )
    bf16 = None
    if cpu_supports_bf16():
        bf16_reranker = Reranker(str(source), backend="torch", device="cpu", dtype="bf16", truncate="right")
        bf16 = compare(reference, score_lists(bf16_reranker, lists))
    return result, bf16
