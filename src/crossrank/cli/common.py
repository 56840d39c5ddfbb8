"""Helpers shared by the subcommands: model arguments, input files, progress bars."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

from ..errors import InvalidInputError
from ..scoring import DEFAULT_MAX_DOCUMENT_CHARS


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The options every model-running command takes."""
    parser.add_argument("--model", default="embedded", help="'embedded', a local model folder or a hub id")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnx", "openvino"],
        help="inference backend (auto: the fastest whose accuracy gate passed on this machine)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16", "int8"],
                        help="weights dtype (int8: ONNX / OpenVINO backends)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the chosen backend, why, and other progress"
    )
    parser.add_argument("--max-length", type=int, default=512, help="tokens per (query, window) pair")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per forward pass at most")
    parser.add_argument(
        "--window", type=int, default=None, help="passage tokens per window (default: all that fit)"
    )
    parser.add_argument(
        "--stride", type=int, default=None, help="tokens between window starts (default 3/4 window)"
    )
    parser.add_argument(
        "--aggregate", default="max", choices=["max", "mean", "weighted", "first"], help="window aggregation"
    )
    parser.add_argument(
        "--max-windows", type=int, default=32, help="windows scored per document at most (the first ones)"
    )
    parser.add_argument(
        "--max-document-chars",
        type=document_limit,
        default=DEFAULT_MAX_DOCUMENT_CHARS,
        help=f"longer documents are refused ('none': no limit; default {DEFAULT_MAX_DOCUMENT_CHARS:,})",
    )


def document_limit(value: str) -> int | None:
    """``--max-document-chars``: a positive number of characters, or ``none``."""
    if value.strip().lower() == "none":
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of characters or 'none', got {value!r}")
    return number


def load_reranker(args: argparse.Namespace):
    import logging

    from ..reranker import Reranker

    if getattr(args, "verbose", False):  # the Reranker logs the chosen backend and why at INFO
        logging.getLogger("crossrank").setLevel(logging.INFO)
    return Reranker(args.model, **model_options(args))


def model_options(args: argparse.Namespace) -> dict:
    """The :class:`~crossrank.Reranker` keyword arguments of :func:`add_model_args` (all but the model)."""
    return {
        "backend": args.backend,
        "device": args.device,
        "dtype": args.dtype,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "window": args.window,
        "stride": args.stride,
        "aggregate": args.aggregate,
        "max_windows": args.max_windows,
        "max_document_chars": args.max_document_chars,
    }


def open_text(path: str) -> Iterator[tuple[int, str]]:
    """Numbered lines (without line ends) of a file, or of standard input for ``-``: UTF-8 (a BOM is
    dropped; UTF-16/32 with a BOM is read too), invalid bytes are an error naming ``file:line``."""
    from ..textfiles import read_lines

    return read_lines(path)


def parse_json_line(line: str, number: int, path: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{path}:{number}: not valid JSON ({exc.msg}); each line must be one JSON value"
        ) from None


class Progress:
    """A tqdm bar on stderr (hidden when stderr is not a terminal), fed by the engine's progress calls."""

    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="window", disable=None, file=sys.stderr)
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
