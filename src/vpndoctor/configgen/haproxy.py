"""HAProxy: the IP-HTTPS offload + preauthentication recipe (front end `verify required` with the CA,
back end `ssl ... ciphers NULL-SHA256:NULL-SHA:@SECLEVEL=0`) and SSTP pass-through with source stickiness.
HAProxy does not balance UDP, so IKEv2 is nginx's, nftables' or keepalived's job. Checked by `haproxy -c`.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.configgen.common import back_ciphers_openssl, front_ciphers_openssl, header
from vpndoctor.configgen.model import Deployment
from vpndoctor.configgen.templating import render_template
from vpndoctor.errors import UsageError


def require_files(d: Deployment, target: str) -> None:
    """The IP-HTTPS offload reads PEM files on the proxy itself: they must be named in the input."""
    c = d.certificates
    if c.server.cert_file is None or c.server.key_file is None:
        raise UsageError(
            f"certificates.server.cert_file and key_file: {target} terminates IP-HTTPS and needs the"
            " server certificate and key as PEM files"
        )
    if d.iphttps.preauth and c.ca.cert_file is None:
        raise UsageError(
            f"certificates.ca.cert_file: {target} needs the CA as a PEM file to require client certificates"
            " (or set iphttps.preauth: false)"
        )


def render(d: Deployment, recipes: Sequence[str], *, pidfile: str | None = None) -> str:
    if "iphttps-offload" in recipes:
        require_files(d, "haproxy")
    head = header("haproxy", d, recipes)
    if "iphttps-offload" in recipes:
        c = d.certificates.server
        head += (
            f"# haproxy reads the private key from {c.cert_file} (append it) or from {c.cert_file}.key;"
            f" key_file {c.key_file}\n"
        )
    return render_template(
        "haproxy.cfg.j2",
        header=head.rstrip("\n"),
        d=d,
        recipes=list(recipes),
        pidfile=pidfile,
        front_ciphers=front_ciphers_openssl(d),
        back_ciphers=back_ciphers_openssl(),
    )
