"""Converted-model artifacts (ONNX exports, OpenVINO IR) cached under a fingerprint of what they came from.

Shared by :mod:`.onnx_export` and :mod:`.openvino_backend`: the source fingerprint (config.json, every
weights file and the tokenizer files), the cache key derived from a full fingerprint, the JSON manifest
each artifact folder carries (with the size of each file written), and the model files copied beside the
converted graph so the folder is itself a model folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import BackendError
from ..fsutil import file_lock, restore_interrupted_swap, write_text_atomic

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
# Copied into every artifact folder: with them it is a loadable model folder (tokenizer, config, card).
logger = logging.getLogger(__name__)

MODEL_FILES = (
    "config.json",
    "crossrank.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "vocab.txt",
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_signature(path: Path) -> dict:
    """Size, mtime and a hash of the first and last MiB: catches replaced or rewritten weights without
    reading gigabytes (a safetensors header, at the start, lists every tensor's offsets)."""
    stat = path.stat()
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
        fh.seek(max(0, stat.st_size - (1 << 20)))
        tail = fh.read(1 << 20)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sample_sha256": sha256(head + tail)}


# The manifests of crossrank's artifact folders, with what reads them: such a folder is no export source.
ARTIFACT_MANIFESTS = {
    "crossrank-onnx.json": "an ONNX export (backend='onnx')",
    "crossrank-openvino.json": "an OpenVINO IR (backend='openvino')",
}


def weight_files(model_dir: Path) -> list[Path]:
    """The torch weights of a model folder; an OpenVINO IR's ``model.bin`` (beside ``model.xml``) is not."""
    return sorted(
        p
        for p in model_dir.iterdir()
        if p.suffix in WEIGHT_SUFFIXES and p.is_file() and not p.with_suffix(".xml").is_file()
    )


def check_out_folder(folder: Path, *, in_cache: bool) -> None:
    """Refuse an output path that is a file (rather than failing half-way with ``NotADirectoryError``);
    the advice names what the user can change: ``--out``, or ``CROSSRANK_HOME`` for crossrank's cache."""
    fix = (
        "set CROSSRANK_HOME to a writable folder (it holds crossrank's cache)"
        if in_cache
        else "choose a new or empty folder for --out"
    )
    for path in (folder, *folder.parents):
        if path.exists() and not path.is_dir():
            raise BackendError(f"{path} is a file, not a folder; {fix}")


def source_fingerprint(model_dir: Path) -> dict:
    """What a conversion depends on in the source folder: config.json (whole), every weights file, and the
    other :data:`MODEL_FILES` (tokenizer files, crossrank.json: copied into the artifact folder and used
    when it is loaded; small, so hashed whole)."""
    for name, what in ARTIFACT_MANIFESTS.items():
        if (model_dir / name).is_file():
            raise BackendError(
                f"{model_dir} holds {what}, not a model to convert; run it with that backend, or "
                "convert the source model folder it was made from"
            )
    config = model_dir / "config.json"
    if not config.is_file():
        raise BackendError(f"{model_dir} has no config.json; it is not a Hugging Face model folder")
    weights = weight_files(model_dir)
    if not weights:
        raise BackendError(f"{model_dir} has no weights (*.safetensors or *.bin) to export")
    return {
        "config_sha256": sha256(config.read_bytes()),
        "weights": {p.name: file_signature(p) for p in weights},
        "model_files_sha256": {
            name: sha256((model_dir / name).read_bytes())
            for name in MODEL_FILES
            if name != "config.json" and (model_dir / name).is_file()
        },
    }


def package_version(name: str) -> str:
    """An installed distribution's version without its local tag (``2.13.0+cpu`` -> ``2.13.0``); ``""`` when
    it is not installed. Read from the package metadata: importing torch, transformers or nncf only for
    their versions costs seconds at every start-up, and checking a cached conversion needs none of them."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name).split("+")[0]
    except PackageNotFoundError:
        return ""


def cache_key(fingerprint: dict) -> str:
    return sha256(json.dumps(fingerprint, sort_keys=True).encode())[:20]


def read_manifest(folder: Path, name: str) -> dict | None:
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_manifest(folder: Path, manifest: dict, name: str) -> None:
    """Write ``folder/name`` atomically (a reader sees the old manifest or the new one, never half)."""
    write_text_atomic(folder / name, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def file_sizes(folder: Path, manifest_name: str) -> dict[str, int]:
    """The size in bytes of every file in an artifact folder but its manifest, recorded in the manifest
    when the folder is written (see :func:`size_problems`)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != manifest_name)
    return {p.name: p.stat().st_size for p in files}


