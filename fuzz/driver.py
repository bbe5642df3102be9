"""Runs one harness under atheris (libFuzzer):
`python -m fuzz.driver HARNESS [libFuzzer flags] [corpus dirs]`.

vpndoctor's modules are imported with coverage instrumentation. Rather than stopping at the first exception,
each input runs guarded: an exception escaping the harness is recorded (the input saved once per crash
signature, with its traceback, under $FUZZ_ARTIFACTS) and fuzzing goes on. So is any input that takes more
than $FUZZ_SLOW_S seconds (default 1) of CPU time: CPU, not wall-clock, time, because the fuzzers run at
nice 19 on a shared machine, where a wall clock measures the neighbours (the slowest wall time is kept too).
The counts go to $FUZZ_STATS (JSON), rewritten every few seconds and when the -runs=N'th input is done, since
libFuzzer ends the process without running Python's exit handlers.
With FUZZ_RAISE=1 the exception propagates instead, so libFuzzer stops (e.g. for -minimize_crash=1).
A crash of the process itself (a signal in the C walk, libFuzzer's -timeout, out of memory) is libFuzzer's to
report; fuzz/run.py reads it from the log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from types import ModuleType

import atheris

from fuzz import harnesses
from fuzz._crash import describe, signature


class Recorder:
    def __init__(self, name: str, module: ModuleType, argv: list[str]) -> None:
        self.name = name
        self.one_input = module.one_input
        self.stats_path = Path(os.environ["FUZZ_STATS"]) if os.environ.get("FUZZ_STATS") else None
        self.artifacts = Path(os.environ.get("FUZZ_ARTIFACTS", f"fuzz/.work/{name}/artifacts"))
        self.slow_s = float(os.environ.get("FUZZ_SLOW_S", "1.0"))
        self.reraise = os.environ.get("FUZZ_RAISE") == "1"
        runs = [int(m.group(1)) for a in argv if (m := re.fullmatch(r"-runs=(\d+)", a))]
        self.target = runs[-1] if runs else None
        self.inputs = 0
        self.crashes = 0
        self.signatures: dict[str, dict[str, object]] = {}
        self.slowest_s = 0.0
        self.slowest_wall_s = 0.0
        self.slowest_file: str | None = None
        self.slow = 0
        self.started = time.time()
        self.written = 0.0

    def __call__(self, data: bytes) -> None:
        self.inputs += 1
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            self.one_input(data)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - any escaping exception is a finding
            if self.reraise:
                raise
            self._crash(exc, data)
        elapsed = time.process_time() - c0
        self.slowest_wall_s = max(self.slowest_wall_s, time.perf_counter() - t0)
        if elapsed > self.slowest_s:
            self.slowest_s = elapsed
            self.slowest_file = str(self._save("slowest", data, overwrite=True))
        if elapsed > self.slow_s:
            self.slow += 1
            self._save(f"slow-{elapsed:.2f}s", data)
            self.write()
        if self.inputs == self.target or time.monotonic() - self.written > 5:
            self.write()

    def _crash(self, exc: BaseException, data: bytes) -> None:
        self.crashes += 1
        sig = signature(exc)
        entry = self.signatures.get(sig)
        if entry is None:
            path = self._save("crash", data)
            path.with_suffix(".txt").write_text(f"{sig}\n\n{describe(exc)}")
            self.signatures[sig] = {
                "count": 1,
                "file": str(path),
                "error": f"{type(exc).__name__}: {exc}"[:300],
            }
            self.write()
        else:
            entry["count"] = int(entry["count"]) + 1  # type: ignore[call-overload]

    def _save(self, kind: str, data: bytes, overwrite: bool = False) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        name = kind if overwrite else f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}"
        path = self.artifacts / name
        path.write_bytes(data)
        return path

    def write(self) -> None:
        self.written = time.monotonic()
        if self.stats_path is None:
            return
        doc = {
            "harness": self.name,
            "inputs": self.inputs,
            "crashes": self.crashes,
            "signatures": self.signatures,
            "slowest_s": round(self.slowest_s, 4),
            "slowest_wall_s": round(self.slowest_wall_s, 4),
            "slowest_file": self.slowest_file,
            "slow": self.slow,
            "slow_limit_s": self.slow_s,
            "seconds": round(time.time() - self.started, 1),
        }
        tmp = self.stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.stats_path)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(
            f"usage: python -m fuzz.driver HARNESS [libFuzzer flags] [corpus dirs]\n{harnesses.HARNESSES}"
        )
    name = sys.argv[1]
    argv = [sys.argv[0], *sys.argv[2:]]
    with atheris.instrument_imports(include=["vpndoctor"]):
        module = harnesses.load(name)
    recorder = Recorder(name, module, argv)
    # One untimed pass over the seeds first: lazy caches (the error catalogue, the command tables, regexes)
    # fill here rather than in the first timed input.
    seeds = Path(__file__).parent / "corpus" / name
    for path in sorted(seeds.iterdir()) if seeds.is_dir() else []:
        with contextlib.suppress(Exception):  # the fuzzer runs the seeds again and records what fails
            module.one_input(path.read_bytes())
    atheris.Setup(argv, recorder)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
