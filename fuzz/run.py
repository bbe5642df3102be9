"""Runs the harnesses for a number of inputs each and prints what they found:
`python -m fuzz.run [--runs N] [--jobs J] [HARNESS ...]` (from the repository root; `make fuzz` runs all).

Each harness runs in its own process (fuzz/driver.py under atheris), so that a crash, a hang or a signal in
one does not stop the others, at nice 19. Its working state lives in fuzz/.work/<harness>/ (not committed):
the corpus libFuzzer grows (kept between runs unless --fresh), its log, the inputs that crashed or were slow,
and stats.json. The committed seeds (fuzz/corpus/<harness>/) and regression inputs (fuzz/crashes/<harness>/)
are read, never written, except that each new crash signature is minimised into fuzz/crashes/<harness>/
(--no-keep to skip). The table: inputs run, crashing inputs (distinct signatures in brackets, and how many
of them are known: an input in fuzz/crashes/<harness>/ already fails the same way), the slowest
input in CPU and wall-clock seconds and how many took more than --slow-s of CPU, libFuzzer's coverage
(edges / features), inputs per second.
The exit status is 1 when any harness crashed or died, else 0.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fuzz.harnesses import HARNESSES

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
WORK = FUZZ / ".work"


@dataclass
class Result:
    harness: str
    inputs: int = 0
    crashes: int = 0
    signatures: dict[str, dict[str, object]] = field(default_factory=dict)
    slowest_s: float = 0.0  # CPU time
    slowest_wall_s: float = 0.0
    slow: int = 0
    cov: int | None = None
    ft: int | None = None
    exec_per_s: int | None = None
    seconds: float = 0.0
    died: str | None = None  # libFuzzer's reason when the process itself failed
    died_input: str | None = None
    kept: list[str] = field(default_factory=list)
    # Timeouts in third-party native code that vpndoctor runs under a watchdog (a harness's HANG_CONTAINED):
    # each input is kept as fuzz/crashes/<harness>/hang-*, and the run goes on with the inputs left.
    hangs: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.crashes or self.died)


def _dict_for(name: str) -> Path | None:
    path = FUZZ / "dicts" / f"{name}.dict"
    return path if path.is_file() else None


def run_one(name: str, args: argparse.Namespace) -> Result:
    from fuzz.harnesses import load

    work = WORK / name
    if args.fresh and work.exists():
        shutil.rmtree(work)
    corpus = work / "corpus"
    artifacts = work / "artifacts"
    for d in (corpus, artifacts):
        d.mkdir(parents=True, exist_ok=True)
    stats = work / "stats.json"
    module = load(name)
    contained = bool(getattr(module, "HANG_CONTAINED", False))
    total = Result(name)
    t0 = time.monotonic()
    while True:
        result = _run_once(name, args, module, args.runs - total.inputs, work, corpus, artifacts, stats)
        total.inputs += result.inputs
        total.crashes += result.crashes
        total.signatures.update(result.signatures)
        total.slow += result.slow
        total.slowest_s = max(total.slowest_s, result.slowest_s)
        total.slowest_wall_s = max(total.slowest_wall_s, result.slowest_wall_s)
        hang = contained and (result.died or "").startswith("timeout") and result.died_input
        if not hang or total.hangs >= MAX_CONTAINED_HANGS:
            break
        total.hangs += 1
        _keep_hang(name, Path(str(result.died_input)), corpus)
        if total.inputs >= args.runs:
            result.died = result.died_input = None
            break
    total.cov, total.ft, total.died, total.died_input = result.cov, result.ft, result.died, result.died_input
    total.seconds = round(time.monotonic() - t0, 1)
    if total.seconds:
        total.exec_per_s = round(total.inputs / total.seconds)
    if args.keep:
        total.kept = keep_crashes(name, total, args.slow_s)
    return total


# A harness that keeps hitting contained hangs is reported as dead after this many.
MAX_CONTAINED_HANGS = 50


def _keep_hang(name: str, artifact: Path, corpus: Path) -> None:
    """Keep a contained hang as fuzz/crashes/<name>/hang-*, and take it out of the grown corpus (a seed
    that hangs would end the next run at once)."""
    if not artifact.is_file():
        return
    data = artifact.read_bytes()
    dest = FUZZ / "crashes" / name
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"hang-{hashlib.sha1(data).hexdigest()[:16]}"
    if not target.exists():
        target.write_bytes(data)
    artifact.unlink()
    for seed in corpus.iterdir():
        if seed.is_file() and seed.stat().st_size == len(data) and seed.read_bytes() == data:
            seed.unlink()


def _run_once(
    name: str,
    args: argparse.Namespace,
    module: Any,
    runs: int,
    work: Path,
    corpus: Path,
    artifacts: Path,
    stats: Path,
) -> Result:
    stats.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "fuzz.driver",
        name,
        f"-runs={runs}",
        f"-max_total_time={args.max_time_s}",
        f"-timeout={args.timeout_s}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
    ]
    max_len = getattr(module, "MAX_LEN", None)
    if max_len:
        cmd.append(f"-max_len={max_len}")
    if (d := _dict_for(name)) is not None:
        cmd.append(f"-dict={d}")
    # The regression inputs seed the run too, except hang-* ones: a harness may run a parser in-process that
    # `vpndoctor` runs under a watchdog (events_evtx), where they would only replay the known timeout.
    crashes = FUZZ / "crashes" / name
    for path in sorted(crashes.iterdir()) if crashes.is_dir() else []:
        if path.is_file() and not path.name.startswith("hang-") and not (corpus / path.name).exists():
            shutil.copyfile(path, corpus / path.name)
    cmd += [str(corpus)] + [str(p) for p in (FUZZ / "corpus" / name,) if p.is_dir()]
    env = {
        **os.environ,
        "FUZZ_STATS": str(stats),
        "FUZZ_ARTIFACTS": str(artifacts),
        "FUZZ_SLOW_S": str(args.slow_s),
        "FUZZ_SCRATCH": str(work / "scratch"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    t0 = time.monotonic()
    with open(work / "fuzz.log", "wb") as log:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    result = collect(name, seconds=round(time.monotonic() - t0, 1))
    if proc.returncode != 0 and result.died is None:
        result.died = f"exit status {proc.returncode}"
    return result


def collect(name: str, seconds: float | None = None) -> Result:
    """What one harness's last run left in fuzz/.work/<name>/ (stats.json and fuzz.log)."""
    work = WORK / name
    stats = work / "stats.json"
    result = Result(name)
    if stats.is_file():
        doc = json.loads(stats.read_text())
        for key in ("inputs", "crashes", "signatures", "slowest_s", "slowest_wall_s", "slow"):
            setattr(result, key, doc.get(key, getattr(result, key)))
        if doc["seconds"]:
            result.exec_per_s = round(doc["inputs"] / doc["seconds"])
        result.seconds = doc["seconds"]
    if seconds is not None:
        result.seconds = seconds
    if (work / "fuzz.log").is_file():
        _read_log((work / "fuzz.log").read_text(errors="replace"), result)
    if result.signatures:
        from fuzz.minimize import known_signatures

        known = known_signatures(name)
        for sig, info in result.signatures.items():
            info["known"] = sig in known
    return result


