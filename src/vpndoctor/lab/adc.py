"""The lab's DirectAccess IP-HTTPS ADC, built twice (nginx `stream` and HAProxy `mode tcp`) the way the
NetScaler field guide configures one, plus the DirectAccess server stand-ins behind it; and the override
hook that runs user-supplied nginx/HAProxy configurations in their place.

Pure text generation and argv building; the runner writes the files and starts the daemons.

The shape (NetScaler recipe -> here):
- front end on the ADC VIP `da.lab.test:443`: ciphers `TLS1-ECDHE-RSA-AES128-SHA` + `SSL3-NULL-SHA`
  (`ECDHE-RSA-AES128-SHA:NULL-SHA:@SECLEVEL=0`), SSLv3 off, TLS 1.0 only for Windows 7, client certificate
  mandatory against the DirectAccess CA (`-clientAuth ENABLED -clientCert Mandatory`), SSLSESSION persistence;
- back end: `unbind ... -cipherName ALL` + `bind ... -cipherName SSL3-NULL-SHA`: the ADC re-encrypts to
  the DirectAccess servers with NULL suites only, and those servers accept nothing else. A request that
  reaches a backend therefore proves the NULL re-encryption works.
The DirectAccess server stand-in is HAProxy (`mode http`): it accepts the real IP-HTTPS request, whose
`Content-Length: 18446744073709551615` nginx rejects with 400, and answers `POST /IPHTTPS` with 200.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vpndoctor.errors import UsageError
from vpndoctor.lab import topology as t
from vpndoctor.lab.pki import DirectAccessPkiFiles
from vpndoctor.lab.scenario import AdcKnobs

NGINX = "nginx"
HAPROXY = "haproxy"
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

FRONT_CIPHERS_WITH_NULL = "ECDHE-RSA-AES128-SHA:NULL-SHA:@SECLEVEL=0"
FRONT_CIPHERS_WITHOUT_NULL = "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"
BACKEND_CIPHERS = "NULL-SHA:NULL-SHA256:@SECLEVEL=0"
SERVER_HEADER = "Microsoft-HTTPAPI/2.0 (vpndoctor lab DirectAccess stand-in on {backend})"
IPHTTPS_PATH = "/IPHTTPS"
SESSION_TIMEOUT_MIN = 10  # NetScaler `-persistenceType SSLSESSION -timeout 10`

# Override names (`vpndoctor lab up --override NAME=FILE`) and what each replaces.
OVERRIDES: dict[str, str] = {
    "adc-nginx": "nginx.conf run as the ADC in the lb namespace (turns the ADC parts on)",
    "adc-haproxy": "haproxy.cfg run as the ADC in the lb namespace (turns the ADC parts on)",
    "lb-nginx": "extra nginx.conf in the lb namespace, e.g. a stream UDP LB for IKE 500/4500 "
    "(the generated lb ruleset then leaves UDP 500/4500 alone)",
    "edge-nft": "nftables ruleset for the edge, in place of the generated one",
    "lb-nft": "nftables ruleset for the lb, in place of the generated one",
}


@dataclass(frozen=True)
class AdcFiles:
    """Everything the ADC configurations refer to."""

    lab_ca: Path  # the lab CA: verifies the backends' certificate
    pki: DirectAccessPkiFiles
    workdir: Path  # logs and pid files


def front_ciphers(knobs: AdcKnobs) -> str:
    return FRONT_CIPHERS_WITH_NULL if knobs.null_cipher == "present" else FRONT_CIPHERS_WITHOUT_NULL


def front_protocols(knobs: AdcKnobs) -> tuple[str, ...]:
    """nginx spelling. TLS 1.3 stays off (it has no NULL suites). With TLS 1.0 on, TLS 1.1 is on too: HAProxy
    cannot leave a hole in the range (2.6 ignores `no-tlsv11` next to `ssl-min-ver`), so both ADCs match."""
    return ("TLSv1", "TLSv1.1", "TLSv1.2") if knobs.tls10 else ("TLSv1.2",)


def _backends(count: int) -> tuple[str, ...]:
    return t.BACKENDS[:count]


def _hp_addr(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def nginx_adc_conf(knobs: AdcKnobs, files: AdcFiles, backends: int) -> str:
    verify = {"required": "on", "optional": "optional", "off": "off"}[knobs.client_auth]
    client_auth = [f"    ssl_verify_client {verify};"]
    if verify != "off":
        client_auth += [
            f"    ssl_client_certificate {files.pki.da_ca_cert};  # CA names sent in the CertificateRequest",
            "    ssl_verify_depth 2;",
        ]
    servers = [f"    server {_hp_addr(t.BACKEND4[b], t.DA_BACKEND_PORT)};" for b in _backends(backends)]
    lines = [
        "# vpndoctor lab ADC (nginx stream): DirectAccess IP-HTTPS SSL offload, NULL re-encryption",
        "worker_processes 1;",
        "events { worker_connections 512; }",
        "stream {",
        "  log_format adc '$remote_addr:$remote_port [$time_local] $status $ssl_protocol $ssl_cipher '",
        "                 'client_verify=$ssl_client_verify client=\"$ssl_client_s_dn\" '",
        "                 'upstream=$upstream_addr sent=$bytes_sent received=$bytes_received';",
        f"  access_log {files.workdir / 'adc-access.log'} adc;",
        "  upstream directaccess {",
        "    hash $remote_addr consistent;",
        *servers,
        "  }",
        "  server {",
        f"    listen {t.DA_VIP4}:{t.DA_PORT} ssl;",
        f"    listen [{t.DA_VIP6}]:{t.DA_PORT} ssl;",
        f"    ssl_certificate {files.pki.server_chain};",
        f"    ssl_certificate_key {files.pki.server_key};",
        f"    ssl_protocols {' '.join(front_protocols(knobs))};",
        f"    ssl_ciphers {front_ciphers(knobs)};",
        "    ssl_prefer_server_ciphers off;  # a Windows 8+ client offers NULL first and gets it",
        "    ssl_session_cache shared:adc:1m;",
        f"    ssl_session_timeout {SESSION_TIMEOUT_MIN}m;",
        *client_auth,
        "    proxy_pass directaccess;",
        "    proxy_connect_timeout 5s;",
        "    proxy_ssl on;",
        "    proxy_ssl_protocols TLSv1.2;",
        f"    proxy_ssl_ciphers {BACKEND_CIPHERS};",
        "    proxy_ssl_verify on;",
        f"    proxy_ssl_trusted_certificate {files.lab_ca};",
        f"    proxy_ssl_name {t.DA_NAME};",
        "    proxy_ssl_server_name on;",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def haproxy_adc_cfg(knobs: AdcKnobs, files: AdcFiles, backends: int) -> str:
    tls = f"ssl-min-ver {'TLSv1.0' if knobs.tls10 else 'TLSv1.2'} ssl-max-ver TLSv1.2"
    client_auth = {
        "required": f" ca-file {files.pki.da_ca_cert} verify required",
        "optional": f" ca-file {files.pki.da_ca_cert} verify optional",
        "off": " verify none",
    }[knobs.client_auth]
    bind_opts = (
        f"ssl crt {files.pki.server_haproxy} ciphers {front_ciphers(knobs)} {tls} "
        f"prefer-client-ciphers{client_auth}"
    )
    server_opts = (
        f"ssl ca-file {files.lab_ca} verify required verifyhost {t.DA_NAME} sni str({t.DA_NAME}) "
        f"ciphers {BACKEND_CIPHERS} ssl-max-ver TLSv1.2"
    )
    servers = [
        f"  server {b} {_hp_addr(t.BACKEND4[b], t.DA_BACKEND_PORT)} {server_opts}"
        for b in _backends(backends)
    ]
    lines = [
        "# vpndoctor lab ADC (HAProxy mode tcp): DirectAccess IP-HTTPS SSL offload, NULL re-encryption",
        "global",
        "  log stdout format raw local0 info",
        "defaults",
        "  mode tcp",
        "  log global",
        "  timeout connect 5s",
        "  timeout client 5m",
        "  timeout server 5m",
        "frontend directaccess",
        f"  bind {_hp_addr(t.DA_VIP4, t.DA_PORT)} {bind_opts}",
        f"  bind {_hp_addr(t.DA_VIP6, t.DA_PORT)} {bind_opts}",
        '  log-format "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %sslv %sslc '
        'client_verify=%[ssl_c_verify] client=%{+Q}[ssl_c_s_dn]"',
        "  default_backend directaccess",
        "backend directaccess",
        "  # SSLSESSION persistence: the TLS session id keeps a client on its backend",
        f"  stick-table type binary len 32 size 30k expire {SESSION_TIMEOUT_MIN}m",
        "  stick on ssl_fc_session_id",
        "  balance source",
        "  hash-type consistent",
        *servers,
    ]
    return "\n".join(lines) + "\n"


def haproxy_backend_cfg(backend: str, files: AdcFiles) -> str:
    """The DirectAccess server stand-in on one backend: NULL suites only, POST /IPHTTPS -> 200."""
    bind_opts = (
        f"ssl crt {files.pki.server_haproxy} ciphers {BACKEND_CIPHERS} "
        "ssl-min-ver TLSv1.0 ssl-max-ver TLSv1.2"
    )
    header = SERVER_HEADER.format(backend=backend)
    lines = [
        f"# vpndoctor lab DirectAccess IP-HTTPS server stand-in on {backend}: NULL cipher suites only",
        "global",
        "  log stdout format raw local0 info",
        "  h1-case-adjust server Server",
        "defaults",
        "  mode http",
        "  log global",
        "  timeout connect 5s",
        "  timeout client 5m",
        "  timeout server 5m",
        "  timeout http-request 10s",
        "frontend iphttps",
        f"  bind {_hp_addr(t.BACKEND4[backend], t.DA_BACKEND_PORT)} {bind_opts}",
        f"  bind {_hp_addr(t.BACKEND6[backend], t.DA_BACKEND_PORT)} {bind_opts}",
        "  option h1-case-adjust-bogus-client",
        '  log-format "%ci:%cp [%tr] %ft %sslv %sslc %ST %{+Q}r"',
        f'  http-request return status 200 hdr Server "{header}"'
        f" if {{ method POST }} {{ path -i {IPHTTPS_PATH} }}",
        f'  http-request return status 404 hdr Server "{header}"',
    ]
    return "\n".join(lines) + "\n"


_STREAM_LOADED_RE = re.compile(r"ngx_stream_module|modules-enabled")


def nginx_globals(conf_text: str, pid_file: Path) -> str:
    """The `-g` directives the lab adds to any nginx configuration it runs (own or supplied)."""
    directives = ["daemon off;", f"pid {pid_file};"]
    if not _STREAM_LOADED_RE.search(conf_text):
        directives.insert(0, f"load_module {NGINX_STREAM_MODULE};")
    return " ".join(directives)


def nginx_argv(conf: Path, conf_text: str, name: str, workdir: Path, *, test: bool = False) -> list[str]:
    argv = [
        NGINX,
        "-c",
        str(conf),
        "-p",
        f"{workdir}/",
        "-e",
        str(workdir / f"{name}-error.log"),
        "-g",
        nginx_globals(conf_text, workdir / f"{name}.pid"),
    ]
    return [*argv, "-t", "-q"] if test else argv


def haproxy_argv(cfg: Path, *, test: bool = False) -> list[str]:
    return [HAPROXY, "-c", "-q", "-f", str(cfg)] if test else [HAPROXY, "-db", "-f", str(cfg)]


def parse_overrides(items: Sequence[str]) -> dict[str, Path]:
    """`NAME=FILE` strings (the CLI's repeated `--override`) -> {name: path}; a bad item is a UsageError."""
    found: dict[str, Path] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise UsageError(
                f"bad --override '{item}': expected NAME=FILE with NAME one of {', '.join(OVERRIDES)}"
            )
        found[name.strip()] = Path(value)
    return check_overrides(found)


def check_overrides(overrides: dict[str, Path]) -> dict[str, Path]:
    for name, path in overrides.items():
        if name not in OVERRIDES:
            raise UsageError(f"unknown override '{name}'; expected one of: {', '.join(OVERRIDES)}")
        if not path.is_file():
            raise UsageError(f"override {name}: no such file {path}")
    if "adc-nginx" in overrides and "adc-haproxy" in overrides:
        raise UsageError("give either adc-nginx or adc-haproxy, not both")
    return {name: path.resolve() for name, path in overrides.items()}
