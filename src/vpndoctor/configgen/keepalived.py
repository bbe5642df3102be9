"""keepalived (IPVS): IKEv2 as one `virtual_server fwmark` for UDP 500 and 4500 with persistence, so that
both ports of a client stay on one real server; SSTP as a TCP 443 virtual server with persistence.
Checked by `keepalived --config-test`."""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.configgen.common import header
from vpndoctor.configgen.model import Deployment
from vpndoctor.configgen.templating import render_template


def render(d: Deployment, recipes: Sequence[str]) -> str:
    return render_template(
        "keepalived.conf.j2", header=header("keepalived", d, recipes).rstrip("\n"), d=d, recipes=list(recipes)
    )
