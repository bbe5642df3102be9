"""What the harnesses share: a small reader over the fuzzer's bytes (the harnesses must run without atheris,
so no FuzzedDataProvider), ways to cut one input into a stream's chunks or a sequence of messages, and a
scratch file for parsers that only read paths."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


class Bytes:
    """Reads the fuzzer's input front to back; past the end every read gives zeros or nothing, never an
    error, so any input is a valid sequence of choices."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def u8(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        return self.u8() << 8 | self.u8()

    def u32(self) -> int:
        return self.u16() << 16 | self.u16()

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def frame(self) -> bytes:
        """A 2-byte length, then that many bytes (fewer at the end of the input)."""
        return self.take(self.u16())

    def rest(self) -> bytes:
        return self.take(self.left)


def frames(data: bytes) -> list[bytes]:
    """The input as a sequence of length-prefixed messages."""
    r = Bytes(data)
    out = []
    while r.left:
        out.append(r.frame())
    return out


def chunks(data: bytes) -> list[bytes]:
    """The input minus its first byte, cut in pieces of the size the first byte says (0: all at once), as a
    socket might deliver it."""
    if not data:
        return []
    step, body = data[0], data[1:]
    if step == 0:
        return [body]
    return [body[i : i + step] for i in range(0, len(body), step)] or [b""]


_scratch: Path | None = None


def scratch_file(name: str, data: bytes) -> Path:
    """`data` written to `name` in this process's scratch directory (on tmpfs when there is one): for the
    readers that take a path. $FUZZ_SCRATCH names the directory (the runner gives each harness its own)."""
    global _scratch
    if _scratch is None:
        chosen = os.environ.get("FUZZ_SCRATCH")
        if chosen:
            _scratch = Path(chosen)
            _scratch.mkdir(parents=True, exist_ok=True)
        else:
            shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
            _scratch = Path(tempfile.mkdtemp(prefix="vpndoctor-fuzz-", dir=shm))
            atexit.register(shutil.rmtree, _scratch, True)
    path = _scratch / name
    path.write_bytes(data)
    return path
