"""The revocation step of the certificate probes: for the chain a server sent, fetch what its certificates
point at and hand back a `RevocationObservation` (checks.revocation verifies it).

Walk the chain as a Windows client does: the leaf, then its issuer (from the chain sent, else through AIA
caIssuers - said so in the observation - else a trust anchor), and so on up to, not including, the root.
For each certificate: its CRL distribution points (http:// fetched, 1 MiB cap; LDAP recorded as
unreachable from outside, since clients outside the domain have no path to the directory), a delta CRL
the certificate or the base CRL names (Freshest CRL), and its OCSP responders (a POST of a request built
with `cryptography.x509.ocsp`, SHA-1 CertID as RFC 5019 and Windows use, no nonce). A guest's manners:
at most `MAX_FETCHES` fetches per run, one deadline for all, each fetch bounded by `FETCH_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from vpndoctor.net.http import CRL_MAX_BYTES, SMALL_MAX_BYTES, FetchBudget, HttpResult, http_get, http_post
from vpndoctor.observations.revocation import (
    CertificateRevocation,
    FetchPurpose,
    IssuerSource,
    RevocationFetch,
    RevocationObservation,
)

__all__ = ["FETCH_TIMEOUT_S", "MAX_DEPTH", "MAX_FETCHES", "check_revocation", "urls_of"]

MAX_FETCHES = 12  # per run: leaf CRL + delta + OCSP + AIA, the intermediate's CRL + OCSP, with room to spare
MAX_URLS_PER_KIND = 3  # a certificate may list many CDPs; a client tries a few
MAX_DEPTH = 4  # certificates checked: leaf and up to three CAs
FETCH_TIMEOUT_S = 4.0
TOTAL_TIMEOUT_S = 10.0


def _uris(names: Sequence[x509.GeneralName] | None) -> list[str]:
    return [str(n.value) for n in names or () if isinstance(n, x509.UniformResourceIdentifier)]


def urls_of(cert: x509.Certificate) -> dict[str, list[str]]:
    """The revocation URLs a certificate names: crl, freshest (delta CRL), ocsp, ca_issuers."""
    out: dict[str, list[str]] = {"crl": [], "freshest": [], "ocsp": [], "ca_issuers": []}
    try:
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        out["crl"] = [u for point in cdp for u in _uris(point.full_name)]
    except (x509.ExtensionNotFound, ValueError):
        pass
    try:
        freshest = cert.extensions.get_extension_for_class(x509.FreshestCRL).value
        out["freshest"] = [u for point in freshest for u in _uris(point.full_name)]
    except (x509.ExtensionNotFound, ValueError):
        pass
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        aia = None
    for desc in aia or ():
        if desc.access_method == AuthorityInformationAccessOID.OCSP:
            out["ocsp"] += _uris([desc.access_location])
        elif desc.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
            out["ca_issuers"] += _uris([desc.access_location])
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return _issued_by(cert, cert)


def _certificates_in(body: bytes) -> list[x509.Certificate]:
    """What an AIA caIssuers URL serves: one DER certificate, a PKCS#7 certs-only bundle (.p7c) or PEM."""
    for loader in (
        lambda b: [x509.load_der_x509_certificate(b)],
        pkcs7.load_der_pkcs7_certificates,
        x509.load_pem_x509_certificates,
    ):
        try:
            return list(loader(body))
        except ValueError:
            continue
    return []


class _Run:
    def __init__(self, deadline: float, budget: FetchBudget, fetch_timeout_s: float) -> None:
        self.deadline = deadline
        self.budget = budget
        self.fetch_timeout_s = fetch_timeout_s

    def _skip(
        self, purpose: FetchPurpose, url: str, kind: str, why: str, base: str | None
    ) -> RevocationFetch:
        return RevocationFetch(
            purpose=purpose, url=url, outcome="not-fetched", error=why, error_kind=kind, base_url=base
        )

    def _plan(self, purpose: FetchPurpose, url: str, base: str | None = None) -> RevocationFetch | None:
        """A not-fetched record for what is never fetched; None when the URL is one to fetch."""
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "ldap":
            return self._skip(
                purpose,
                url,
                "ldap",
                "LDAP: unreachable from outside (clients outside the domain have no path to the directory)",
                base,
            )
        if scheme != "http":
            return self._skip(
                purpose, url, "scheme", f"{scheme or 'no'} scheme: only http:// is fetched", base
            )
        if time.monotonic() >= self.deadline:
            return self._skip(purpose, url, "deadline", "not fetched: the run's deadline passed", base)
        return None

    def _record(self, purpose: FetchPurpose, r: HttpResult, base: str | None) -> RevocationFetch:
        if r.error_kind in ("budget", "deadline"):  # our limits, not the server's fault: no verdict
            return self._skip(purpose, r.url, r.error_kind, r.error or "not fetched", base)
        return RevocationFetch(
            purpose=purpose,
            url=r.url,
            outcome="failed" if r.error is not None else "fetched",
            http_status=r.status,
            content_type=r.content_type,
            size_bytes=r.size_bytes,
            elapsed_s=r.elapsed_s,
            error=r.error,
            error_kind=r.error_kind,
            redirects=r.redirects,
            base_url=base,
            body=r.body if r.error is None else None,
        )

    async def get(
        self, purpose: FetchPurpose, url: str, max_bytes: int, base: str | None = None
    ) -> RevocationFetch:
        planned = self._plan(purpose, url, base)
        if planned is not None:
            return planned
        r = await http_get(
            url,
            max_bytes=max_bytes,
            timeout_s=self.fetch_timeout_s,
            deadline_at=self.deadline,
            budget=self.budget,
        )
        return self._record(purpose, r, base)

    async def ocsp(
        self, url: str, cert: x509.Certificate, issuer: x509.Certificate | None
    ) -> RevocationFetch:
        planned = self._plan("ocsp", url)
        if planned is not None:
            return planned
        if issuer is None:
            return self._skip(
                "ocsp", url, "no-issuer", "no OCSP request without the issuer's certificate", None
            )
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        r = await http_post(
            url,
            request.public_bytes(serialization.Encoding.DER),
            "application/ocsp-request",
            max_bytes=SMALL_MAX_BYTES,
            timeout_s=self.fetch_timeout_s,
            deadline_at=self.deadline,
            budget=self.budget,
        )
        return self._record("ocsp", r, None)


