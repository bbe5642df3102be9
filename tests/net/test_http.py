"""net.http against a loopback HTTP server: byte and time caps, same-host redirects only, the fetch budget,
failures returned (never raised); and probes.revocation walking a chain over the same server (AIA
caIssuers, CRL, OCSP), judged by checks.revocation."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from vpndoctor.checks.revocation import judge_revocation
from vpndoctor.net.http import FetchBudget, http_get, http_post
from vpndoctor.probes.revocation import check_revocation

Handler = Callable[[BaseHTTPRequestHandler], None]


class _Server:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: list[str] = []
        routes, hits = self.routes, self.hits

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                hits.append(f"{self.command} {self.path}")
                route = routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route(self)

            do_GET = _serve
            do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def body(self, path: str, data: bytes, ctype: str = "application/octet-stream") -> None:
        def send(h: BaseHTTPRequestHandler) -> None:
            if h.command == "POST":
                length = int(h.headers.get("Content-Length", "0"))
                h.rfile.read(length)
            h.send_response(200)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        self.routes[path] = send


@pytest.fixture()
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_get_reads_a_body_whole(server: _Server) -> None:
    server.body("/a.crl", b"x" * 5000)
    r = asyncio.run(http_get(server.url("/a.crl")))
    assert r.ok and r.body == b"x" * 5000 and r.size_bytes == 5000 and r.error is None


def test_size_cap_announced_and_streamed(server: _Server) -> None:
    server.body("/big", b"y" * 3000)
    r = asyncio.run(http_get(server.url("/big"), max_bytes=1000))
    assert (r.error_kind, r.size_bytes, r.body) == ("too-large", 3000, None)

    def chunked(h: BaseHTTPRequestHandler) -> None:  # no Content-Length: the cap stops the read
        h.protocol_version = "HTTP/1.1"
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for _ in range(20):
            h.wfile.write(b"100\r\n" + b"z" * 256 + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    server.routes["/chunked"] = chunked
    r = asyncio.run(http_get(server.url("/chunked"), max_bytes=1000))
    assert r.error_kind == "too-large" and r.size_bytes == 1001
    r = asyncio.run(http_get(server.url("/chunked"), max_bytes=100_000))
    assert r.ok and len(r.body or b"") == 20 * 256


def test_redirects_only_to_the_same_host(server: _Server) -> None:
    server.body("/final", b"ok")

    def to(location: str) -> Handler:
        def send(h: BaseHTTPRequestHandler) -> None:
            h.send_response(302)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()

        return send

    server.routes["/same"] = to("/final")
    server.routes["/other"] = to("http://192.0.2.1/final")
    server.routes["/loop"] = to("/loop")
    r = asyncio.run(http_get(server.url("/same")))
    assert r.ok and r.body == b"ok" and r.redirects == 1 and r.final_url.endswith("/final")
    r = asyncio.run(http_get(server.url("/other")))
    assert r.error_kind == "redirect" and "192.0.2.1" in (r.error or "")
    assert "GET /final" not in server.hits[-1:]
    r = asyncio.run(http_get(server.url("/loop")))
    assert r.error_kind == "redirect" and "too many" in (r.error or "")


def test_failures_are_returned(server: _Server) -> None:
    r = asyncio.run(http_get(server.url("/missing")))
    assert r.status == 404 and r.error is None and not r.ok
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = asyncio.run(http_get(f"http://127.0.0.1:{port}/x.crl"))
    assert r.error_kind == "refused"
    for url in ("ldap://dc.example.test/cn=x", "https://example.test/x.crl", "http:///nohost"):
        assert asyncio.run(http_get(url)).error_kind == "scheme", url
    r = asyncio.run(http_get("http://no-such-name.invalid/x.crl", timeout_s=3))
    assert r.error_kind == "dns"


def test_time_cap(server: _Server) -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        for _ in range(10):
            h.wfile.write(b"s")
            h.wfile.flush()
            time.sleep(0.3)

    server.routes["/slow"] = slow
    t0 = time.monotonic()
    r = asyncio.run(http_get(server.url("/slow"), timeout_s=0.8))
    assert r.error_kind == "timeout" and time.monotonic() - t0 < 2.0


def test_budget_and_post(server: _Server) -> None:
    server.body("/ocsp", b"answer", "application/ocsp-response")
    budget = FetchBudget(1)
    r = asyncio.run(http_post(server.url("/ocsp"), b"req", "application/ocsp-request", budget=budget))
    assert r.ok and r.body == b"answer" and server.hits == ["POST /ocsp"]
    r = asyncio.run(http_get(server.url("/ocsp"), budget=budget))
    assert r.error_kind == "budget" and server.hits == ["POST /ocsp"]


# ---- probes.revocation over loopback ------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def test_revocation_walk_with_aia_crl_and_ocsp(server: _Server) -> None:
    now = datetime.now(UTC)
    root_key, int_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))

    def cert(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )

    def cdp(path: str) -> x509.CRLDistributionPoints:
        return x509.CRLDistributionPoints(
            [x509.DistributionPoint([x509.UniformResourceIdentifier(server.url(path))], None, None, None)]
        )

    root = cert("Root", root_key, "Root", root_key, ca=True).sign(root_key, hashes.SHA256())
    inter = (
        cert("Issuing", int_key, "Root", root_key, ca=True)
        .add_extension(cdp("/root.crl"), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(server.url("/issuing.crt")),
            ),
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(server.url("/ocsp"))
            ),
        ]
    )
    ldap = x509.DistributionPoint(
        [x509.UniformResourceIdentifier("ldap:///CN=Issuing,CN=CDP?certificateRevocationList")],
        None,
        None,
        None,
    )
    leaf = (
        cert("vpn.example.test", leaf_key, "Issuing", int_key, ca=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    ldap,
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(server.url("/issuing.crl"))], None, None, None
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(aia, critical=False)
        .sign(int_key, hashes.SHA256())
    )

    def crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bytes:
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.subject)
            .last_update(now - timedelta(hours=1))
            .next_update(now + timedelta(days=1))
        )
        return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    der = serialization.Encoding.DER
    server.body("/issuing.crt", inter.public_bytes(der), "application/pkix-cert")
    server.body("/issuing.crl", crl(inter, int_key), "application/pkix-crl")
    server.body("/root.crl", crl(root, root_key), "application/pkix-crl")
    answer = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf,
            issuer=inter,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=5),
            next_update=now + timedelta(hours=4),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, inter)
        .sign(int_key, hashes.SHA256())
    )
    server.body("/ocsp", answer.public_bytes(der), "application/ocsp-response")

    # The server "forgets" its intermediate: the walk fetches it through AIA caIssuers.
    obs = asyncio.run(check_revocation([leaf.public_bytes(der)], [root]))
    assert obs is not None and obs.intermediate_from_aia and obs.chain_sent == 1
    leaf_rev, inter_rev = obs.certificates
    assert leaf_rev.issuer_source == "aia" and inter_rev.issuer_source == "anchors"
    kinds = {(f.purpose, f.outcome) for f in leaf_rev.fetches}
    assert kinds == {
        ("ca-issuers", "fetched"),
        ("ocsp", "fetched"),
        ("crl", "fetched"),
        ("crl", "not-fetched"),
    }
    ldap_fetch = next(f for f in leaf_rev.fetches if f.url.startswith("ldap:"))
    assert ldap_fetch.error_kind == "ldap" and "unreachable from outside" in (ldap_fetch.error or "")
    assert [f.purpose for f in inter_rev.fetches] == ["crl"]
    assert "POST /ocsp" in server.hits and obs.fetches_used == 4
    judged = judge_revocation(obs, now)
    assert judged.status == "good" and judged.intermediate_from_aia
    assert [c.status for c in judged.certificates] == ["good", "good"]
    # With the intermediate sent, nothing goes to AIA; a budget of 2 leaves the rest unfetched.
    server.hits.clear()
    obs = asyncio.run(
        check_revocation([leaf.public_bytes(der), inter.public_bytes(der)], [root], max_fetches=2)
    )
    assert obs is not None and not obs.intermediate_from_aia and obs.fetches_used == 2
    assert not any("issuing.crt" in h for h in server.hits)
    budget_skips = [f for c in obs.certificates for f in c.fetches if f.error_kind == "budget"]
    assert len(budget_skips) == 1  # the root's CRL for the intermediate
    assert judge_revocation(obs, now).status == "not-checked"


def test_a_dripped_status_line_is_cut_at_the_deadline(server: _Server) -> None:
    def drip(h: BaseHTTPRequestHandler) -> None:
        for c in b"HTTP/1.0 200 OK-this-line-never-ends" * 10:
            h.wfile.write(bytes([c]))
            h.wfile.flush()
            time.sleep(0.05)

    server.routes["/drip"] = drip
    t0 = time.monotonic()
    r = asyncio.run(http_get(server.url("/drip"), timeout_s=0.7))
    assert r.error_kind == "timeout" and time.monotonic() - t0 < 1.5
