"""Run `vpndoctor connect ARGS` in-process and, when it is done, write the secrets of its EAP methods (the MSK
of each method that got one, the TLS master secrets) as hex, one per line, to the file $VEA_SECRETS_OUT: what
the secrets test then looks for in every output. A test helper, run in the lab's client namespace."""

from __future__ import annotations

import os
import sys
from typing import Any

import vpndoctor.probes.connect as probe_connect
import vpndoctor.probes.eap_methods as eap_methods

peers: list[Any] = []
_build = eap_methods.build_peer


def _spy(*args: Any, **kwargs: Any) -> Any:
    peer = _build(*args, **kwargs)
    peers.append(peer)
    return peer


probe_connect.build_peer = _spy  # type: ignore[assignment]


def _secrets() -> list[bytes]:
    found: list[bytes] = []
    for peer in peers:
        methods = [peer.method, getattr(peer.method, "inner", None)]
        for method in methods:
            if method is None:
                continue
            key = method.msk()
            if key:
                found.append(key)
            tls = getattr(method, "tls", None)
            secret = getattr(tls, "_secret", None)
            if secret:
                found.append(secret)
            base = getattr(method, "_base_msk", None)
            if base:
                found.append(base)
    return found


if __name__ == "__main__":
    from vpndoctor.cli import main

    try:
        sys.argv = ["vpndoctor", *sys.argv[1:]]
        main()
    finally:
        with open(os.environ["VEA_SECRETS_OUT"], "w", encoding="ascii") as fh:
            fh.writelines(s.hex() + "\n" for s in _secrets())
