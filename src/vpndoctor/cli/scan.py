"""`vpndoctor scan TARGETS...`: many gateways at once, one JSON Lines (or CSV) record per target.

Targets are names, addresses and CIDRs on the command line, and files (`--file F` or `@F`) of one per line
(`#` comments and blank lines ignored). Everything is checked before the first datagram (a bad line is one
error naming the file and line), then read again lazily while the scan runs, so memory does not grow with
the number of targets. Records are written and flushed as targets finish: an interrupted scan leaves a
valid file, and `--resume` skips the targets already in it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import ipaddress
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from vpndoctor.cli.output import err
from vpndoctor.errors import UsageError
from vpndoctor.hostport import _hostname

if TYPE_CHECKING:
    from vpndoctor.observations.diagnose import DiagnoseObservations
    from vpndoctor.observations.scan import ScanRecord

app = typer.Typer()

DEFAULT_MAX_TARGETS = 65536
MAX_LINE_CHARS = 1024


# ---- targets ---------------------------------------------------------------------------------------


def _parse_item(
    text: str, where: str
) -> tuple[str, int, ipaddress.IPv4Network | ipaddress.IPv6Network | None]:
    """(kind, count, network): kind "cidr" | "address" | "name"."""
    with contextlib.suppress(OSError):
        socket.inet_pton(socket.AF_INET, text)  # the common case first: a dotted quad
        return "address", 1, None
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise UsageError(
                f"{where}: {text!r} is not a CIDR (e.g. 192.0.2.0/24 or 2001:db8::/120)"
            ) from None
        return "cidr", net.num_addresses, net
    try:
        ipaddress.ip_address(text.strip("[]"))
        return "address", 1, None
    except ValueError:
        pass
    _hostname(f"{where}: {text!r}", text)
    if text.startswith("-"):
        raise UsageError(f"{where}: {text!r} is not a host name, address or CIDR")
    return "name", 1, None


def _file_lines(path: str) -> Iterator[tuple[int, str]]:
    try:
        fh = open(path, encoding="utf-8", errors="strict")  # noqa: SIM115 - a generator closes it
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not os.path.isfile(path):
        fh.close()
        raise UsageError(f"{path}: not a regular file")
    with fh:
        try:
            for number, line in enumerate(fh, 1):
                if len(line) > MAX_LINE_CHARS:
                    raise UsageError(f"{path}:{number}: a line of more than {MAX_LINE_CHARS} characters")
                text = line.split("#", 1)[0].strip()
                if text:
                    yield number, text
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text") from None


class Targets:
    """The scan's targets, validated once up front and then streamed."""

    def __init__(self, items: list[str], files: list[str], max_targets: int) -> None:
        self.sources: list[tuple[str, str]] = []  # ("item", text) | ("file", path)
        for item in items:
            if item.startswith("@"):
                self.sources.append(("file", item[1:]))
            else:
                self.sources.append(("item", item))
        self.sources += [("file", f) for f in files]
        if not self.sources:
            raise UsageError("no targets: give names, addresses, CIDRs, @FILE or --file FILE")
        total = 0
        for kind, value in self.sources:
            if kind == "item":
                total += _parse_item(value, "target")[1]
            else:
                for number, text in _file_lines(value):
                    total += _parse_item(text, f"{value}:{number}")[1]
            if total > max_targets:
                raise UsageError(
                    f"more than {max_targets} targets (--max-targets): split the scan or raise the cap"
                )
        self.total = total

    def __iter__(self) -> Iterator[str]:
        for kind, value in self.sources:
            texts = [value] if kind == "item" else (t for _, t in _file_lines(value))
            for text in texts:
                kind_, _, net = _parse_item(text, "target")
                if net is None and kind_ == "address" and ":" not in text:
                    yield text  # a dotted quad inet_pton took is already canonical
                elif net is None:
                    yield str(ipaddress.ip_address(text.strip("[]"))) if kind_ == "address" else text
                elif net.version == 4:
                    # str(IPv4Address) per address is slow; the integers are what a CIDR is
                    first = int(net.network_address)
                    for n in range(first, first + net.num_addresses):
                        yield socket.inet_ntoa(n.to_bytes(4, "big"))
                else:
                    yield from (str(a) for a in net)


