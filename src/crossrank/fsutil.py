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
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
