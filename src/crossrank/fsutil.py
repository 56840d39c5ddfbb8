"""Small filesystem primitives shared by the model builder and the ONNX exporter."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def swap_in_folder(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing any previous one.

    The old folder is first renamed aside, so ``final`` is at every moment either the complete old
    folder or the complete new one; the old copy is deleted afterwards.
    """
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".old-{final.name}.", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def restore_interrupted_swap(final: Path) -> bool:
    """Undo a :func:`swap_in_folder` killed between its two renames: ``final`` is missing and the old
    folder waits in ``.old-<name>.*/<name>``; put it back. Returns whether one was restored. (Without
    this the complete old folder would be deleted as a leftover and rebuilt from scratch.)"""
    if final.exists():
        return False
    aside = sorted(final.parent.glob(f".old-{final.name}.*/{final.name}"), key=lambda p: p.stat().st_mtime)
    if not aside:
        return False
    os.replace(aside[-1], final)
    _fsync_dir(final.parent)
    return True


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a crash) sees the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (a no-op where ``fcntl`` is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
