"""Throughput of crossrank's backends against sentence-transformers, FlagEmbedding and plain transformers.

One command measures, on the same model files and the same workload (ArguAna queries × passages, real
text read in place from the shared data folder), pairs/s and peak memory of every method, each in its own
subprocess (so peak RSS is per method), plus the machine's GEMM peaks (torch fp32/bf16, ONNX Runtime
fp32/int8) in the same run. It prints a table with each method's speed relative to
sentence-transformers and the fraction of the matching GEMM peak it reaches.

    python benchmarks/throughput.py --model embedded --pairs 200
    python benchmarks/throughput.py --model m3-shape --pairs 16      # bge-reranker-v2-m3 architecture

"crossrank default" is ``Reranker(model)`` as a user gets it (``backend="auto"``): before the methods run,
its one-time preparation (convert, gate on the shipped gate set, cache the verdict) runs in its own
process and is timed and reported separately (``--reprepare`` forgets the cached verdicts first, so it is
measured from scratch; converted models stay cached). The run prints which backend auto chose and why,
and checks the targets: default >= 4x sentence-transformers, the best gated backend >= 6x, and the
default's per-query Spearman against torch fp32 >= 0.99; on a CPU without AVX-512 it also prints the
machine's ceiling (best kernel GEMM peak / sentence-transformers' achieved GEMM rate) and the fraction of
it the default reaches.

``m3-shape`` has random weights (see ``m3_shape.py``): speed does not depend on weight values, so it
measures the real model's speed; its scores are meaningless and no accuracy gate applies to it.
All crossrank methods use ``truncate="right"`` so every method does the same work (one window per pair).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("CROSSRANK_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
PEER_METHODS = ("sentence-transformers", "flagembedding", "flagembedding-unsorted", "transformers")
CROSSRANK_METHODS = (
    "crossrank-default",
    "crossrank-torch-fp32",
    "crossrank-torch-bf16",
    "crossrank-onnx-fp32",
    "crossrank-onnx-int8",
    "crossrank-openvino-fp32",
    "crossrank-openvino-bf16",
    "crossrank-openvino-int8",
)
METHODS = PEER_METHODS + CROSSRANK_METHODS
PEAK_OF = {  # the GEMM kernel class each method's matrix products run on (OpenVINO: its own kernels)
    "crossrank-torch-bf16": "torch bf16",
    "crossrank-onnx-fp32": "ORT fp32",
    "crossrank-onnx-int8": "ORT int8",
    "crossrank-openvino-fp32": "ORT fp32",
    "crossrank-openvino-bf16": "torch bf16",
    "crossrank-openvino-int8": "ORT int8",
}
KERNEL_OF_CHOICE = {
    ("torch", "fp32"): "torch fp32", ("torch", "bf16"): "torch bf16", ("onnx", "fp32"): "ORT fp32",
    ("onnx", "int8"): "ORT int8", ("openvino", "fp32"): "ORT fp32", ("openvino", "bf16"): "torch bf16",
    ("openvino", "int8"): "ORT int8",
}
TARGET_DEFAULT, TARGET_BEST, TARGET_SPEARMAN = 4.0, 6.0, 0.99


# ---------------------------------------------------------------- workload and model


def model_dir(name: str) -> Path:
    if name == "m3-shape":
        sys.path.insert(0, str(HERE))
        from m3_shape import ensure_m3_shape

        return ensure_m3_shape()
    from crossrank.models.resolve import resolve_model

    return resolve_model(name).path


def workload(n_pairs: int, per_query: int, seed: int = 0) -> list[tuple[str, str]]:
    """ArguAna: each query with its relevant counter-argument and random other arguments."""

    def read(name):
        with gzip.open(DATA / "arguana" / name, "rt", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]

    corpus = {d["_id"]: (d.get("title", "") + " " + d["text"]).strip() for d in read("corpus.jsonl.gz")}
    queries = {q["_id"]: q["text"] for q in read("queries.jsonl.gz")}
    qrels = {}
    with open(DATA / "arguana" / "test.tsv", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, did, _ = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, did)
    rng = random.Random(seed)
    ids = sorted(q for q in qrels if q in queries and qrels[q] in corpus)
    rng.shuffle(ids)
    doc_ids = sorted(corpus)
    pairs: list[tuple[str, str]] = []
    for qid in ids:
        docs = [qrels[qid], *rng.sample(doc_ids, per_query - 1)]
        pairs += [(queries[qid], corpus[d]) for d in docs]
        if len(pairs) >= n_pairs:
            break
    return pairs[:n_pairs]


def flops_per_pair(config: dict, lengths: list[int]) -> float:
    """Forward FLOPs on the real (unpadded) tokens: per layer 2·L·(4H² + 2·H·I) for the projections and
    4·L²·H for the attention products; embeddings and the head are negligible."""
    h, i, n = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    total = sum(n * (2 * L * (4 * h * h + 2 * h * i) + 4 * L * L * h) for L in lengths)
    return total / len(lengths)


# ---------------------------------------------------------------- workers (one method per process)


class ForwardClock:
    """Accumulates time spent inside a torch module's forward (via hooks)."""

    def __init__(self, module):
        self.seconds, self._t = 0.0, 0.0
        module.register_forward_pre_hook(lambda *_: setattr(self, "_t", time.perf_counter()))
        module.register_forward_hook(lambda *_: self._add())

    def _add(self):
        self.seconds += time.perf_counter() - self._t


