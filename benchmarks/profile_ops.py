"""Where ONNX Runtime spends a forward pass: time per operator type for one batch of real pairs.

    python benchmarks/profile_ops.py --model embedded --dtype int8 --rows 16

Uses the same export, workload (ArguAna) and engine batching as ``throughput.py``; prints each operator
type's share of kernel time, grouped into GEMM (MatMul*, Gemm, and the projection inside Attention is
counted with Attention), attention, and the rest (layer norms, GELU, quantise/dequantise, embeddings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--dtype", default="int8", choices=["fp32", "int8"])
    parser.add_argument("--rows", type=int, default=16, help="pairs in the profiled batch")
    args = parser.parse_args()

    import onnxruntime as ort
    from throughput import model_dir, workload

    from crossrank import Reranker
    from crossrank.backends.onnx_backend import OnnxBackend, default_threads

    mdir = model_dir(args.model)
    backend = OnnxBackend(mdir, dtype=args.dtype)
    captured = []

    class Capture:
        name, dtype, device = "capture", args.dtype, "cpu"

        def forward(self, batch):
            captured.append(batch)
            return [0.0] * batch.shape[0]

    pairs = workload(args.rows, 10)
    Reranker(mdir, backend=Capture(), batch_size=args.rows, truncate="right").compute_score(pairs)
    batch = captured[0]
    options = ort.SessionOptions()
    options.intra_op_num_threads = default_threads()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    session = ort.InferenceSession(
        str(backend.export_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    feed = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if "token_type_ids" in [i.name for i in session.get_inputs()]:
        feed["token_type_ids"] = (
            batch.token_type_ids if batch.token_type_ids is not None else 0 * batch.input_ids
        )
    session.run(None, feed)  # warm-up (also profiled; excluded below by taking the last run)
    session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in events if e.get("name") == "model_run"]
    last_start = runs[-1]["ts"]
    per_op: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= last_start:
            per_op[e["args"]["op_name"]] += e["dur"] / 1e6
    total = sum(per_op.values())
    print(
        f"# {args.model} ONNX {args.dtype}, batch {batch.shape} (rows × padded length), "
        f"{options.intra_op_num_threads} threads, model_run {runs[-1]['dur'] / 1e6:.2f}s, "
        f"kernels {total:.2f}s"
    )
    for op, seconds in sorted(per_op.items(), key=lambda kv: -kv[1]):
        print(f"{op:32s} {seconds:7.3f}s {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