def size_problems(folder: Path, manifest: dict) -> list[str]:
    """What differs between the files in ``folder`` and the sizes its manifest recorded (``[]``: all
    there, all the recorded size). A manifest without sizes (written by an older crossrank) is a problem:
    the folder is rebuilt once. Only sizes are compared, a ``stat`` per file, so checking a cached
    artifact on every load stays cheap; a file damaged in place at the same size is not detected."""
    sizes = manifest.get("files")
    if not isinstance(sizes, dict) or not sizes:
        return ["no file sizes recorded (written by an older crossrank)"]
    problems = []
    for name, size in sorted(sizes.items()):
        try:
            actual = (folder / name).stat().st_size
        except OSError:
            problems.append(f"{name} is missing")
            continue
        if actual != size:
            problems.append(f"{name} is {actual} bytes, not the {size} written (truncated or replaced)")
    return problems


def changed_model_files(folder: Path, source: dict) -> list[str]:
    """The copied :data:`MODEL_FILES` in an artifact folder whose bytes differ from the source's, as its
    fingerprint ``source`` recorded them (config.json and, when recorded, the tokenizer files)."""
    recorded = {"config.json": source.get("config_sha256"), **(source.get("model_files_sha256") or {})}
    return [
        name
        for name, digest in recorded.items()
        if (folder / name).is_file() and sha256((folder / name).read_bytes()) != digest
    ]


def folder_problems(folder: Path, manifest: dict, expected: dict, model_file: str, what: str) -> list[str]:
    """Why the artifact folder ``folder`` (its manifest read as ``manifest``, ``{}`` when unreadable) cannot
    be used as it is (``[]``: it can): fingerprint entries that differ from ``expected`` (the values this
    crossrank needs), copied model files changed since ``what`` (e.g. ``"the export"``) was made, a
    missing ``model_file``, else the :func:`size_problems`."""
    fingerprint = manifest.get("fingerprint") or {}
    problems = [
        f"{k}={fingerprint.get(k)!r} (this crossrank needs {v!r})"
        for k, v in expected.items()
        if fingerprint.get(k) != v
    ]
    for name in changed_model_files(folder, fingerprint.get("source") or {}):
        problems.append(f"{name} differs from the one {what} was made from")
    if not (folder / model_file).is_file():
        problems.append(f"{model_file} is missing")
    elif manifest:
        problems += size_problems(folder, manifest)
    return problems


def is_current(folder: Path, fingerprint: dict, manifest_name: str, model_file: str) -> bool:
    """True when ``folder`` is a finished artifact built from exactly ``fingerprint``, its files all there
    with the sizes written (a truncated file makes it stale; see :func:`size_problems`)."""
    manifest = read_manifest(folder, manifest_name)
    return (
        bool(manifest)
        and manifest.get("fingerprint") == fingerprint
        and (folder / model_file).is_file()
        and not size_problems(folder, manifest)
    )


def ensure_folder(
    final: Path,
    fingerprint: dict,
    *,
    manifest_name: str,
    model_file: str,
    what: str,
    build: Callable[[], None],
    in_cache: bool = False,
) -> None:
    """Make ``final`` a current artifact of ``fingerprint``, calling ``build()`` (which writes ``final``
    through :func:`~crossrank.fsutil.swap_in_folder`) only when it is not one already. One process builds
    at a time (a lock beside the folder); what a killed build left behind is cleaned first, and a folder
    left aside by a swap killed between its two renames is put back rather than rebuilt. ``what`` names
    the artifact in messages (``"ONNX export"``). A folder of the user's (``--out``, not ``in_cache``) that
    holds anything but such an artifact is refused, never replaced; in crossrank's cache one whose
    manifest is unreadable is damaged and is built again."""
    if is_current(final, fingerprint, manifest_name, model_file):
        logger.info("reusing %s %s", what, final)
        return
    unknown = final.exists() and read_manifest(final, manifest_name) is None and any(final.iterdir())
    if unknown and not in_cache:
        raise BackendError(
            f"{final} exists and is not a crossrank {what}; choose an empty or new --out folder"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(final.parent / f".{final.name}.lock"):
        if restore_interrupted_swap(final):
            logger.warning("restored %s, left aside by an interrupted build", final)
        for pattern in (f".tmp-{final.name}.*", f".old-{final.name}.*"):  # from an interrupted build
            for leftover in final.parent.glob(pattern):
                shutil.rmtree(leftover, ignore_errors=True)
        if is_current(final, fingerprint, manifest_name, model_file):
            return
        if final.exists() and any(final.iterdir()):
            logger.warning("%s in %s is stale or damaged; building it again", what, final)
        build()


def copy_model_files(model_dir: Path, out: Path) -> None:
    for name in MODEL_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out / name)