class TimedBackend:
    """Wraps a crossrank backend: forward time, padded and real tokens."""

    def __init__(self, inner):
        self.inner, self.name, self.dtype, self.device = inner, inner.name, inner.dtype, inner.device
        self.seconds, self.padded, self.real = 0.0, 0, 0

    def forward(self, batch):
        start = time.perf_counter()
        out = self.inner.forward(batch)
        self.seconds += time.perf_counter() - start
        self.padded += batch.input_ids.size
        self.real += int(batch.attention_mask.sum())
        return out


def _timed_method(obj, attr: str, clock: dict) -> None:
    original = getattr(obj, attr)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            clock["tokenize"] += time.perf_counter() - start

    setattr(obj, attr, wrapper)


def _torch_threads() -> None:
    """Set torch's thread count (``$CROSSRANK_THREADS``) once torch is imported, and only then."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["CROSSRANK_THREADS"]))


def needs_torch(method: str) -> bool:
    """False for the crossrank rows that run on OpenVINO / ONNX Runtime (and the default): their process
    imports torch only if crossrank does, as a user's would (~200 MB of RSS)."""
    return not (method == "crossrank-default" or method.startswith(("crossrank-openvino", "crossrank-onnx")))


def run_method(method: str, mdir: Path, pairs, batch_size: int, rounds: int) -> dict:
    if needs_torch(method):
        import torch

    load_start = time.perf_counter()
    info: dict = {"method": method}
    if method == "sentence-transformers":
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(str(mdir), max_length=512, device="cpu")
        clock = ForwardClock(model)  # predict() calls the module on tokenized features
        run = lambda p: model.predict(p, batch_size=batch_size, show_progress_bar=False)  # noqa: E731
    elif method == "transformers":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(mdir))
        hf = AutoModelForSequenceClassification.from_pretrained(str(mdir)).eval()
        clock = ForwardClock(hf)

        def run(p):
            out = []
            for s in range(0, len(p), batch_size):
                chunk = p[s : s + batch_size]
                enc = tok(
                    [q for q, _ in chunk],
                    [d for _, d in chunk],
                    padding=True,
                    truncation="only_second",
                    max_length=512,
                    return_tensors="pt",
                )
                with torch.inference_mode():
                    out += torch.sigmoid(hf(**enc).logits[:, 0].float()).tolist()
            return out
    elif method.startswith("flagembedding"):
        try:
            import FlagEmbedding  # noqa: F401

            info["note"] = "FlagEmbedding imported"
        except Exception as exc:  # it does not import on transformers 5
            info["note"] = (
                f"FlagEmbedding not importable ({type(exc).__name__}); "
                "its algorithm via crossrank.FlagReranker"
            )
        from crossrank import FlagReranker

        # FlagEmbedding's algorithm runs torch fp32 (crossrank's default would choose a faster backend)
        flag = FlagReranker(str(mdir), batch_size=batch_size, max_length=512, devices="cpu", backend="torch")
        timed = TimedBackend(flag.reranker.engine.backend)
        flag.reranker.engine.backend = timed
        clock = timed
        if method == "flagembedding":
            run = lambda p: flag.compute_score(p, normalize=True)  # noqa: E731
        else:  # sorting off: batches formed in input order (sorting inside one batch changes no padding)

            def run(p):
                out = []
                for s in range(0, len(p), batch_size):
                    out += flag.compute_score(p[s : s + batch_size], normalize=True)
                return out
    else:
        from crossrank import Reranker
        from crossrank.reranker import load_backend

        if method == "crossrank-default":  # Reranker(model) as a user gets it: backend="auto"
            reranker = Reranker(str(mdir), batch_size=batch_size, truncate="right")
            inner = reranker.engine.backend
            info["backend_reason"] = reranker.backend_reason
            info["chosen"] = [inner.name, inner.dtype]
        else:
            _, backend, dtype = method.split("-")
            inner = load_backend(backend, mdir, "cpu", dtype)
            reranker = Reranker(str(mdir), backend=inner, batch_size=batch_size, truncate="right")
        timed = TimedBackend(inner)
        reranker.engine.backend = timed
        clock = timed
        tok_clock = {"tokenize": 0.0}
        for attr in ("encode", "encode_query"):
            _timed_method(reranker.engine.tokenizer, attr, tok_clock)
        run = lambda p: reranker.compute_score(p, normalize=True)  # noqa: E731
        _torch_threads()  # the default's fallback (torch fp32) imports torch itself
        info["export"] = str(getattr(inner, "export_dir", "") or getattr(inner, "ir_dir", "")) or None
    info["load_s"] = time.perf_counter() - load_start
    run(pairs[:8])  # warm-up: allocators, thread pools, lazy init
    best = None
    for _ in range(rounds):
        clock.seconds = 0.0
        if method.startswith("crossrank"):
            tok_clock["tokenize"] = 0.0
            timed.padded = timed.real = 0
        start = time.perf_counter()
        run(pairs)
        total = time.perf_counter() - start
        if best is None or total < best["seconds"]:
            best = {"seconds": total, "forward_s": clock.seconds}
            if method.startswith("crossrank"):
                best |= {"tokenize_s": tok_clock["tokenize"], "padding": timed.padded / max(timed.real, 1)}
    info |= best
    info["pairs_per_s"] = len(pairs) / best["seconds"]
    info["outside_forward"] = 1 - best["forward_s"] / best["seconds"]
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch = sys.modules.get("torch")
    info["threads"] = torch.get_num_threads() if torch else int(os.environ["CROSSRANK_THREADS"])
    info["torch_imported"] = "torch" in sys.modules
    if method.startswith("crossrank"):
        info["scores"] = run(pairs)  # for the per-query Spearman of each method against torch fp32
    return info


