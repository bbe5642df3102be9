"""The exporter's request handling: the endpoints, the caps, the allow-list, and running one probe.

One `Exporter` lives as long as the process. Per `/probe` scrape: the module and target are read strictly
(400 and a counter otherwise), the deadline is Prometheus' scrape timeout minus the offset (capped), the
target is resolved once and checked against the allow-list, and the probe is given exactly those
addresses. Probes wait for a place under the global cap and the per-address cap (and IKE exchanges for
the shared politeness budget of net/polite.py); a scrape that finds the same probe already running waits
for its result instead of starting another. Whatever happens, the answer leaves before the deadline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import dataclasses
import hashlib
import html
import itertools
import math
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector

from vpndoctor.errors import UsageError, VpndoctorError
from vpndoctor.exporter.allow import Target, TargetRefused, check_allowed, parse_target, pick
from vpndoctor.exporter.config import (
    DiagnoseModule,
    ExporterConfig,
    IkeModule,
    IphttpsModule,
    SstpModule,
    TlsModule,
    WebConfig,
    load_config,
)
from vpndoctor.exporter.metrics import (
    Outcome,
    exposition,
    outcome_diagnose,
    outcome_ike,
    outcome_iphttps,
    outcome_sstp,
    outcome_tls,
)
from vpndoctor.exporter.page import render_index, render_report
from vpndoctor.net.http_server import HttpRequest, HttpResponse
from vpndoctor.net.polite import Politeness
from vpndoctor.net.resolve import resolve_addresses

PROM_TEXT = "text/plain; version=0.0.4; charset=utf-8"
HTML = "text/html; charset=utf-8"
SCRAPE_HEADER = "x-prometheus-scrape-timeout-seconds"
DEFAULT_SCRAPE_TIMEOUT_S = 10.0  # Prometheus' own default scrape_timeout, when a scraper sends no header
ANSWER_MARGIN_S = 0.05  # kept back from the deadline to write the answer


def _text(status: int, body: str) -> HttpResponse:
    return HttpResponse(status, (body.rstrip("\n") + "\n").encode())


@dataclass
class _Record:
    id: int
    outcome: Outcome
    at: float  # time.monotonic() when it ended


class Exporter:
    def __init__(
        self,
        config_path: str,
        config: ExporterConfig,
        web: WebConfig | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.web = web or WebConfig()
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.m_probes = Counter(
            "vpndoctor_exporter_probes_total",
            "Probes run, by module and result",
            ["module", "result"],
            registry=r,
        )
        self.m_bad = Counter(
            "vpndoctor_exporter_bad_requests_total", "Requests refused, by reason", ["reason"], registry=r
        )
        self.m_in_flight = Gauge("vpndoctor_exporter_probes_in_flight", "Probes running now", registry=r)
        self.m_in_flight_max = Gauge(
            "vpndoctor_exporter_probes_in_flight_max", "The most probes that ever ran at once", registry=r
        )
        self.m_per_target_max = Gauge(
            "vpndoctor_exporter_probes_per_target_max",
            "The most probes that ever ran at once against one address",
            registry=r,
        )
        self.m_coalesced = Counter(
            "vpndoctor_exporter_coalesced_total",
            "Scrapes answered with the result of a probe already running or recent (min_interval_s)",
            registry=r,
        )
        self.m_late = Counter(
            "vpndoctor_exporter_late_answers_total",
            "Probe answers written after their scrape's deadline",
            registry=r,
        )
        self.m_duration = Histogram(
            "vpndoctor_exporter_probe_duration_seconds",
            "Probe durations",
            ["module"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.m_reloads = Counter(
            "vpndoctor_exporter_config_reloads_total", "Configuration reloads", ["result"], registry=r
        )
        self.m_reload_ok = Gauge(
            "vpndoctor_exporter_config_last_reload_successful", "1 when the last reload worked", registry=r
        )
        self.m_reload_ts = Gauge(
            "vpndoctor_exporter_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded",
            registry=r,
        )
        self.m_reload_ok.set(1)
        self.m_reload_ts.set(time.time())
        self._auth_ok: set[bytes] = set()
        self._anchor_cache: dict[tuple[str, ...], list[Any]] = {}
        self._apply_limits()
        self._in_flight = 0
        self._per_address: dict[str, int] = {}
        self._running: dict[tuple[str, str, str], asyncio.Task[_Record]] = {}
        self._history: collections.deque[_Record] = collections.deque(maxlen=config.limits.history)
        self._ids = itertools.count(1)

    # -- configuration -----------------------------------------------------------------------------

    def _apply_limits(self) -> None:
        lim = self.config.limits
        self._global = asyncio.Semaphore(lim.max_concurrent_probes)
        self._address_slots: dict[str, tuple[asyncio.Semaphore, int]] = {}
        self.politeness = Politeness(max_half_open=lim.max_half_open, rate_pps=lim.max_pps)

    def reload(self) -> str | None:
        """Read the configuration file again; on error keep the old one. Returns the error, if any."""
        try:
            config = load_config(self.config_path)
            check_files(config)
        except VpndoctorError as exc:
            self.m_reloads.labels("failure").inc()
            self.m_reload_ok.set(0)
            self._log(f"vpndoctor exporter: reload failed, keeping the old configuration: {exc}")
            return str(exc)
        limits_changed = config.limits != self.config.limits
        self.config = config
        self._anchor_cache.clear()
        if limits_changed:
            self._apply_limits()
            self._history = collections.deque(self._history, maxlen=config.limits.history)
        self.m_reloads.labels("success").inc()
        self.m_reload_ok.set(1)
        self.m_reload_ts.set(time.time())
        self._log(f"vpndoctor exporter: configuration reloaded ({len(config.modules)} modules)")
        return None

    def _anchors(self, ca: list[str]) -> list[Any]:
        """The trust anchors of a module (its `ca` files, else the system store), parsed once per
        configuration: the system bundle is a few hundred certificates."""
        from vpndoctor.trust import trust_anchors

        key = tuple(ca)
        if key not in self._anchor_cache:
            self._anchor_cache[key] = trust_anchors(list(ca))[0]
        return self._anchor_cache[key]

    def install_sighup(self) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload)

    # -- HTTP ----------------------------------------------------------------------------------------

    async def handle(self, req: HttpRequest) -> HttpResponse:
        if self.web.basic_auth_users and not await self._authorised(req):
            self.m_bad.labels("unauthorised").inc()
            return HttpResponse(
                401, b"Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="vpndoctor"'}
            )
        route = (req.method, req.path)
        if req.path == "/probe" and req.method in ("GET", "HEAD"):
            return await self.probe(req)
        if route == ("GET", "/metrics"):
            return HttpResponse(200, generate_latest(self.registry), PROM_TEXT)
        if req.path == "/-/healthy" and req.method in ("GET", "HEAD"):
            return _text(200, "Healthy")
        if req.path == "/-/reload":
            if req.method not in ("POST", "PUT"):
                return HttpResponse(405, b"Use POST\n", headers={"Allow": "POST, PUT"})
            error = self.reload()
            return _text(200, "Reloaded") if error is None else _text(500, f"reload failed: {error}")
        if route == ("GET", "/"):
            rows = list(reversed(self._history))
            return HttpResponse(
                200, render_index(rows, sorted(self.config.modules)).encode(), HTML, _page_headers()
            )
        if route == ("GET", "/report"):
            return self._report(req)
        return _text(404, "Not found")

    async def _authorised(self, req: HttpRequest) -> bool:
        header = req.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.web.basic_auth_users.get(user)
        if hashed is None:
            return False
        # bcrypt is slow on purpose: remember what already checked out (a digest, not the password).
        key = hashlib.sha256(b"\0".join([user.encode(), password.encode(), hashed.encode()])).digest()
        if key in self._auth_ok:
            return True
        import bcrypt

        ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed.encode())
        if ok:
            self._auth_ok.add(key)
        return ok

    def _report(self, req: HttpRequest) -> HttpResponse:
        want = (req.query.get("id") or [""])[0]
        record = next((r for r in self._history if str(r.id) == want), None)
        if record is None:
            return _text(404, "No such probe (only the most recent ones are kept)")
        return HttpResponse(200, render_report(record.id, record.outcome).encode(), HTML, _page_headers())

    # -- /probe ----------------------------------------------------------------------------------------

    def _bad(self, reason: str, text: str, status: int = 400) -> HttpResponse:
        self.m_bad.labels(reason).inc()
        return _text(status, text)

    def deadline_s(self, req: HttpRequest, module_timeout_s: float) -> float | None:
        """The probe's time: the scrape timeout minus the offset, within the module's and the global cap."""
        lim = self.config.limits
        raw = req.headers.get(SCRAPE_HEADER)
        scrape = DEFAULT_SCRAPE_TIMEOUT_S
        if raw is not None:
            try:
                scrape = float(raw)
            except ValueError:
                return None
            if not math.isfinite(scrape) or scrape <= 0:
                return None
        return max(0.1, min(scrape - lim.timeout_offset_s, module_timeout_s, lim.max_timeout_s))

    async def probe(self, req: HttpRequest) -> HttpResponse:
        t0 = time.monotonic()
        modules = req.query.get("module", [])
        targets = req.query.get("target", [])
        if len(modules) != 1 or not modules[0]:
            return self._bad("missing-module", "give exactly one module= parameter")
        module = self.config.modules.get(modules[0])
        if module is None:
            return self._bad("unknown-module", f"unknown module {modules[0][:64]!r}")
        if len(targets) != 1 or not targets[0]:
            return self._bad("missing-target", "give exactly one target= parameter")
        try:
            target = parse_target(targets[0])
        except TargetRefused as exc:
            return self._bad("bad-target", f"target refused: {exc}")
        budget = self.deadline_s(req, module.timeout_s)
        if budget is None:
            return self._bad("bad-timeout-header", f"{SCRAPE_HEADER}: not a positive number of seconds")
        deadline = t0 + budget
        allow = self.config.allow
        if allow is not None and allow.names and target.literal is None:
            try:  # a name not in the list is refused before anything is asked of DNS
                check_allowed(target, ["0.0.0.0"], allow.model_copy(update={"cidrs": []}))
            except TargetRefused as exc:
                return self._bad("allow-list", f"target refused: {exc}", 403)
        started = datetime.now(UTC).isoformat()
        base = Outcome(
            module=modules[0], prober=module.prober, target=target.text, address=None, started_at=started
        )
        try:
            addresses = await self._resolve(target, deadline)
        except VpndoctorError as exc:
            base.error = base.summary = str(exc)
            base.duration_s = time.monotonic() - t0
            return self._answer(self._record(base), deadline)
        try:
            allowed = check_allowed(target, addresses, allow)
        except TargetRefused as exc:
            return self._bad("allow-list", f"target refused: {exc}", 403)
        address = pick(allowed)
        base.address = address
        key = (modules[0], target.text, address)
        recent = self._recent(key)
        if recent is not None:
            self.m_coalesced.inc()
            return self._answer(recent, deadline)
        # The probe runs as its own task, not as part of this request: a scrape that finds the same probe
        # running waits for its result, and a scraper that hangs up cancels nothing.
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._probe_within(module, target, address, base, t0, deadline))
            self._running[key] = task
            task.add_done_callback(self._finished(key))
        else:
            self.m_coalesced.inc()
        try:
            record = await asyncio.wait_for(asyncio.shield(task), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            why = "the probe was still running at the deadline"
            late = dataclasses.replace(
                base, throttled=True, error=why, summary=why, duration_s=time.monotonic() - t0, findings=[]
            )
            return self._answer(_Record(0, late, time.monotonic()), deadline)
        return self._answer(record, deadline)

    def _finished(self, key: tuple[str, str, str]) -> Callable[[asyncio.Task[_Record]], None]:
        def done(task: asyncio.Task[_Record]) -> None:
            if self._running.get(key) is task:
                del self._running[key]

        return done

    def _recent(self, key: tuple[str, str, str]) -> _Record | None:
        interval = self.config.limits.min_interval_s
        if interval <= 0:
            return None
        now = time.monotonic()
        for r in reversed(self._history):
            if now - r.at > interval:
                return None
            o = r.outcome
            if (o.module, o.target, o.address) == key and not o.throttled:
                return r
        return None

    async def _resolve(self, target: Target, deadline: float) -> tuple[str, ...]:
        if target.literal is not None:
            return (str(target.literal),)
        dns = self.config.dns
        left = max(0.1, min(5.0, deadline - time.monotonic() - ANSWER_MARGIN_S))
        return await resolve_addresses(
            target.text, timeout_s=left, server=dns.server if dns else None, port=dns.port if dns else 53
        )

    def _answer(self, record: _Record, deadline: float) -> HttpResponse:
        if time.monotonic() > deadline + ANSWER_MARGIN_S:
            self.m_late.inc()
        return HttpResponse(200, exposition(record.outcome), PROM_TEXT)

    def _record(self, outcome: Outcome) -> _Record:
        result = (
            "throttled"
            if outcome.throttled
            else "error"
            if outcome.error
            else ("success" if outcome.success else "failure")
        )
        self.m_probes.labels(outcome.module, result).inc()
        self.m_duration.labels(outcome.module).observe(outcome.duration_s)
        record = _Record(next(self._ids), outcome, time.monotonic())
        self._history.append(record)
        self._log(
            f"vpndoctor exporter: probe {outcome.module} {outcome.target} ({outcome.address}): "
            f"{result}, {outcome.duration_s:.2f} s: {outcome.summary}"
        )
        return record

    async def _probe_within(
        self, module: Any, target: Target, address: str, base: Outcome, t0: float, deadline: float
    ) -> _Record:
        """A place under both caps, then the probe, all before the deadline (less a margin to answer)."""
        end = deadline - ANSWER_MARGIN_S
        # One semaphore per address, kept while anyone holds or waits for it (users), then dropped.
        slots, users = self._address_slots.get(address, (None, 0))
        if slots is None:
            slots = asyncio.Semaphore(self.config.limits.max_probes_per_target)
        self._address_slots[address] = (slots, users + 1)
        sem = self._global
        acquired: list[asyncio.Semaphore] = []
        try:
            for s in (slots, sem):  # the address first: a probe waiting for its target holds no global place
                try:
                    await asyncio.wait_for(s.acquire(), max(0.0, end - time.monotonic()))
                except TimeoutError:
                    base.throttled = True
                    base.error = base.summary = "no place under the exporter's caps before the deadline"
                    base.duration_s = time.monotonic() - t0
                    return self._record(base)
                acquired.append(s)
            self._in_flight += 1
            self._per_address[address] = self._per_address.get(address, 0) + 1
            self.m_in_flight.set(self._in_flight)
            self.m_in_flight_max.set(max(self._in_flight, self.m_in_flight_max._value.get()))
            self.m_per_target_max.set(max(self._per_address[address], self.m_per_target_max._value.get()))
            try:
                left = end - time.monotonic()
                outcome = await asyncio.wait_for(
                    self._run(module, target, address, base, end), max(0.05, left)
                )
            except TimeoutError:
                base.error = base.summary = "the probe did not end within the scrape's deadline"
                outcome = base
            except VpndoctorError as exc:
                base.error = base.summary = str(exc)
                outcome = base
            except Exception as exc:  # noqa: BLE001 - one probe's bug must not become a 500 for the scrape
                base.error = base.summary = f"internal error: {type(exc).__name__}: {exc}"
                outcome = base
            finally:
                self._in_flight -= 1
                self._per_address[address] -= 1
                if not self._per_address[address]:
                    del self._per_address[address]
                self.m_in_flight.set(self._in_flight)
        finally:
            for s in acquired:
                s.release()
            held, users = self._address_slots.get(address, (None, 0))
            if held is slots:
                if users <= 1:
                    del self._address_slots[address]
                else:
                    self._address_slots[address] = (slots, users - 1)
        outcome.duration_s = time.monotonic() - t0
        return self._record(outcome)

    async def _run(self, module: Any, target: Target, address: str, base: Outcome, end: float) -> Outcome:
        # The probe's own deadline comes a little before ours, so that it ends, judges and answers by
        # itself; the wait_for around it is the backstop.
        left = end - time.monotonic()
        end = end - min(0.3, 0.15 * max(0.0, left))
        left = max(0.1, end - time.monotonic())
        runners: dict[type, Callable[..., Awaitable[Outcome]]] = {
            IkeModule: self._ike,
            SstpModule: self._sstp,
            IphttpsModule: self._iphttps,
            TlsModule: self._tls,
            DiagnoseModule: self._diagnose,
        }
        return await runners[type(module)](module, target, address, base, end, left)

    async def _ike(
        self, m: IkeModule, target: Target, address: str, base: Outcome, end: float, left: float
    ) -> Outcome:
        from vpndoctor.probes.ike import exit_code, run_ike_probe

        obs = await run_ike_probe(
            target.text,
            address=address,
            port=m.port,
            natt_port=m.natt_port,
            proposals=m.proposals or None,
            force_nat=m.force_nat,
            fragmentation=m.fragmentation,
            identity=m.identity,
            ca_files=m.ca,
            timeout_s=left,
            deadline_at=end,
            stateless=m.stateless,
            politeness=self.politeness,
            revocation=m.revocation,
        )
        return outcome_ike(base, obs, exit_code(obs) == 0)

    async def _sstp(
        self, m: SstpModule, target: Target, address: str, base: Outcome, end: float, left: float
    ) -> Outcome:
        from vpndoctor.checks.sstp import sstp_report
        from vpndoctor.probes.sstp import run_sstp_probe
        anchors = self._anchors(m.ca)
        obs = await run_sstp_probe(
            target.text,
            port=m.port,
            address=address,
            sni=m.sni,
            anchors=anchors,
            timeout_s=left,
            deadline_at=end,
            revocation=m.revocation,
        )
        return outcome_sstp(base, sstp_report(obs))

    async def _iphttps(
        self, m: IphttpsModule, target: Target, address: str, base: Outcome, end: float, left: float
    ) -> Outcome:
        from vpndoctor.checks.sstp import iphttps_report
        from vpndoctor.probes.iphttps import run_iphttps_probe
        anchors = self._anchors(m.ca)
        host = f"[{target.text}]" if ":" in target.text else target.text
        obs = await run_iphttps_probe(
            f"https://{host}:{m.port}{m.path}",
            address=address,
            sni=m.sni,
            anchors=anchors,
            client_cert=m.client_cert,
            client_key=m.client_key,
            timeout_s=left,
            deadline_at=end,
            revocation=m.revocation,
        )
        return outcome_iphttps(base, iphttps_report(obs))

    async def _tls(
        self, m: TlsModule, target: Target, address: str, base: Outcome, end: float, left: float
    ) -> Outcome:
        from vpndoctor.checks.tls import judge
        from vpndoctor.probes.tls_audit import AuditRequest, run_audit

        host = f"[{target.text}]" if ":" in target.text else target.text
        req = AuditRequest(
            target=f"{host}:{m.port}",
            sni=m.sni,
            ca_files=m.ca,
            timeout_s=left,
            concurrency=m.concurrency,
            client_cert=m.client_cert,
            client_key=m.client_key,
            address=address,
        )
        return outcome_tls(base, judge(await run_audit(req)))

    async def _diagnose(
        self, m: DiagnoseModule, target: Target, address: str, base: Outcome, end: float, left: float
    ) -> Outcome:
        from vpndoctor.checks.diagnose import judge
        from vpndoctor.observations.diagnose import DiagnoseRequest
        from vpndoctor.probes.diagnose import run_diagnose

        req = DiagnoseRequest(
            name=target.text,
            address=address,
            resolvers=m.resolvers,
            expect_ips=m.expect_ips,
            ca_files=m.ca,
            protocols=tuple(m.protocols),
            timeout_s=left,
            max_half_open=self.politeness.max_half_open,
            rate_pps=self.politeness.rate_pps,
        )
        obs = await run_diagnose(req, politeness=self.politeness)
        return outcome_diagnose(base, obs, judge(obs))


def check_files(config: ExporterConfig) -> None:
    """Every file a module names can be read now (a UsageError names the first that cannot)."""
    from vpndoctor.trust import load_trust_anchors

    for name, m in config.modules.items():
        try:
            load_trust_anchors(list(m.ca))
            for f in (getattr(m, "client_cert", None), getattr(m, "client_key", None)):
                if f is not None:
                    with open(f, "rb"):
                        pass
        except UsageError as exc:
            raise UsageError(f"module {name}: {exc}") from None
        except OSError as exc:
            raise UsageError(f"module {name}: cannot read {exc.filename}: {exc.strerror}") from None


def _page_headers() -> dict[str, str]:
    # The pages show what hostile servers sent: no script, nothing fetched, not framed.
    return {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
    }


__all__ = ["Exporter", "check_files", "html"]
