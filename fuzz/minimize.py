"""Shrinks a crashing input while it still fails the same way (same exception type at the same line), and
keeps it as a regression input: `python -m fuzz.minimize HARNESS FILE [--keep]`. Slow inputs are kept as
they are (`keep_slow`).

Plain delta debugging in-process (no atheris needed): drop ever smaller chunks, then try simpler byte values,
within a time budget. `keep` writes the result to fuzz/crashes/<harness>/crash-<sha1> unless an input with
the same signature is already there.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fuzz._crash import describe, run_one, signature
from fuzz.harnesses import load

CRASHES = Path(__file__).resolve().parent / "crashes"


def signature_of(one_input: Callable[[bytes], None], data: bytes) -> str | None:
    exc = run_one(one_input, data)
    return None if exc is None else signature(exc)


def minimize(one_input: Callable[[bytes], None], data: bytes, expect: str, budget_s: float = 60.0) -> bytes:
    deadline = time.monotonic() + budget_s

    def same(candidate: bytes) -> bool:
        return signature_of(one_input, candidate) == expect

    n = max(len(data) // 2, 1)
    while n >= 1 and time.monotonic() < deadline:
        i, shrunk = 0, False
        while i < len(data) and time.monotonic() < deadline:
            candidate = data[:i] + data[i + n :]
            if candidate != data and same(candidate):
                data, shrunk = candidate, True
            else:
                i += n
        if not shrunk:
            n //= 2
    for i in range(len(data)):  # simpler bytes read better in a hex dump
        if time.monotonic() >= deadline:
            break
        for value in (0, ord("A")):
            if data[i] != value:
                candidate = data[:i] + bytes([value]) + data[i + 1 :]
                if same(candidate):
                    data = candidate
                    break
    return data


def known_signatures(name: str) -> set[str]:
    harness = load(name)
    folder = CRASHES / name
    found = set()
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and not path.name.startswith("."):
            sig = signature_of(harness.one_input, path.read_bytes())
            if sig is not None:
                found.add(sig)
    return found


def keep(name: str, path: Path, expect: str | None = None, budget_s: float = 60.0) -> Path | None:
    """Minimise `path` and store it in fuzz/crashes/<name>/; None when it does not crash (any more) or a
    stored input already fails the same way."""
    harness = load(name)
    data = path.read_bytes()
    sig = signature_of(harness.one_input, data)
    if sig is None or (expect is not None and sig != expect) or sig in known_signatures(name):
        return None
    small = minimize(harness.one_input, data, sig, budget_s)
    folder = CRASHES / name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"crash-{hashlib.sha1(small).hexdigest()[:16]}"
    target.write_bytes(small)
    return target


def keep_slow(name: str, path: Path, limit_s: float) -> Path | None:
    """Store a slow input in fuzz/crashes/<name>/slow-<sha1> if it still takes more than `limit_s` of CPU
    time here (not minimised: shrinking by timing is slow and noisy)."""
    harness = load(name)
    data = path.read_bytes()
    t0 = time.process_time()
    run_one(harness.one_input, data)
    if time.process_time() - t0 <= limit_s:
        return None
    folder = CRASHES / name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"slow-{hashlib.sha1(data).hexdigest()[:16]}"
    target.write_bytes(data)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("harness")
    parser.add_argument("file", type=Path)
    parser.add_argument("--keep", action="store_true", help="store the result in fuzz/crashes/<harness>/")
    parser.add_argument("--budget-s", type=float, default=60.0)
    args = parser.parse_args()
    harness = load(args.harness)
    data = args.file.read_bytes()
    exc = run_one(harness.one_input, data)
    if exc is None:
        print(f"{args.file}: no crash")
        return 1
    sig = signature(exc)
    small = minimize(harness.one_input, data, sig, args.budget_s)
    print(f"{sig}\n{len(data)} -> {len(small)} bytes: {small!r}\n")
    exc = run_one(harness.one_input, small)
    assert exc is not None
    print(describe(exc))
    if args.keep:
        stored = keep(args.harness, args.file, sig, args.budget_s)
        print(
            f"kept as {stored}" if stored else "not kept: an input with the same signature is stored already"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
