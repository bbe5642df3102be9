"""Naming a crash: the exception type and the innermost frame in vpndoctor's own code (else the innermost
frame), so that the same defect reached by many inputs counts once, and a minimised input can be checked to
still fail the same way."""

from __future__ import annotations

import traceback
from types import TracebackType


def signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/vpndoctor/" in f.filename.replace("\\", "/")]
    frame = (ours or frames or [None])[-1]
    where = "?" if frame is None else f"{_short(frame.filename)}:{frame.lineno}"
    return f"{type(exc).__name__} at {where}"


def _short(filename: str) -> str:
    path = filename.replace("\\", "/")
    for marker in ("/src/vpndoctor/", "/fuzz/", "/site-packages/"):
        if marker in path:
            return (
                path.split(marker, 1)[1]
                if marker != "/src/vpndoctor/"
                else "vpndoctor/" + path.split(marker, 1)[1]
            )
    return path.rsplit("/", 1)[-1]


def describe(exc: BaseException, tb: TracebackType | None = None) -> str:
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def run_one(one_input: object, data: bytes) -> BaseException | None:
    """The exception `one_input(data)` lets escape, if any (KeyboardInterrupt excepted)."""
    try:
        one_input(data)  # type: ignore[operator]
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - anything escaping a harness is what we look for
        return exc
    return None
