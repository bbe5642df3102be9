"""Reading a small input file a user names (ipconfig text, a deployment YAML, a lab scenario) safely.

`read_small_input` reads at most `limit` bytes (so `/dev/zero` cannot fill the memory) and never waits on a
FIFO that no writer holds open: opening one the ordinary way waits for a writer, forever if none comes. It
opens with O_NONBLOCK; a FIFO that reads as empty at once has no writer and is refused, one whose writer has
not written yet reads as "would block" and is then waited for like any pipe; a character device stays
non-blocking (one with nothing to read fails instead of waiting). `-` is stdin. Every failure is a one-line
UsageError. (`vpndoctor events` and `capture` stream big inputs and have their own openers.)
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable

from vpndoctor.errors import UsageError


def read_small_input(path: str, limit: int, *, too_big: str = "is this the right file?") -> tuple[bytes, str]:
    """(at most `limit` bytes of `path`, the name to use in messages); past `limit` a UsageError."""
    if path == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise UsageError("cannot read stdin: it is not open")
        return _read_at_most(stdin.read, "stdin", limit, too_big), "stdin"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        first = b""
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode):
            first = _first_from_fifo(fd, path, limit)
        if not stat.S_ISCHR(mode):
            os.set_blocking(fd, True)
        data = _read_at_most(lambda size: os.read(fd, size), path, limit, too_big, first)
    finally:
        os.close(fd)
    return data, path


def _first_from_fifo(fd: int, path: str, limit: int) -> bytes:
    try:
        first = os.read(fd, limit + 1)
    except BlockingIOError:
        return b""
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not first:
        raise UsageError(f"{path}: a FIFO with no writer and nothing to read (start the writer first)")
    return first


def _read_at_most(
    read: Callable[[int], bytes], name: str, limit: int, too_big: str, first: bytes = b""
) -> bytes:
    parts, size = [first], len(first)
    while size <= limit:
        try:
            chunk = read(limit + 1 - size)
        except BlockingIOError:
            raise UsageError(f"{name}: nothing to read yet, and reading would block") from None
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
    raise UsageError(f"{name}: larger than {_size(limit)}; {too_big}")


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and limit % (1 << 20) == 0 else f"{limit // 1024} KiB"
