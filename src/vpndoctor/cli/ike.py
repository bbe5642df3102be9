"""`vpndoctor ike TARGET`: one real IKEv2 handshake, as far as the server's certificate and AUTH."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from vpndoctor.cli.output import emit
from vpndoctor.errors import UsageError

if TYPE_CHECKING:
    from vpndoctor.observations.ike import IkeObservation, IkeRevocationVerdict

app = typer.Typer()


@app.command("ike")
def ike(
    target: Annotated[str, typer.Argument(help="Server name or address.")],
    port: Annotated[int, typer.Option(help="IKE port.", min=1, max=65535)] = 500,
    natt_port: Annotated[int, typer.Option("--natt-port", help="NAT-T port.", min=1, max=65535)] = 4500,
    proposal: Annotated[
        list[str] | None,
        typer.Option(
            "--proposal", help="IKE proposal, strongSwan syntax (repeatable), e.g. aes256-sha256-modp2048."
        ),
    ] = None,
    group: Annotated[int | None, typer.Option(help="DH group of the first KE payload (IANA number).")] = None,
    force_nat: Annotated[
        bool, typer.Option("--force-nat", help="Forge NAT detection to force UDP 4500.")
    ] = False,
    no_fragmentation: Annotated[
        bool, typer.Option("--no-fragmentation", help="Do not offer IKEv2 fragmentation (RFC 7383).")
    ] = False,
    identity: Annotated[str, typer.Option(help="IDi sent in IKE_AUTH.")] = "anonymous@vpndoctor.invalid",
    ca: Annotated[list[str] | None, typer.Option("--ca", help="Trust anchor (PEM/DER), repeatable.")] = None,
    stateless: Annotated[
        bool,
        typer.Option(
            "--stateless",
            help="Only ask whether the proposals are acceptable (a KE payload of another group): "
            "INVALID_KE_PAYLOAD means accepted, NO_PROPOSAL_CHOSEN refused; the server keeps no SA.",
        ),
    ] = False,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Total deadline in seconds.")] = 10.0,
    no_revocation: Annotated[
        bool,
        typer.Option(
            "--no-revocation",
            help="Do not fetch the CRLs and OCSP answers of the server's certificate chain.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (schema/ike.json).")
    ] = False,
) -> None:
    """Run a real IKEv2 handshake (IKE_SA_INIT, IKE_AUTH up to the server's certificate, AUTH and EAP).

    Once IKE_AUTH brought the server's certificate, its chain's revocation is checked as a Windows client
    would (CRL distribution points, delta CRLs, OCSP, AIA), within the same deadline; --no-revocation skips
    those fetches. The verdict does not change the exit code.

    Exit 0 when IKE_AUTH was answered, 1 when the server answered with an error, 3 when it did not answer,
    2 on a usage or local error.
    """
    from vpndoctor.probes.ike import exit_code, probe
    from vpndoctor.report.ike import render_ike

    if timeout_s <= 0:
        raise UsageError("--timeout-s must be positive")
    if not target.strip():
        raise UsageError("give a server name or address to probe")
    if stateless and group is not None:
        raise UsageError("--stateless picks its own KE group; it does not go with --group")
    obs = probe(
        target,
        port=port,
        natt_port=natt_port,
        proposals=proposal,
        group=group,
        force_nat=force_nat,
        fragmentation=not no_fragmentation,
        identity=identity,
        ca_files=ca,
        timeout_s=timeout_s,
        stateless=stateless,
        revocation=not no_revocation,
    )
    obs.revocation_verdict = revocation_verdict(obs, datetime.now(UTC), skipped=no_revocation)
    emit(obs, as_json=as_json, render=render_ike)
    raise typer.Exit(exit_code(obs))


def revocation_verdict(
    obs: IkeObservation, now: datetime, *, skipped: bool = False
) -> IkeRevocationVerdict | None:
    """`checks.revocation`'s verdict on the revocation step's observation, for the report and the JSON;
    None when the server sent no certificate (nothing to check). `skipped`: --no-revocation was given."""
    from vpndoctor.checks.revocation import judge_revocation, revocation_outcome
    from vpndoctor.observations.ike import IkeRevocationVerdict

    if not obs.certificate_chain_pem:
        return None
    if obs.revocation is None:
        why = "--no-revocation" if skipped else "the server's certificate does not parse"
        return IkeRevocationVerdict(
            status="not-checked",
            reason="skipped" if skipped else "no-certificate",
            subject=obs.certificate.subject if obs.certificate else None,
            why=why,
            detail=f"Revocation not checked: {why}.",
        )
    if not obs.revocation.certificates:
        why = "the server's certificate is self-signed or a trust anchor: clients do not check its revocation"
        return IkeRevocationVerdict(
            status="not-checked",
            reason="root",
            subject=obs.certificate.subject if obs.certificate else None,
            why=why,
            detail=f"Revocation not checked: {why}.",
        )
    judged = judge_revocation(obs.revocation, now)
    outcome = revocation_outcome(obs.revocation, now, "ike")
    worst = next((v for v in judged.certificates if v.status == judged.status), None)
    revoked = next((s for s in worst.sources if s.status == "revoked"), None) if worst else None
    return IkeRevocationVerdict(
        status=judged.status,
        reason=worst.reason if worst else "not-checked",
        subject=worst.subject if worst else None,
        why=worst.detail if worst else "no certificate to check",
        detail=outcome.detail,
        revoked_at=revoked.revoked_at.isoformat() if revoked and revoked.revoked_at else None,
        revocation_reason=revoked.revocation_reason if revoked else None,
        error_codes=list(outcome.codes),
        warnings=list(judged.warnings),
    )