def prepare_default(mdir: Path, reprepare: bool) -> dict:
    """backend="auto"'s one-time preparation for this model on this CPU, timed (its own process)."""
    from crossrank.backends import auto

    if reprepare:
        auto.forget(mdir)
    runs_before = auto.read_verdicts(mdir).get("gate_runs", 0)
    start = time.perf_counter()
    choice = auto.choose(mdir, "cpu", "auto", prepare=True)
    seconds = time.perf_counter() - start
    state = auto.read_verdicts(mdir)
    return {
        "method": "prepare",
        "seconds": seconds,
        "gated_now": state.get("gate_runs", 0) - runs_before,
        "chosen": [choice.engine, choice.dtype],
        "reason": choice.reason,
        "reference_s": (state.get("reference") or {}).get("seconds"),
        "verdicts": {
            k: {x: v.get(x) for x in ("passed", "reason", "prepare_s", "gate_s", "checked_at")}
            for k, v in state.get("verdicts", {}).items()
        },
    }


def gemm_peaks(m: int = 2048, k: int = 1024, n: int = 4096, reps: int = 3) -> dict:
    """Best-of-``reps`` GEMM throughput (GFLOP/s or GOP/s) for the four kernels the methods use."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    flop = 2 * m * n * k

    def best(fn):
        fn()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return flop / min(times) / 1e9

    out = {}
    a, b = torch.randn(m, k), torch.randn(k, n)
    out["torch fp32"] = best(lambda: a @ b)
    from crossrank.backends.torch_backend import cpu_supports_bf16

    if cpu_supports_bf16():  # emulated bf16 runs ~300x slower than fp32: minutes for nothing
        ab, bb = a.bfloat16(), b.bfloat16()
        out["torch bf16"] = best(lambda: ab @ bb)

    def session(node, inputs, inits, out_type):
        graph = helper.make_graph(
            [node], "g", inputs, [helper.make_tensor_value_info("y", out_type, [m, n])], initializer=inits
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    x = np.random.rand(m, k).astype(np.float32)
    s32 = session(
        helper.make_node("MatMul", ["x", "w"], ["y"]),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [numpy_helper.from_array(np.random.rand(k, n).astype(np.float32), "w")],
        TensorProto.FLOAT,
    )
    out["ORT fp32"] = best(lambda: s32.run(None, {"x": x}))
    xq = np.random.randint(0, 255, (m, k)).astype(np.uint8)
    s8 = session(
        helper.make_node("MatMulInteger", ["x", "w"], ["y"]),
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [m, k])],
        [numpy_helper.from_array(np.random.randint(-127, 127, (k, n)).astype(np.int8), "w")],
        TensorProto.INT32,
    )
    out["ORT int8"] = best(lambda: s8.run(None, {"x": xq}))
    del onnx
    return out


def worker(args) -> None:
    os.environ.setdefault("CROSSRANK_THREADS", str(args.threads))
    if args.worker in ("peaks", "prepare") or needs_torch(args.worker):
        import torch

        torch.set_num_threads(args.threads)
    if args.worker == "peaks":
        result = gemm_peaks()
    elif args.worker == "prepare":
        result = prepare_default(model_dir(args.model), args.reprepare)
    elif args.worker.startswith("convert:"):  # an explicit row's export / IR, made before it is measured
        from crossrank.reranker import load_backend

        _, backend, dtype = args.worker.split(":", 1)[1].split("-")
        start = time.perf_counter()
        load_backend(backend, model_dir(args.model), "cpu", dtype)
        result = {"method": args.worker, "seconds": time.perf_counter() - start}
    else:
        pairs = workload(args.pairs, args.per_query)
        result = run_method(args.worker, model_dir(args.model), pairs, args.batch_size, args.rounds)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


# ---------------------------------------------------------------- driver


def spawn(args, what: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        what,
        "--model",
        args.model,
        "--pairs",
        str(args.pairs),
        "--per-query",
        str(args.per_query),
        "--batch-size",
        str(args.batch_size),
        "--rounds",
        str(args.rounds),
        "--threads",
        str(args.threads),
    ] + (["--reprepare"] if args.reprepare else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"method": what, "error": " | ".join(tail)}


def describe_machine(threads: int) -> str:
    import platform

    import psutil

    cpu, flags = "unknown CPU", set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name") and cpu == "unknown CPU":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
    isa = [f for f in wanted if f in flags]
    load = os.getloadavg()[0]
    busy = (
        "busy with other jobs, so absolute numbers are depressed and noisy"
        if load > 0.5 * psutil.cpu_count()
        else "otherwise idle"
    )
    return (
        f"{cpu}, {psutil.cpu_count()} logical cores ({', '.join(isa) or 'ISA flags unknown'}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
        f"{threads} threads; load average at start {load:.1f} ({busy}); "
        "ratios measured in the same run are what to read"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded", help="'embedded', 'm3-shape' or a model folder")
    parser.add_argument("--pairs", type=int, default=200, help="pairs in the workload")
    parser.add_argument("--per-query", type=int, default=10, help="passages per ArguAna query")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="timed passes per method (best is kept)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument(
        "--reprepare",
        action="store_true",
        help="forget backend='auto''s cached verdicts first, so its one-time preparation is timed in full",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from crossrank.tokenization import PairTokenizer

    mdir = model_dir(args.model)
    config = json.loads((mdir / "config.json").read_text())
    pairs = workload(args.pairs, args.per_query)
    tok = PairTokenizer.from_pretrained(mdir, max_length=512)
    lengths = []
    for q, d in pairs:
        q_ids = tok.encode_query(q)
        lengths.append(min(512, len(q_ids) + len(tok.encode([d])[0].ids) + tok.template.n_special))
    fpp = flops_per_pair(config, lengths)
    print(
        f"# crossrank throughput — model {args.model} ({config['architectures'][0]}, "
        f"{config['num_hidden_layers']} layers, hidden {config['hidden_size']})"
    )
    if args.model == "m3-shape":
        print(
            "# random weights with bge-reranker-v2-m3's shapes and real XLM-R tokenizer: "
            "speed does not depend on weight values; scores are meaningless"
        )
    print(f"# machine: {describe_machine(args.threads)}")
    lengths_sorted = sorted(lengths)
    print(
        f"# workload: {len(pairs)} ArguAna (query, passage) pairs, {args.per_query} passages/query, "
        f"tokens per pair min {lengths_sorted[0]} / median {lengths_sorted[len(lengths) // 2]} / "
        f"max {lengths_sorted[-1]}, "
        f"max_length 512, batch {args.batch_size}; {fpp / 1e9:.1f} GFLOP per pair"
    )
    t0 = time.time()
    prepared = spawn(args, "prepare") if "crossrank-default" in args.methods else None
    if prepared is not None:
        print_preparation(prepared)
    for method in args.methods:  # converting in the measured process would make its peak RSS the converter's
        if method.startswith(("crossrank-openvino", "crossrank-onnx")):
            spawn(args, f"convert:{method}")
    peaks = spawn(args, "peaks")
    results = [spawn(args, m) for m in args.methods]
    peaks_end = spawn(args, "peaks")
    peak = {k: (peaks[k] + peaks_end[k]) / 2 for k in peaks if k in peaks_end} if "error" not in peaks else {}
    print(
        "# GEMM peaks (GFLOP/s, GOP/s for int8), start → end of run: "
        + ", ".join(
            f"{k} {peaks[k]:.0f}→{peaks_end.get(k, 0):.0f}"
            for k in ("torch fp32", "torch bf16", "ORT fp32", "ORT int8")
            if k in peaks
        )
    )
    base = next(
        (r["pairs_per_s"] for r in results if r["method"] == "sentence-transformers" and "error" not in r),
        None,
    )
    verdicts = (prepared or {}).get("verdicts", {})
    rhos = per_query_spearman(results, args.per_query)
    print()
    print(
        "| method | pairs/s | × sentence-transformers | % of GEMM peak (kernel) | outside forward | "
        "padding | peak RSS MB | note |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['method']} | — | — | — | — | — | — | error: {r['error'][:150]} |")
            continue
        kernel = PEAK_OF.get(r["method"], "torch fp32")
        frac = f"{r['pairs_per_s'] * fpp / 1e9 / peak[kernel]:.1%}" if peak.get(kernel) else "—"
        if kernel == "torch bf16" and kernel not in peak:
            frac, kernel = "—", "no native bf16 on this CPU: emulated"
        ratio = f"{r['pairs_per_s'] / base:.2f}×" if base else "—"
        outside = f"{r['outside_forward']:.1%}"
        if "tokenize_s" in r:
            outside += f" (tokenize {r['tokenize_s'] / r['seconds']:.1%})"
        padding = f"{r['padding']:.2f}" if "padding" in r else "—"
        note = r.get("note", "")
        if r["method"] == "crossrank-default" and r.get("chosen"):
            note += f"auto chose {' '.join(r['chosen'])}"
            kernel = KERNEL_OF_CHOICE.get(tuple(r["chosen"]), kernel)
            frac = f"{r['pairs_per_s'] * fpp / 1e9 / peak[kernel]:.1%}" if peak.get(kernel) else "—"
        verdict = verdicts.get(r["method"].removeprefix("crossrank-"))
        if verdict and verdict.get("reason"):
            note += ("; " if note else "") + f"auto {verdict['reason']}"
        if r["method"] in rhos:
            note += ("; " if note else "") + f"per-query ρ̄ vs torch fp32 {rhos[r['method']]:.4f}"
        print(
            f"| {r['method']} | {r['pairs_per_s']:.2f} | {ratio} | {frac} ({kernel}) | {outside} | "
            f"{padding} | {r['peak_rss_mb']:.0f} | {note} |"
        )
    print(
        f"\n# total wall time {time.time() - t0:.0f}s; "
        "padding = padded tokens / real tokens in crossrank's batches"
    )
    print_targets(results, base, rhos, verdicts, peak, fpp, args.model)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"peaks": [peaks, peaks_end], "results": results, "flops_per_pair": fpp, "pairs": len(pairs)},
                indent=2,
            )
        )


def print_preparation(prepared: dict) -> None:
    if "error" in prepared:
        print(f"# crossrank default: preparation failed: {prepared['error'][:300]}")
        return
    how = (
        f"{prepared['gated_now']} candidate(s) prepared and gated in this run"
        if prepared["gated_now"]
        else "verdicts were cached (run with --reprepare to time it from scratch)"
    )
    print(
        f"# crossrank default: one-time preparation {prepared['seconds']:.0f}s ({how}); "
        f"auto chose {' '.join(prepared['chosen'])} — {prepared['reason']}"
    )
    if prepared.get("reference_s") is not None:
        print(f"#   torch fp32 reference on the gate set: {prepared['reference_s']:.0f}s (when first gated)")
    for name, v in prepared["verdicts"].items():
        print(
            f"#   {name}: {'passed' if v['passed'] else 'failed'}; prepare {v.get('prepare_s')}s, "
            f"gate {v.get('gate_s')}s (measured {v.get('checked_at')}); {v.get('reason')}"
        )


def per_query_spearman(results: list[dict], per_query: int) -> dict[str, float]:
    """Mean per-query Spearman of each crossrank method's scores against torch fp32's."""
    from crossrank.backends.gate import spearman

    ref = next(
        (r["scores"] for r in results if r["method"] == "crossrank-torch-fp32" and "scores" in r), None
    )
    if ref is None:
        return {}
    out = {}
    for r in results:
        if "scores" in r and r["method"] != "crossrank-torch-fp32":
            groups = range(0, len(ref), per_query)
            out[r["method"]] = sum(
                spearman(ref[i : i + per_query], r["scores"][i : i + per_query]) for i in groups
            ) / len(groups)
    return out


def print_targets(results, base, rhos, verdicts, peak, fpp, model: str) -> None:
    """The issue's targets, measured in this run."""
    ok = {r["method"]: r for r in results if "error" not in r}
    if not base:
        print("# targets: no sentence-transformers row to compare with")
        return

    def mark(value, target):
        return "met" if value >= target else "MISSED"

    default = ok.get("crossrank-default")
    print("# targets (this run, this CPU kind):")
    if default:
        ratio = default["pairs_per_s"] / base
        print(f"#   crossrank default ({' '.join(default.get('chosen', []))}) {ratio:.2f}× ST "
              f"(target ≥ {TARGET_DEFAULT:g}×: {mark(ratio, TARGET_DEFAULT)})")
        if "crossrank-default" in rhos:
            rho = rhos["crossrank-default"]
            print(f"#   default vs torch fp32 per-query Spearman {rho:.4f} "
                  f"(target ≥ {TARGET_SPEARMAN}: {mark(rho, TARGET_SPEARMAN)})")
    gated = [  # torch fp32 (the reference), auto's choice, and every backend whose verdict passed
        r for m, r in ok.items()
        if m in ("crossrank-torch-fp32", "crossrank-default")
        or (verdicts.get(m.removeprefix("crossrank-")) or {}).get("passed")
    ]
    if gated:
        best = max(gated, key=lambda r: r["pairs_per_s"])
        ratio = best["pairs_per_s"] / base
        print(f"#   best gated backend {best['method']} {ratio:.2f}× ST "
              f"(target ≥ {TARGET_BEST:g}×: {mark(ratio, TARGET_BEST)})")
    ours = [r for m, r in ok.items() if m.startswith("crossrank")]
    if ours:
        fastest = max(ours, key=lambda r: r["pairs_per_s"])
        print(f"#   fastest crossrank method (gated or not) {fastest['method']} "
              f"{fastest['pairs_per_s'] / base:.2f}× ST")
    if model == "m3-shape":
        print("#   m3-shape has random weights: its verdicts say nothing about the real model's accuracy")
    st_rate = base * fpp / 1e9
    if peak and st_rate:
        best_kernel = max(peak, key=peak.get)
        ceiling = peak[best_kernel] / st_rate
        line = (f"#   ceiling: best kernel peak {best_kernel} {peak[best_kernel]:.0f} ÷ ST's achieved "
                f"{st_rate:.0f} GFLOP/s = {ceiling:.1f}×")
        if default:
            line += f"; the default reaches {default['pairs_per_s'] / base / ceiling:.2f} of it"
        avx512 = "avx512f" in (open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else "")
        print(line + ("" if avx512 else " (AVX2-only CPU: target ≥ 0.6 of the ceiling)"))


if __name__ == "__main__":
    main()
