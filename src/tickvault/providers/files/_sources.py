"""Opening an import file: what it is (by its bytes, not its name) and a line-exact byte stream.

File names lie (``.txt`` CSVs, ``.csv`` files that are gzip), so the kind is sniffed from
magic bytes: Parquet, Arrow IPC (Feather v2) or text, and for text an optional gzip, bz2,
xz, zstd or single-member zip wrapper. Text is then read in large blocks cut at the last
newline, each block knowing the line number of its first line, so every later error can
name the exact line without keeping the file in memory.
"""

from __future__ import annotations

import bz2
import contextlib
import enum
import gzip
import lzma
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import numpy as np

from tickvault.errors import FileFormatError, InvalidInput

__all__ = ["Block", "FileKind", "iter_blocks", "open_text", "read_exact", "sniff"]

#: A single line longer than this is not market data; refusing it bounds memory on garbage.
MAX_LINE_BYTES = 16 << 20


class FileKind(enum.Enum):
    """What an import file contains."""

    TEXT = "text"
    PARQUET = "parquet"
    ARROW_FILE = "arrow"  # Arrow IPC file format == Feather v2
    ARROW_STREAM = "arrow-stream"
    FEATHER_V1 = "feather-v1"


_COMPRESSION_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
)


def _kind_of(head: bytes) -> FileKind:
    if head.startswith(b"PAR1"):
        return FileKind.PARQUET
    if head.startswith(b"ARROW1"):
        return FileKind.ARROW_FILE
    if head.startswith(b"FEA1"):
        return FileKind.FEATHER_V1
    if head.startswith(b"\xff\xff\xff\xff"):
        return FileKind.ARROW_STREAM
    return FileKind.TEXT


def sniff(path: Path) -> tuple[FileKind, str | None]:
    """Return the file's kind and its compression wrapper (``None`` when plain).

    Raises
    ------
    InvalidInput
        If the path does not exist or cannot be read.
    FileFormatError
        If a compressed file wraps a columnar file (those need random access).
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise InvalidInput("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise InvalidInput("path is a directory, not a file", path=str(path)) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read file: {exc.strerror or exc}", path=str(path)) from None
    compression = next((name for magic, name in _COMPRESSION_MAGIC if head.startswith(magic)), None)
    if compression is None:
        kind = _kind_of(head)
        if kind is FileKind.FEATHER_V1:
            raise FileFormatError("Feather V1 files are not supported (Arrow deprecated them); rewrite the file as "
                                  "Feather V2 / Arrow IPC", path=str(path))
        return kind, None
    with open_text(path, compression) as stream:
        inner = read_exact(stream, 8, path, compression, 1)
    if _kind_of(inner) is not FileKind.TEXT:
        raise FileFormatError(f"{compression}-compressed {_kind_of(inner).value} files are not supported; "
                              "decompress it first", path=str(path))
    return FileKind.TEXT, compression


@contextlib.contextmanager
def open_text(path: Path, compression: str | None) -> Iterator[IO[bytes]]:
    """Open ``path`` as a decompressed binary stream."""
    try:
        if compression is None:
            with path.open("rb") as fh:
                yield fh
        elif compression == "gzip":
            with gzip.open(path, "rb") as gz:
                yield cast(IO[bytes], gz)
        elif compression == "bz2":
            with bz2.open(path, "rb") as bz:
                yield bz
        elif compression == "xz":
            with lzma.open(path, "rb") as xz:
                yield xz
        elif compression == "zstd":
            import zstandard

            with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as zs:
                yield zs
        else:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise FileFormatError(f"zip archive holds {len(members)} files; import needs exactly one",
                                          path=str(path))
                with zf.open(members[0]) as member:
                    yield member
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise FileFormatError(f"unreadable zip archive: {exc}", path=str(path)) from None


def _decompress_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile]
    with contextlib.suppress(ImportError):
        import zstandard

        errors.append(zstandard.ZstdError)
    return tuple(errors)


def read_exact(stream: IO[bytes], n: int, path: Path, compression: str | None, line: int) -> bytes:
    """Read ``n`` bytes (fewer only at end of file); decompression failures become format errors."""
    parts: list[bytes] = []
    got = 0
    # Compressed streams are read in small pieces so that, when the data is corrupt or cut
    # short, what decoded before the damage is kept and the error names the right line.
    piece = n if compression is None else 1 << 16
    try:
        while got < n:
            part = stream.read(min(n - got, piece))
            if not part:
                break
            parts.append(part)
            got += len(part)
    except _decompress_errors() as exc:
        what = f"{compression} data" if compression else "file"
        line += sum(p.count(b"\n") for p in parts)  # the data stops inside this line
        raise FileFormatError(f"corrupt or truncated {what}: {exc}", path=str(path), line=line) from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


@dataclass(frozen=True)
class Block:
    """Whole lines of text and where they start.

    Attributes
    ----------
    data
        Bytes of complete lines (the last one may lack its newline at end of file).
    first_line
        1-based line number of the first line in ``data``.
    """

    data: bytes | memoryview
    first_line: int

    def nonblank_lines(self) -> np.ndarray:
        """Line numbers of the non-empty lines, in order (what a CSV parser turns into rows).

        Computed only when an error needs a line number: vectorised over the block.
        """
        arr = np.frombuffer(self.data, dtype=np.uint8)
        newlines = np.flatnonzero(arr == 10)
        starts = np.concatenate(([0], newlines + 1))
        ends = np.concatenate((newlines, [arr.size]))
        length = ends - starts
        if arr.size:
            length = length - ((length > 0) & (arr[np.maximum(ends - 1, 0)] == 13))
        return np.asarray(self.first_line + np.flatnonzero(length > 0), dtype=np.int64)


def iter_blocks(stream: IO[bytes], path: Path, compression: str | None, block_bytes: int,
                first_line: int = 1, initial: bytes = b"") -> Iterator[Block]:
    """Yield blocks of whole lines of about ``block_bytes`` from ``stream``.

    Parameters
    ----------
    stream
        Decompressed binary stream positioned after ``initial``.
    path, compression
        For error messages.
    block_bytes
        Target block size.
    first_line
        Line number of the first line of ``initial``.
    initial
        Bytes already read from the stream (they come first).

    Raises
    ------
    FileFormatError
        On corrupt compressed data or a line longer than 16 MiB.
    """
    pending = initial
    line = first_line
    eof = False
    while True:
        while not eof and len(pending) < block_bytes:
            more = read_exact(stream, block_bytes - len(pending), path, compression, line + pending.count(b"\n"))
            eof = not more
            pending = pending + more if pending else more
        if not pending:
            return
        cut = len(pending) if eof else pending.rfind(b"\n") + 1
        if cut == 0:  # no newline yet: one very long line, read on (bounded)
            if len(pending) > MAX_LINE_BYTES:
                raise FileFormatError(f"line is longer than {MAX_LINE_BYTES >> 20} MiB; not a text data file",
                                      path=str(path), line=line)
            more = read_exact(stream, block_bytes, path, compression, line)
            eof = not more
            pending += more
            continue
        # A view, not a copy: blocks are tens of MiB and the parser copies what it keeps.
        yield Block(memoryview(pending)[:cut], line)
        line += pending.count(b"\n", 0, cut)
        pending = pending[cut:]