_FINAL = re.compile(r"^#(\d+)\s+(?:DONE|NEW|REDUCE|pulse|INITED|RELOAD)\s+cov: (\d+) ft: (\d+)", re.M)


def _read_log(text: str, result: Result) -> None:
    points = _FINAL.findall(text)
    if points:
        result.cov, result.ft = int(points[-1][1]), int(points[-1][2])
    if m := re.search(r"stat::number_of_executed_units:\s+(\d+)", text):
        result.inputs = max(result.inputs, int(m.group(1)))
    if m := re.search(r"==\d+== ERROR: libFuzzer: ([^\n]+)|==ERROR: libFuzzer: ([^\n]+)", text):
        result.died = (m.group(1) or m.group(2)).strip()
    elif "libFuzzer: run interrupted" in text:
        result.died = "interrupted (a signal from outside)"
    elif m := re.search(r"=== Uncaught Python exception: ===\n([^\n]+)", text):
        result.died = f"uncaught {m.group(1).strip()}"
    if m := re.search(r"Test unit written to (\S+)", text):
        result.died_input = m.group(1)


def keep_crashes(name: str, result: Result, slow_s: float) -> list[str]:
    """Minimise the first input of each crash signature into fuzz/crashes/<harness>/ (unless one with the
    same signature is there already); add the first slow inputs that are still slow when run again, and
    the input that killed the fuzzer."""
    from fuzz.minimize import keep, keep_slow

    kept = []
    for sig, info in result.signatures.items():
        path = keep(name, Path(str(info["file"])), expect=sig)
        if path is not None:
            kept.append(str(path.relative_to(ROOT)))
    for slow in sorted((WORK / name / "artifacts").glob("slow-*"))[:3]:
        path = keep_slow(name, slow, slow_s)
        if path is not None:
            kept.append(str(path.relative_to(ROOT)))
    if result.died_input and Path(result.died_input).is_file():
        dest = FUZZ / "crashes" / name
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / Path(result.died_input).name
        if not target.exists():
            shutil.copyfile(result.died_input, target)
            kept.append(str(target.relative_to(ROOT)))
    return kept


