"""nginx (stream module): the IP-HTTPS offload + preauthentication recipe (`ssl_verify_client on` with the
CA, `proxy_ssl_ciphers NULL-SHA256:NULL-SHA:@SECLEVEL=0` to the servers), IKEv2 as UDP upstreams with
`hash $remote_addr consistent` (the same hash on 500 and 4500 keeps a client on one server), SSTP
pass-through. A whole nginx.conf, checked by `nginx -t`.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.configgen.common import back_ciphers_openssl, front_ciphers_openssl, header
from vpndoctor.configgen.haproxy import require_files
from vpndoctor.configgen.model import Deployment
from vpndoctor.configgen.templating import render_template


def render(
    d: Deployment, recipes: Sequence[str], *, pidfile: str | None = None, error_log: str = "stderr"
) -> str:
    if "iphttps-offload" in recipes:
        require_files(d, "nginx")
    return render_template(
        "nginx.conf.j2",
        header=header("nginx", d, recipes).rstrip("\n"),
        d=d,
        recipes=list(recipes),
        pidfile=pidfile,
        error_log=error_log,
        front_ciphers=front_ciphers_openssl(d),
        back_ciphers=back_ciphers_openssl(),
    )