# ---- output ----------------------------------------------------------------------------------------


def _done_targets(path: str, as_csv: bool) -> set[str]:
    """Targets with a complete record in `path`; a torn last line (a killed run) is cut off first."""
    try:
        with open(path, "rb+") as fh:
            data = fh.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                fh.truncate(end)
                data = data[:end]
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise UsageError(f"--resume: cannot read {path}: {exc.strerror or exc}") from None
    done: set[str] = set()
    text = data.decode("utf-8", "replace")
    if as_csv:
        rows = csv.DictReader(io.StringIO(text))
        if text and (rows.fieldnames is None or "target" not in rows.fieldnames):
            raise UsageError(f"--resume: {path} is not a CSV written by vpndoctor scan")
        done = {row["target"] for row in rows if row.get("target")}
        return done
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            done.add(str(json.loads(line)["target"]))
        except (ValueError, KeyError, TypeError):
            raise UsageError(
                f"--resume: {path}:{number} is not a vpndoctor scan record (JSON Lines; CSV needs --csv)"
            ) from None
    return done


class Writer:
    def __init__(self, fh: TextIO, as_csv: bool, header: bool) -> None:
        from vpndoctor.observations.scan import CSV_FIELDS

        self._fh = fh
        self._csv = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore") if as_csv else None
        if self._csv is not None and header:
            self._csv.writeheader()
        self.count = 0

    def write(self, record: ScanRecord) -> None:
        if self._csv is not None:
            row = record.model_dump()
            for key, value in row.items():
                if isinstance(value, list):
                    row[key] = ";".join(str(v) for v in value)
                elif value is None:
                    row[key] = ""
            self._csv.writerow(row)
        else:
            self._fh.write(record.model_dump_json() + "\n")
        self._fh.flush()
        self.count += 1


