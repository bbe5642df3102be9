"""`vpndoctor iphttps` against real nginx on loopback, built the way the NetScaler guide builds an IP-HTTPS
ADC: a TLS front end (ECDHE-RSA-AES128-SHA + NULL-SHA, @SECLEVEL=0, TLS 1.2, client certificate against the
"DirectAccess CA") re-encrypting with NULL-SHA only to a backend that answers like the DirectAccess server.

The front end is an nginx *stream* server: nginx's http module refuses Windows' `Content-Length:
18446744073709551615` with 400 before any location runs (shown in test_http_mode_nginx_breaks_iphttps), so an
nginx in front of IP-HTTPS must proxy TCP. The backend is HAProxy answering 200 like HTTP.sys, as in the lab.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.helpers import need
from tests.sstp.nginx_server import Nginx, Pki, free_port, make_pki
from vpndoctor.checks import ids
from vpndoctor.checks.sstp import iphttps_report
from vpndoctor.probes.iphttps import probe

BACKEND_SERVER = "Microsoft-HTTPAPI/2.0"
BACKEND_CIPHERS = "NULL-SHA:NULL-SHA256:@SECLEVEL=0"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    need("nginx")
    return make_pki(tmp_path_factory.mktemp("da-pki"), "da.test")


class HaproxyBackend:
    """The stand-in DirectAccess server, as in the lab (vpndoctor.lab.adc): HAProxy `mode http`, NULL suites
    only, answering the request once it has read it. (An nginx stream `return` answered at connect time and
    closed; the front end then closed the client's connection with the request still unread - a reset the
    client sometimes saw while sending. HTTP.sys reads the request first, and so does this.)"""

    def __init__(self, directory: Path, pki: Pki) -> None:
        exe = need("haproxy")
        self.port = free_port()
        bundle = directory / "server.pem"
        bundle.write_bytes(pki.server_cert.read_bytes() + pki.server_key.read_bytes())
        cfg = directory / "haproxy.cfg"
        cfg.write_text(
            "global\n  h1-case-adjust server Server\n"
            "defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
            "  timeout http-request 10s\n"
            f"frontend iphttps\n  bind 127.0.0.1:{self.port} ssl crt {bundle} ciphers {BACKEND_CIPHERS} "
            "ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2\n"
            "  option h1-case-adjust-bogus-client\n"
            f'  http-request return status 200 hdr Server "{BACKEND_SERVER}"\n'
        )
        self.proc = subprocess.Popen(
            [exe, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"haproxy exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("haproxy did not start listening") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def backend(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaproxyBackend]:
    """The stand-in DirectAccess server: TLS with NULL suites only."""
    n = HaproxyBackend(tmp_path_factory.mktemp("backend"), pki)
    yield n
    n.stop()


def adc(directory: Path, pki: Pki, backend: HaproxyBackend, *, verify: str, ciphers: str) -> Nginx:
    client_auth = f"ssl_client_certificate {pki.ca}; ssl_verify_client {verify};" if verify != "off" else ""
    conf = f"""stream {{ server {{
        listen 127.0.0.1:@PORT@ ssl;
        ssl_certificate {pki.server_cert}; ssl_certificate_key {pki.server_key};
        ssl_protocols TLSv1.2; ssl_ciphers "{ciphers}";
        {client_auth}
        proxy_pass 127.0.0.1:{backend.port};
        proxy_ssl on; proxy_ssl_protocols TLSv1.2; proxy_ssl_ciphers "NULL-SHA:@SECLEVEL=0";
        proxy_timeout 5s;
    }} }}"""
    return Nginx(directory, conf, stream=True)


FRONT_CIPHERS = "ECDHE-RSA-AES128-SHA:NULL-SHA:@SECLEVEL=0"


@pytest.fixture
def front(
    request: pytest.FixtureRequest, pki: Pki, backend: HaproxyBackend, tmp_path: Path
) -> Iterator[Nginx]:
    verify, ciphers = request.param
    n = adc(tmp_path, pki, backend, verify=verify, ciphers=ciphers)
    yield n
    n.stop()


def run(front: Nginx, pki: Pki, *, cert: str | None = None, key: str | None = None) -> dict[str, object]:
    obs = probe(
        f"https://da.test:{front.port}/IPHTTPS",
        address="127.0.0.1",
        client_cert=cert,
        client_key=key,
        timeout_s=5.0,
    )
    return iphttps_report(obs).model_dump()


def statuses(report: dict[str, object]) -> dict[str, str]:
    return {f["id"]: f["status"] for f in report["findings"]}  # type: ignore[attr-defined, index]


@pytest.mark.parametrize("front", [("on", FRONT_CIPHERS)], indirect=True)
def test_preauth_enforced_null_reencrypted(front: Nginx, pki: Pki) -> None:
    bare = run(front, pki)
    assert bare["client_auth"] == "required"
    assert bare["null_encryption"] is True and bare["negotiated_cipher"] == "NULL-SHA"
    s = statuses(bare)
    assert s[ids.IPHTTPS_CLIENT_AUTH] == "pass" and s[ids.IPHTTPS_HTTP] == "skip"
    assert bare["attempts"][0]["client_certificate_requested"] is True  # type: ignore[index]
    good = run(front, pki, cert=str(pki.client_cert), key=str(pki.client_key))
    assert good["http_status"] == 200 and good["server_header"] == "Microsoft-HTTPAPI/2.0"
    assert good["client_auth"] == "required" and good["null_encryption"] is True
    assert set(statuses(good).values()) == {"pass"}
    wrong = run(front, pki, cert=str(pki.stranger_cert), key=str(pki.stranger_key))
    assert wrong["client_auth"] == "required" and wrong["http_status"] is None
    assert statuses(wrong)[ids.IPHTTPS_CLIENT_AUTH] == "fail"
    assert "client certificate verify" in front.error_log() or "certificate" in front.error_log()


@pytest.mark.parametrize("front", [("optional", FRONT_CIPHERS)], indirect=True)
def test_preauth_optional(front: Nginx, pki: Pki) -> None:
    report = run(front, pki)
    assert report["client_auth"] == "optional" and report["http_status"] == 200
    assert statuses(report)[ids.IPHTTPS_CLIENT_AUTH] == "warn"


@pytest.mark.parametrize("front", [("off", "ECDHE-RSA-AES128-SHA:AES128-SHA")], indirect=True)
def test_no_preauth_no_null(front: Nginx, pki: Pki) -> None:
    report = run(front, pki)
    assert report["client_auth"] == "none" and report["null_encryption"] is False
    assert report["negotiated_cipher"] == "ECDHE-RSA-AES128-SHA"
    s = statuses(report)
    assert s[ids.IPHTTPS_CLIENT_AUTH] == "warn" and s[ids.IPHTTPS_NULL_ENCRYPTION] == "warn"
    assert s[ids.IPHTTPS_HTTP] == "pass"


@pytest.mark.parametrize("front", [("on", FRONT_CIPHERS)], indirect=True)
def test_null_agrees_with_openssl(front: Nginx, pki: Pki) -> None:
    """openssl s_client offering the same list negotiates the same suite (an independent TLS client)."""
    openssl = need("openssl")
    proc = subprocess.run(
        [
            openssl, "s_client", "-connect", f"127.0.0.1:{front.port}", "-tls1_2",
            "-cipher", "NULL-SHA256:NULL-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0",
            "-cert", str(pki.client_cert), "-key", str(pki.client_key),
        ],
        input="", capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert "Cipher is NULL-SHA" in proc.stdout or "Cipher    : NULL-SHA" in proc.stdout, proc.stdout[-800:]
    assert (
        run(front, pki, cert=str(pki.client_cert), key=str(pki.client_key))["negotiated_cipher"] == "NULL-SHA"
    )


def test_http_mode_nginx_breaks_iphttps(pki: Pki, tmp_path: Path) -> None:
    conf = f"""http {{ @HTTP_COMMON@ server {{
        listen 127.0.0.1:@PORT@ ssl;
        ssl_certificate {pki.server_cert}; ssl_certificate_key {pki.server_key};
        ssl_protocols TLSv1.2; ssl_ciphers "{FRONT_CIPHERS}";
        location /IPHTTPS {{ return 200 ""; }}
    }} }}"""
    n = Nginx(tmp_path, conf)
    try:
        report = run(n, pki)
    finally:
        n.stop()
    assert report["http_status"] == 400
    f = next(f for f in report["findings"] if f["id"] == ids.IPHTTPS_HTTP)  # type: ignore[attr-defined]
    assert f["status"] == "fail" and "18446744073709551615" in f["detail"]
    assert 'client sent invalid "Content-Length" header' in n.error_log()


@pytest.mark.parametrize("front", [("on", FRONT_CIPHERS)], indirect=True)
def test_cli_json_and_exit(front: Nginx, pki: Pki) -> None:
    url = f"https://127.0.0.1:{front.port}/IPHTTPS"
    base = [sys.executable, "-m", "vpndoctor", "iphttps", url, "--sni", "da.test", "--ca", str(pki.ca)]
    proc = subprocess.run(
        [*base, "--client-cert", str(pki.client_cert), "--client-key", str(pki.client_key), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.validate(data, json.loads((Path(__file__).parents[2] / "schema" / "iphttps.json").read_text()))
    assert (
        data["client_auth"] == "required" and data["null_encryption"] is True and data["http_status"] == 200
    )
    assert data["attempts"][1]["tls"]["certificate"]["trusted"] is True
    text = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "client auth required" in text.stdout, text.stdout
