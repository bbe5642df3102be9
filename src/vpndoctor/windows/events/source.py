"""Opening one FILE for the readers: a path, a FIFO or stdin ("-"), opened once and read once, without
waiting on a FIFO that has no writer or on a terminal; its first bytes are kept for the format sniffer.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vpndoctor.errors import UsageError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

STDIN = "-"  # the FILE that names standard input
_SNIFF_BYTES = 4096


class _Chained(io.RawIOBase):
    """The sniffer's bytes, then the rest of the source: a pipe cannot be reopened or rewound."""

    def __init__(
        self, label: str, head: bytes, read: Callable[[int], bytes], close: Callable[[], None]
    ) -> None:
        super().__init__()
        self._label = label
        self._head = head
        self._read = read
        self._close = close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            data, self._head = self._head[: len(view)], self._head[len(view) :]
        else:
            data = _read_some(self._read, len(view), self._label)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._close()
        super().close()


@dataclass
class _Input:
    """One FILE, opened once: `head` is its first bytes (for the sniffer) and `stream` starts at byte 0."""

    label: str  # for errors: the path as given, or "stdin"
    name: str  # for warnings: the file's name
    suffix: str
    head: bytes
    stream: io.BufferedReader[_Chained]
    fd: int | None  # our descriptor of a regular file, in which evtx may seek

    def close(self) -> None:
        self.stream.close()


def _open_input(path: Path) -> _Input:
    """Open FILE ("-": stdin) and read its head without waiting on a FIFO that has no writer or a terminal."""
    if str(path) == STDIN:
        return _open_stdin()
    label = str(path)
    try:
        # Without O_NONBLOCK, opening a FIFO waits for a writer: forever if none comes.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise UsageError(f"{label}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{label}: {exc.strerror}") from None
    return _from_fd(fd, label, path.name, path.suffix.lower(), by_path=True)


def _open_stdin() -> _Input:
    try:
        fd = os.dup(sys.stdin.fileno())  # our own descriptor: closing it leaves sys.stdin alone
    except (AttributeError, ValueError, OSError):
        # No descriptor behind sys.stdin (an embedding application, a test runner): read the object itself.
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise UsageError("stdin: not open") from None
        read: Callable[[int], bytes] = stdin.read
        head = _read_head(read, "stdin", _SNIFF_BYTES)
        stream = io.BufferedReader(_Chained("stdin", head, read, lambda: None))
        return _Input("stdin", "stdin", "", head, stream, None)
    return _from_fd(fd, "stdin", "stdin", "", by_path=False)


def _from_fd(fd: int, label: str, name: str, suffix: str, by_path: bool) -> _Input:
    def read(size: int) -> bytes:
        return os.read(fd, size)

    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"{label}: is a directory")
        if os.isatty(fd):
            raise UsageError(f"{label}: is a terminal (name an exported log, or pipe one in)")
        first = b""
        if by_path and stat.S_ISFIFO(mode):
            first = _first_from_fifo(fd, label)
        if by_path and not stat.S_ISCHR(mode):
            # A character device stays non-blocking: one with nothing to give fails instead of waiting.
            os.set_blocking(fd, True)
        head = first + _read_head(read, label, _SNIFF_BYTES - len(first))
    except BaseException:
        os.close(fd)
        raise
    stream = io.BufferedReader(_Chained(label, head, read, lambda: os.close(fd)), 64 * 1024)
    return _Input(label, name, suffix, head, stream, fd if by_path and stat.S_ISREG(mode) else None)


def _first_from_fifo(fd: int, label: str) -> bytes:
    # Opened without blocking, a FIFO that no writer holds open reads as empty: refuse it rather than wait.
    # A writer that is there but has not written yet reads as "would block": wait for it like any pipe.
    try:
        first = os.read(fd, _SNIFF_BYTES)
    except BlockingIOError:
        return b""
    except OSError as exc:
        raise UsageError(f"{label}: {exc.strerror}") from None
    if not first:
        raise UsageError(
            f"{label}: a FIFO or pipe with no writer and nothing to read (start the writer first)"
        )
    return first


def _read_head(read: Callable[[int], bytes], label: str, size: int) -> bytes:
    # A pipe hands over what its writer wrote so far: read on until the sniffer has its bytes or the end.
    parts: list[bytes] = []
    while size > 0 and (chunk := _read_some(read, size, label)):
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _read_some(read: Callable[[int], bytes], size: int, label: str) -> bytes:
    try:
        return read(size)
    except BlockingIOError:
        raise UsageError(f"{label}: nothing to read yet, and reading would block") from None
    except OSError as exc:
        raise UsageError(f"{label}: {exc.strerror or exc}") from None


def _encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 2 and head[1] == 0 and head[0] != 0:
        return "utf-16-le"  # PowerShell redirection without a BOM
    return "utf-8"