async def check_revocation(
    chain_der: Sequence[bytes],
    anchors: Sequence[x509.Certificate] = (),
    *,
    timeout_s: float = TOTAL_TIMEOUT_S,
    deadline_at: float | None = None,
    max_fetches: int = MAX_FETCHES,
    fetch_timeout_s: float = FETCH_TIMEOUT_S,
) -> RevocationObservation | None:
    """Fetch the revocation information of `chain_der` (leaf first, as sent); None without a parsable leaf."""
    t0 = time.monotonic()
    sent: list[x509.Certificate] = []
    notes: list[str] = []
    for i, der in enumerate(chain_der):
        try:
            sent.append(x509.load_der_x509_certificate(der))
        except ValueError:
            if i == 0:
                return None
            notes.append(f"certificate {i} of the chain sent does not parse; left out")
    if not sent:
        return None
    deadline = t0 + timeout_s if deadline_at is None else min(t0 + timeout_s, deadline_at)
    run = _Run(deadline, FetchBudget(max_fetches), fetch_timeout_s)
    anchor_list = list(anchors)
    pool = list(sent[1:])
    checked: list[CertificateRevocation] = []
    from_aia = False
    cert = sent[0]
    for position in range(MAX_DEPTH):
        if _self_signed(cert) or cert in anchor_list:
            break  # a root or trust anchor: clients do not check its revocation
        urls = urls_of(cert)
        fetches: list[RevocationFetch] = []
        issuer, source = _find_issuer(cert, pool, anchor_list)
        if issuer is None:
            for url in urls["ca_issuers"][:MAX_URLS_PER_KIND]:
                fetch = await run.get("ca-issuers", url, SMALL_MAX_BYTES)
                fetches.append(fetch)
                if fetch.body is not None and fetch.http_status == 200:
                    found = [c for c in _certificates_in(fetch.body) if _issued_by(cert, c)]
                    if found:
                        issuer, source, from_aia = found[0], "aia", True
                        break
        crl_urls, ocsp_urls = urls["crl"][:MAX_URLS_PER_KIND], urls["ocsp"][:MAX_URLS_PER_KIND]
        firsts = await asyncio.gather(
            *(run.ocsp(u, cert, issuer) for u in ocsp_urls),
            *(run.get("crl", u, CRL_MAX_BYTES) for u in crl_urls),
        )
        fetches += firsts
        fetches += await _deltas(run, cert, [f for f in firsts if f.purpose == "crl"])
        checked.append(
            CertificateRevocation(
                position=position,
                subject=cert.subject.rfc4514_string(),
                issuer=cert.issuer.rfc4514_string(),
                serial=f"{cert.serial_number:X}",
                sha256=cert.fingerprint(hashes.SHA256()).hex(),
                crl_urls=urls["crl"],
                freshest_crl_urls=urls["freshest"],
                ocsp_urls=urls["ocsp"],
                ca_issuer_urls=urls["ca_issuers"],
                issuer_source=source,
                issuer_subject=issuer.subject.rfc4514_string() if issuer is not None else None,
                fetches=fetches,
                certificate_der=cert.public_bytes(serialization.Encoding.DER),
                issuer_der=issuer.public_bytes(serialization.Encoding.DER) if issuer is not None else None,
            )
        )
        if issuer is None or source == "anchors":
            break
        cert = issuer
    else:
        notes.append(f"the chain is longer than {MAX_DEPTH} certificates: the rest was not checked")
    return RevocationObservation(
        certificates=checked,
        chain_sent=len(chain_der),
        intermediate_from_aia=from_aia,
        max_fetches=max_fetches,
        fetches_used=run.budget.used,
        duration_s=round(time.monotonic() - t0, 4),
        notes=notes,
    )


def _find_issuer(
    cert: x509.Certificate, pool: list[x509.Certificate], anchors: list[x509.Certificate]
) -> tuple[x509.Certificate | None, IssuerSource]:
    for cand in pool:
        if _issued_by(cert, cand):
            return cand, "chain"
    for cand in anchors:
        if _issued_by(cert, cand):
            return cand, "anchors"
    return None, "none"


async def _deltas(run: _Run, cert: x509.Certificate, crls: list[RevocationFetch]) -> list[RevocationFetch]:
    """The delta CRLs the certificate or a fetched base CRL names (Freshest CRL), each once."""
    wanted: dict[str, str | None] = {u: None for u in urls_of(cert)["freshest"][:MAX_URLS_PER_KIND]}
    for base in crls:
        if base.body is None:
            continue
        try:
            crl = x509.load_der_x509_crl(base.body)
        except ValueError:
            try:
                crl = x509.load_pem_x509_crl(base.body)
            except ValueError:
                continue
        try:
            points = crl.extensions.get_extension_for_class(x509.FreshestCRL).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        for point in points:
            for url in _uris(point.full_name)[:MAX_URLS_PER_KIND]:
                wanted.setdefault(url, base.url)
    return list(
        await asyncio.gather(*(run.get("delta-crl", u, CRL_MAX_BYTES, base) for u, base in wanted.items()))
    )
