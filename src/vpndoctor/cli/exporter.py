"""`vpndoctor exporter --config FILE`: vpndoctor's probes as a Prometheus multi-target exporter.

Wires `exporter.service` (the endpoints, caps, allow-list, probes) to `net.http_server` (the listener) and
the process' signals: SIGHUP reloads the configuration, SIGTERM/SIGINT stop the listener.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vpndoctor.errors import UsageError

app = typer.Typer()

DEFAULT_LISTEN = "127.0.0.1:9815"


@app.command("exporter")
def exporter(
    config: Annotated[
        str, typer.Option("--config", metavar="FILE", help="Modules, limits, allow-list (YAML).")
    ],
    listen: Annotated[
        str,
        typer.Option(
            "--listen", metavar="ADDR:PORT", help="Address to listen on (an IP literal; [v6]:port)."
        ),
    ] = DEFAULT_LISTEN,
    web_config: Annotated[
        str | None,
        typer.Option(
            "--web-config",
            metavar="FILE",
            help="TLS and basic auth for the endpoint (exporter-toolkit's web-config.yml format).",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only validate the configuration files, then exit 0.")
    ] = False,
) -> None:
    """Serve /probe?target=NAME&module=MOD (one probe, its metrics), /metrics (the exporter's own),
    /-/healthy, /-/reload (POST; or SIGHUP) and / (the recent probes).

    Listens on 127.0.0.1 unless --listen says otherwise. Exit 2 on a bad configuration or address.
    """
    import asyncio
    import ipaddress

    from vpndoctor.exporter.config import load_config, load_web_config
    from vpndoctor.exporter.service import check_files
    from vpndoctor.hostport import parse_host_port

    where = parse_host_port(listen, 9815)
    try:
        ipaddress.ip_address(where.host)
    except ValueError:
        raise UsageError(
            f"--listen {listen}: give an IP address to listen on (e.g. 127.0.0.1:9815)"
        ) from None
    cfg = load_config(config)
    check_files(cfg)
    web = load_web_config(web_config) if web_config else None
    if check:
        typer.echo(f"{config}: {len(cfg.modules)} modules, OK")
        return
    asyncio.run(_serve(config, cfg, web, where.host, where.port))


async def _serve(path: str, cfg: object, web: object, host: str, port: int) -> None:
    import asyncio
    import signal
    import ssl
    import sys

    from vpndoctor.exporter.config import ExporterConfig, WebConfig
    from vpndoctor.exporter.service import Exporter
    from vpndoctor.net.http_server import HttpServer, server_context

    assert isinstance(cfg, ExporterConfig)
    assert web is None or isinstance(web, WebConfig)
    service = Exporter(path, cfg, web)
    context = None
    if web is not None and web.tls_server_config is not None:
        tls = web.tls_server_config
        try:
            context = server_context(tls.cert_file, tls.key_file, tls.min_version)
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(
                f"tls_server_config: cannot load {tls.cert_file} / {tls.key_file}: {exc}"
            ) from None
    server = HttpServer(service.handle)
    try:
        await server.start(host, port, context)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service.install_sighup()
    scheme = "https" if context else "http"
    bound = server.bound or (host, port)
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    print(f"vpndoctor exporter: listening on {scheme}://{shown}:{bound[1]}/", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
