"""Reading the text files people give the CLI and the index builder: one rule for every entry point.

- UTF-8 is expected; a UTF-8 byte-order mark is dropped (Windows editors write one).
- A file that starts with a UTF-16 or UTF-32 byte-order mark is decoded as such (Notepad's "Unicode").
- Any other byte sequence that is not UTF-8 is an :class:`~crossrank.errors.InvalidInputError` naming
  ``file:line:column`` and how to convert the file. Bytes are never replaced silently: a document
  scored or indexed with U+FFFD in place of its text would be a wrong answer nobody notices.
- Line ends: ``\\n`` and ``\\r\\n`` both end a line; the line returned keeps neither.

Python's own text mode would do most of this, but its decode errors name no line, and ``utf-8-sig``
does not recognise UTF-16 files; hence these few functions.
"""

from __future__ import annotations

import codecs
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InvalidInputError

# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
STDIN = "-"


def _wide_encoding(head: bytes) -> str | None:
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return name
    return None


def _not_utf8(name: str, number: int, exc: UnicodeDecodeError) -> InvalidInputError:
    bad = exc.object[exc.start : exc.start + 4]
    return InvalidInputError(
        f"{name}:{number}: not valid UTF-8 at byte {exc.start + 1} of the line ({bad.hex(' ')}); save the "
        f"file as UTF-8, e.g. `iconv -f latin1 -t utf-8 {name} > fixed.txt` (with the encoding it was "
        "written in)"
    )


def _decode_lines(raw: Iterable[bytes], name: str) -> Iterator[tuple[int, str]]:
    """Numbered, decoded lines of an iterable of byte lines (each ending in ``\\n`` but the last)."""
    for number, line in enumerate(raw, start=1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(name, number, exc) from None
        yield number, _strip_newline(text)


def _strip_newline(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
    return text[:-1] if text.endswith("\r") else text


def _wide_text(data: bytes, encoding: str, name: str) -> str:
    try:
        text = data.decode(encoding)  # the BOM gives the byte order; the codec drops it
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{name}: starts with a {encoding.upper()} byte-order mark but is not valid {encoding.upper()} "
            f"at byte {exc.start}; save the file as UTF-8"
        ) from None
    return text.replace("\r\n", "\n")


def existing_file(path: str | Path) -> Path:
    """``path`` as a ``Path`` if it is a file; otherwise an error saying what it is instead."""
    file = Path(path)
    if file.is_dir():
        raise InvalidInputError(f"input file {path} is a folder; pass a file (or '-' for stdin)")
    if not file.is_file():
        raise InvalidInputError(f"input file {path} does not exist")
    return file


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for each line of a file (``"-"``: standard input; ``.gz``: gunzipped),
    without line ends. A trailing newline does not make an extra empty line.
    """
    name = str(path)
    if name == STDIN:
        yield from _stream_lines(sys.stdin.buffer, "<stdin>")
        return
    file = existing_file(path)
    if file.suffix.lower() == ".gz":
        import gzip

        with gzip.open(file, "rb") as handle:
            yield from _stream_lines(handle, name)
        return
    with file.open("rb") as handle:
        yield from _stream_lines(handle, name)


def _stream_lines(handle, name: str) -> Iterator[tuple[int, str]]:
    if not hasattr(handle, "peek"):  # a replaced stdin (tests, embedding programs)
        handle = io.BufferedReader(io.BytesIO(handle.read()))
    encoding = _wide_encoding(handle.peek(4)[:4])
    if encoding is None:
        yield from _decode_lines(handle, name)
        return
    text = _wide_text(handle.read(), encoding, name)
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    yield from enumerate(lines, start=1)


def read_text(path: str | Path) -> str:
    """A whole text file as one string (line ends as ``\\n``), decoded by the rules above."""
    file = existing_file(path)
    data = file.read_bytes()
    encoding = _wide_encoding(data[:4])
    if encoding is not None:
        return _wide_text(data, encoding, str(path))
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        line = data[line_start : line_end if line_end >= 0 else len(data)]
        start, end = exc.start - line_start, exc.end - line_start
        local = UnicodeDecodeError(exc.encoding, line, start, end, exc.reason)
        raise _not_utf8(str(path), number, local) from None