def table(results: list[Result], slow_s: float) -> str:
    head = (
        "harness",
        "inputs",
        "crashes",
        "slowest: CPU / wall (s)",
        f"> {slow_s:g} s CPU",
        "cov / ft",
        "exec/s",
        "time (s)",
    )
    rows = []
    for r in results:
        known = sum(1 for info in r.signatures.values() if info.get("known"))
        crashes = f"{r.crashes} [{len(r.signatures)}" if r.crashes else "0"
        if r.crashes:
            crashes += f", {known} known]" if known else "]"
        if r.died:
            crashes += f" + died: {r.died}"
        if r.hangs:
            crashes += f" ({r.hangs} contained hang{'s' if r.hangs > 1 else ''})"
        cov = f"{r.cov} / {r.ft}" if r.cov is not None else "-"
        rows.append(
            (
                r.harness,
                f"{r.inputs:,}",
                crashes,
                f"{r.slowest_s:.3f} / {r.slowest_wall_s:.3f}",
                str(r.slow),
                cov,
                str(r.exec_per_s or "-"),
                f"{r.seconds:g}",
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("harness", nargs="*", help=f"default: all ({', '.join(HARNESSES)})")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("FUZZ_RUNS", 1_000_000)))
    parser.add_argument("--jobs", type=int, default=1, help="harnesses run at once")
    parser.add_argument(
        "--slow-s", type=float, default=1.0, help="an input taking more CPU seconds than this is reported"
    )
    parser.add_argument("--timeout-s", type=int, default=30, help="libFuzzer kills an input after this")
    parser.add_argument(
        "--max-time-s",
        type=int,
        default=0,
        help="stop a harness after this long even short of --runs (0: never)",
    )
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--nice", type=int, default=19, help="added to this process's niceness (max 19)")
    parser.add_argument("--fresh", action="store_true", help="forget the corpus grown by earlier runs")
    parser.add_argument(
        "--no-keep", dest="keep", action="store_false", help="do not add crashes to fuzz/crashes"
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="run nothing: the table of what the last runs left in fuzz/.work",
    )
    args = parser.parse_args()
    names = args.harness or list(HARNESSES)
    unknown = [n for n in names if n not in HARNESSES]
    if unknown:
        parser.error(f"unknown harness {', '.join(unknown)} (one of {', '.join(HARNESSES)})")
    started = datetime.datetime.now().astimezone()
    results: dict[str, Result] = {}
    if args.report:
        results = {n: collect(n) for n in names}
        print(table([results[n] for n in names], args.slow_s))
        return 1 if any(r.failed for r in results.values()) else 0
    os.nice(args.nice)  # the fuzzers inherit it: they share the machine
    print(f"fuzzing {len(names)} harness(es), {args.runs:,} inputs each, {args.jobs} at a time", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_one, n, args): n for n in names}
        for future in concurrent.futures.as_completed(futures):
            r = future.result()
            results[r.harness] = r
            state = "CRASH" if r.failed else "ok"
            print(
                f"  {r.harness}: {r.inputs:,} inputs, {state}, slowest {r.slowest_s:.3f} s ({r.seconds:g} s)",
                flush=True,
            )
    ordered = [results[n] for n in names]
    text = table(ordered, args.slow_s)
    print()
    print(text)
    for r in ordered:
        for sig, info in r.signatures.items():
            known = " (known: an input in fuzz/crashes fails the same way)" if info.get("known") else ""
            print(f"\n{r.harness}: {info['count']} input(s): {sig}{known}")
            print(f"  {info['error']}\n  first: {info['file']}")
        if r.died:
            log = WORK / r.harness / "fuzz.log"
            print(f"\n{r.harness}: the fuzzer died: {r.died} (input: {r.died_input}; log: {log})")
        for k in r.kept:
            print(f"  kept {k}")
    WORK.mkdir(exist_ok=True)
    (WORK / "results.json").write_text(
        json.dumps(
            {
                "started": started.isoformat(timespec="seconds"),
                "runs": args.runs,
                "results": [asdict(r) for r in ordered],
            },
            indent=1,
        )
    )
    (WORK / "results.md").write_text(
        f"{started:%Y-%m-%d %H:%M %Z}, {args.runs:,} inputs per harness\n\n{text}\n"
    )
    return 1 if any(r.failed for r in ordered) else 0


if __name__ == "__main__":
    sys.exit(main())
