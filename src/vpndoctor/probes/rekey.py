"""`--rekey`: filled in below (CREATE_CHILD_SA)."""

from __future__ import annotations

from collections.abc import Callable

from vpndoctor.esp.sa import EspTransform
from vpndoctor.ike import initiator as ini
from vpndoctor.observations.tunnel import ExchangeResult, RekeyResult


async def run_rekey(
    plan: object,
    machine: ini.Initiator,
    tun: object,
    transform: EspTransform,
    *,
    rng: Callable[[int], bytes],
    clock: Callable[[], float],
) -> RekeyResult:
    skipped = ExchangeResult(outcome="skipped", detail="not implemented yet")
    return RekeyResult(
        pfs_group=None,
        child=skipped,
        ike=skipped,
        dpd=skipped,
        new_spi_i=None,
        new_spi_r=None,
        traffic_after=None,
    )