class Progress:
    """One line on stderr, redrawn at most twice a second (only on a terminal, and not with --quiet)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.answered = 0
        self._t0 = time.monotonic()
        self._shown = 0.0

    def note(self, record: ScanRecord) -> None:
        self.done += 1
        self.answered += record.responded
        now = time.monotonic()
        if self.enabled and (now - self._shown >= 0.5 or self.done == self.total):
            self._shown = now
            rate = self.done / max(1e-6, now - self._t0)
            sys.stderr.write(
                f"\rscanned {self.done}/{self.total}, {self.answered} answered, {rate:,.0f} hosts/s  "
            )
            sys.stderr.flush()

    def end(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")
            sys.stderr.flush()


# ---- the command -----------------------------------------------------------------------------------


@app.command("scan")
def scan(
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="Names, addresses, CIDRs (IPv4/IPv6) and @FILE (one per line, # comments)."),
    ] = None,
    file: Annotated[
        list[str] | None, typer.Option("--file", metavar="FILE", help="Targets from FILE, one per line.")
    ] = None,
    probe: Annotated[
        str, typer.Option("--probe", help="ike: the stateless IKE_SA_INIT; diagnose: a full diagnose each.")
    ] = "ike",
    details: Annotated[
        bool,
        typer.Option(
            "--details",
            help="ike: also a full IKE_SA_INIT per accepted target (proposal, fragmentation, NAT, "
            "Vendor IDs), its half-open SA ended at once.",
        ),
    ] = False,
    port: Annotated[int, typer.Option("--port", help="The IKE port.")] = 500,
    proposal: Annotated[
        list[str] | None,
        typer.Option("--proposal", help="IKE proposal to offer (repeatable; default: what Windows offers)."),
    ] = None,
    rate: Annotated[
        float,
        typer.Option(
            "--rate",
            metavar="PPS",
            help="At most PPS datagrams a second, retransmissions included; 0: no cap.",
        ),
    ] = 500.0,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            help="At most this many targets in flight at once (default: ike 256, diagnose 4).",
        ),
    ] = None,
    timeout_s: Annotated[
        float,
        typer.Option(
            "--timeout-s",
            help="ike: wait this long for an answer, doubling after each retry; "
            "diagnose: the deadline per target.",
        ),
    ] = 0.5,
    retries: Annotated[int, typer.Option("--retries", help="ike: retransmissions per target.")] = 2,
    cookie_rounds: Annotated[
        int,
        typer.Option(
            "--cookie-rounds",
            help="ike: COOKIE demands answered per target (0: a COOKIE ends the probe, as ike-scan stops).",
        ),
    ] = 1,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the records to FILE (else stdout)."),
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON Lines.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip the targets already recorded in --output and append.")
    ] = False,
    max_targets: Annotated[
        int, typer.Option("--max-targets", help="Refuse to expand to more targets than this.")
    ] = DEFAULT_MAX_TARGETS,
    ca: Annotated[list[str] | None, typer.Option("--ca", help="diagnose: trust anchor (PEM/DER).")] = None,
    protocols: Annotated[
        str, typer.Option(help="diagnose: comma-separated ikev2, sstp, iphttps.")
    ] = "ikev2,sstp",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
) -> None:
    """Scan many IKEv2 gateways: one record per target (JSON Lines, schema/scan.json, or --csv).

    Exit 0 when every target was probed, 1 when none answered, 2 on a usage or local error, 130 when
    interrupted (the output stays valid: run again with --resume).
    """
    import asyncio

    if probe not in ("ike", "diagnose"):
        raise UsageError(f"--probe {probe}: expected ike or diagnose")
    if details and probe != "ike":
        raise UsageError("--details goes with --probe ike")
    if not 1 <= port <= 65535:
        raise UsageError("--port must be from 1 to 65535")
    if rate < 0 or rate > 1_000_000:
        raise UsageError("--rate must be from 0 (no cap) to 1000000 datagrams a second")
    if concurrency is None:
        concurrency = 256 if probe == "ike" else 4
    if not 1 <= concurrency <= 65536:
        raise UsageError("--concurrency must be from 1 to 65536")
    if not 0 < timeout_s <= 600:
        raise UsageError("--timeout-s must be more than 0 and at most 600")
    if not 0 <= retries <= 10:
        raise UsageError("--retries must be from 0 to 10")
    if not 0 <= cookie_rounds <= 2:
        raise UsageError("--cookie-rounds must be 0, 1 or 2")
    if not 1 <= max_targets <= 16_777_216:
        raise UsageError("--max-targets must be from 1 to 16777216")
    if resume and not output:
        raise UsageError("--resume needs --output FILE (the records to resume from)")
    protos = tuple(p.strip().lower() for p in protocols.split(",") if p.strip())
    if probe == "diagnose" and (not protos or any(p not in ("ikev2", "sstp", "iphttps") for p in protos)):
        raise UsageError("--protocols: expected a comma-separated list of ikev2, sstp, iphttps")
    from vpndoctor.ike.proposals import DEFAULT_PROPOSALS, ProposalSyntaxError, parse_proposal

    texts = tuple(proposal or DEFAULT_PROPOSALS)
    try:
        specs = tuple(parse_proposal(p) for p in texts)
    except ProposalSyntaxError as exc:
        raise UsageError(f"--proposal: {exc}") from None
    if ca:
        from vpndoctor.trust import load_trust_anchors

        load_trust_anchors(ca)  # a bad --ca is a usage error now, not one per target

    plan = Targets(targets or [], file or [], max_targets)
    done: set[str] = _done_targets(output, as_csv) if (resume and output) else set()

    fh: TextIO
    if output:
        if Path(output).is_dir():
            raise UsageError(f"--output {output}: is a directory")
        existing = os.path.exists(output) and os.path.getsize(output) > 0
        try:
            fh = open(output, "a" if resume else "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"--output {output}: {exc.strerror or exc}") from None
        header = not (resume and existing)
    else:
        fh, header = sys.stdout, True
    writer = Writer(fh, as_csv, header)
    remaining = plan.total - len(done) if done else plan.total
    progress = Progress(max(0, remaining), enabled=not quiet and sys.stderr.isatty())

    def emit(record: ScanRecord) -> None:
        writer.write(record)
        progress.note(record)

    def todo() -> Iterator[str]:
        seen_done = done
        for target in plan:
            if target not in seen_done:
                yield target

    async def main() -> None:
        from vpndoctor.probes.scan import IkeScanSettings, scan_diagnose, scan_ike

        if probe == "ike":
            settings = IkeScanSettings(
                proposals=specs,
                proposal_texts=texts,
                port=port,
                rate_pps=rate or None,
                concurrency=concurrency,
                tries=retries + 1,
                rto_s=timeout_s,
                details=details,
                cookie_rounds=cookie_rounds,
            )
            await scan_ike(todo(), settings, emit)
        else:
            from vpndoctor.observations.diagnose import DiagnoseRequest

            per_target_pps = max(1.0, rate / concurrency) if rate else 100.0
            template = DiagnoseRequest(
                name="",
                ca_files=ca or [],
                protocols=protos,
                timeout_s=timeout_s if timeout_s >= 2 else 10.0,
                rate_pps=min(100.0, per_target_pps),
            )
            await scan_diagnose(todo(), template, concurrency, _diagnose_emitter(emit, port))

    code = 0
    loop = asyncio.new_event_loop()
    task = loop.create_task(main())
    # SIGTERM like Ctrl-C: the records written so far stand, the file stays valid.
    with contextlib.suppress(ValueError, OSError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        loop.run_until_complete(task)
    except (KeyboardInterrupt, asyncio.CancelledError):
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        code = 130
    finally:
        loop.close()
        progress.end()
        if fh is not sys.stdout:
            fh.close()
    if code == 130:
        where = f" --output {output} --resume" if output else " with --output FILE --resume"
        err.print(
            f"vpndoctor: interrupted after {writer.count} records; run the same scan{where} to go on",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(130)
    if writer.count and progress.answered == 0:
        code = 1
    raise typer.Exit(code)


def _diagnose_emitter(
    emit: Callable[[ScanRecord], None], port: int
) -> Callable[[str, DiagnoseObservations | None, str | None], None]:
    from datetime import UTC, datetime

    from vpndoctor.checks.diagnose import judge
    from vpndoctor.observations.scan import ScanFinding, ScanRecord

    def done(target: str, obs: DiagnoseObservations | None, error: str | None) -> None:
        if obs is None:
            record = ScanRecord(
                target=target,
                address=None,
                port=port,
                probe="diagnose",
                result="unresolved",
                responded=False,
                error=error,
                started_at=datetime.now(UTC).isoformat(),
                duration_s=0.0,
            )
        else:
            report = judge(obs)
            ike = obs.ike_main
            result = "diagnosed" if obs.address else "unresolved"
            record = ScanRecord(
                target=target,
                address=obs.address,
                port=port,
                probe="diagnose",
                result=result,  # type: ignore[arg-type]
                responded=bool(ike is not None and ike.reached != "none"),
                error_notify=ike.error_notify if ike is not None else None,
                proposal=ike.proposal.text if ike is not None and ike.proposal is not None else None,
                fragmentation_supported=ike.fragmentation_supported
                if ike is not None and ike.reached != "none"
                else None,
                nat_detected=ike.nat_detected if ike is not None and ike.reached != "none" else None,
                vendor_ids=list(ike.vendor_ids) if ike is not None else [],
                left_half_open=bool(ike is not None and ike.left_half_open),
                datagrams_sent=int(obs.politeness.get("datagrams_sent", 0)),  # IKE datagrams (net/polite.py)
                verdict=report.verdict.status,
                failing=list(report.verdict.root_causes)
                + [
                    f.id
                    for f in report.findings
                    if f.status == "fail" and f.id not in report.verdict.root_causes
                ],
                findings=[ScanFinding(id=f.id, status=f.status) for f in report.findings],
                error=None if result == "diagnosed" else "the name did not resolve",
                started_at=report.started_at,
                duration_s=round(report.duration_s, 3),
            )
        emit(record)

    return done
