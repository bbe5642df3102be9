"""`vpndoctor ike` and revocation (#17): the observation carries the revocation step and its verdict as
optional fields (old JSON without them stays valid), the CLI judges it with checks.revocation, the terminal
report shows that verdict in one line, and --no-revocation fetches nothing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.console import Console

from tests.checks.test_revocation import CRL_URL, NOW, OCSP_URL, Pki, failed, fetched, observation
from tests.ike.responder import UdpResponderThread
from vpndoctor.checks.revocation import CRYPT_E_REVOKED, ERROR_IPSEC_IKE_PEER_CRL_FAILED
from vpndoctor.cli.ike import revocation_verdict
from vpndoctor.observations.ike import IkeObservation
from vpndoctor.observations.revocation import RevocationFetch
from vpndoctor.probes.ike import _not_run, _pem
from vpndoctor.report.ike import render_ike

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "ike.json").read_text())


def _ike(pki: Pki) -> IkeObservation:
    """An observation as IKE_AUTH leaves it: the server's chain came (the CLI's fields not yet set)."""
    obs = _not_run("vpn.example.test", "192.0.2.1", 500, 4500, datetime.now(UTC), time.monotonic())
    der = [c.public_bytes(serialization.Encoding.DER) for c in (pki.leaf, pki.ca)]
    return obs.model_copy(update={"reached": "IKE_AUTH", "certificate_chain_pem": [_pem(d) for d in der]})


def _line(obs: IkeObservation) -> str:
    buf = io.StringIO()
    render_ike(obs, Console(file=buf, width=400, color_system=None))
    return next(line for line in buf.getvalue().splitlines() if line.startswith("revocation"))


def test_round_trip_with_and_without_the_revocation_fields() -> None:
    pki = Pki()
    plain = _ike(pki)
    old = json.loads(plain.model_dump_json())
    del old["revocation"], old["revocation_verdict"]  # the JSON of a vpndoctor before #17
    jsonschema.validate(old, SCHEMA)
    back = IkeObservation.model_validate_json(json.dumps(old))
    assert back.revocation is None and back.revocation_verdict is None and back == plain

    rev = observation(pki, [fetched("crl", CRL_URL, pki.crl())])
    full = plain.model_copy(update={"revocation": rev})
    full.revocation_verdict = revocation_verdict(full, NOW)
    text = full.model_dump_json()
    jsonschema.validate(json.loads(text), SCHEMA)
    assert "body" not in json.loads(text)["revocation"]["certificates"][0]["fetches"][0]
    again = IkeObservation.model_validate_json(text)
    assert again.revocation_verdict == full.revocation_verdict
    assert again.revocation is not None
    assert again.revocation.certificates[0].fetches[0].url == CRL_URL
    assert again.model_dump_json() == text


def test_verdicts_and_their_one_line() -> None:
    pki = Pki()
    base = _ike(pki)

    def verdict_of(fetches: list[RevocationFetch], **kw: Any) -> IkeObservation:
        obs = base.model_copy(update={"revocation": observation(pki, fetches, **kw)})
        obs.revocation_verdict = revocation_verdict(obs, NOW)
        return obs

    good = verdict_of([fetched("crl", CRL_URL, pki.crl())])
    assert good.revocation_verdict is not None and good.revocation_verdict.status == "good"
    assert "good (not revoked)" in _line(good)

    revoked_crl = pki.crl(revoked=[(pki.leaf.serial_number, x509.ReasonFlags.key_compromise)])
    revoked = verdict_of([fetched("crl", CRL_URL, revoked_crl)])
    v = revoked.revocation_verdict
    assert v is not None and (v.status, v.revocation_reason) == ("revoked", "keyCompromise")
    assert v.revoked_at is not None and v.error_codes == [CRYPT_E_REVOKED]
    line = _line(revoked)
    assert "revoked (keyCompromise, " in line and v.revoked_at[:10] in line and "vpn.example.test" in line

    down = verdict_of([failed("crl", CRL_URL, "refused", "connection refused")])
    v = down.revocation_verdict
    assert v is not None and (v.status, v.reason) == ("offline", "unreachable")
    assert v.error_codes == [ERROR_IPSEC_IKE_PEER_CRL_FAILED]
    assert "cannot be checked (unreachable: " in _line(down) and "connection refused" in _line(down)

    bare = verdict_of([], crl_urls=())
    assert bare.revocation_verdict is not None and bare.revocation_verdict.status == "no-info"
    assert "no CDP or OCSP" in _line(bare)

    ocsp_down = verdict_of(
        [failed("ocsp", OCSP_URL, "refused", "connection refused"), fetched("crl", CRL_URL, pki.crl())],
        ocsp_urls=(OCSP_URL,),
    )
    v = ocsp_down.revocation_verdict
    assert v is not None and v.status == "good" and v.warnings
    assert "good (not revoked) but: " in _line(ocsp_down)

    skipped = base.model_copy()
    skipped.revocation_verdict = revocation_verdict(skipped, NOW, skipped=True)
    assert "not checked (--no-revocation)" in _line(skipped)
    # No certificate came: nothing to judge, no line.
    none = base.model_copy(update={"certificate_chain_pem": []})
    assert revocation_verdict(none, NOW) is None


def test_cli_self_signed_and_no_revocation() -> None:
    """The scripted responder's certificate is self-signed: nothing to fetch, said so; --no-revocation too."""
    with UdpResponderThread("normal") as server:
        for extra, reason in (((), "root"), (("--no-revocation",), "skipped")):
            argv = [sys.executable, "-m", "vpndoctor", "ike", "127.0.0.1", "--port", str(server.port)]
            argv += ["--natt-port", str(server.natt_port), "--json", *extra]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            assert proc.returncode == 0, proc.stderr
            obs = json.loads(proc.stdout)
            jsonschema.validate(obs, SCHEMA)
            assert obs["revocation_verdict"]["status"] == "not-checked"
            assert obs["revocation_verdict"]["reason"] == reason
            assert (obs["revocation"] is None) == bool(extra)
