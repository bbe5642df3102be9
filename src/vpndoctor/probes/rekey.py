"""`connect --rekey`: on the held IKE SA, a DPD (an empty INFORMATIONAL), a CHILD_SA rekey with the PFS group
the profile would use (CREATE_CHILD_SA, then a Delete of the old CHILD_SA), an IKE SA rekey (then a Delete
of the old IKE SA; the machine goes on on the new one) and the first --ping target again on the new
CHILD_SA. The payloads and the key schedule are ike/rekey.py's; this module only drives the exchanges."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from vpndoctor.esp.keymat import derive_keymat
from vpndoctor.esp.sa import EspTransform, InboundSa, OutboundSa
from vpndoctor.ike import initiator as ini
from vpndoctor.ike import rekey as rk
from vpndoctor.ike.constants import ExchangeType, ProtocolId
from vpndoctor.ike.payloads import DeletePayload, Payload
from vpndoctor.observations.tunnel import ExchangeResult, RekeyResult
from vpndoctor.probes.tunnel import (  # tunnel imports us lazily
    PING_COUNT,
    Tunnel,
    TunnelPlan,
    esp_sa_lines,
    ping,
    write_esp_keys,
)

EXCHANGE_LIMIT_S = 20.0  # above the machine's own retransmissions (0.5 s doubling, 5 tries: 15.5 s)


async def ike_exchange(
    machine: ini.Initiator,
    tun: Tunnel,
    exchange: int,
    payloads: list[Payload],
    clock: Callable[[], float],
) -> tuple[ini.HeldResponse | None, float]:
    """One request on the held IKE SA and its answer (None after the machine's retransmissions)."""
    channel = tun.channel
    start = clock()
    message_id = machine.send_request(exchange, payloads, start)
    end = start + EXCHANGE_LIMIT_S
    while clock() < end:
        for data, (_, port) in machine.datagrams_to_send(clock()):
            channel.send_ike(data, port)
        answer = machine.held_answers.pop(message_id, None)
        if answer is not None:
            return (answer if isinstance(answer, ini.HeldResponse) else None), clock() - start
        timer = machine.get_timer()
        wait = max(0.0, (timer if timer is not None else end) - clock())
        if await channel.receive(min(wait, end - clock()), ike_wakes=True) is None:
            machine.handle_timer(clock())
        # ESP arriving meanwhile is dropped: nothing of ours is in flight
    return None, clock() - start


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


async def run_rekey(
    plan: TunnelPlan,
    machine: ini.Initiator,
    tun: Tunnel,
    transform: EspTransform,
    *,
    rng: Callable[[int], bytes],
    clock: Callable[[], float] = time.monotonic,
    esp_keys_out: str | None = None,
) -> RekeyResult:
    # DPD: an empty INFORMATIONAL the responder must answer (RFC 7296 §1.4)
    answer, took = await ike_exchange(machine, tun, ExchangeType.INFORMATIONAL, [], clock)
    dpd = ExchangeResult(outcome="ok", rtt_ms=_ms(took)) if answer else ExchangeResult(outcome="timeout")
    child_result = await _rekey_child(plan.pfs_group, machine, tun, transform, rng, clock, esp_keys_out)
    new_spi_i = tun.into.spi.hex() if child_result.outcome == "ok" else None
    new_spi_r = tun.out.spi.hex() if child_result.outcome == "ok" else None
    ike_result = await _rekey_ike(machine, tun, rng, clock)
    after = None
    if plan.ping:
        after = await ping(tun, plan.ping[0], count=PING_COUNT, timeout_s=plan.probe_timeout_s)
    return RekeyResult(
        pfs_group=rk.group_name(plan.pfs_group),
        child=child_result,
        ike=ike_result,
        dpd=dpd,
        new_spi_i=new_spi_i,
        new_spi_r=new_spi_r,
        traffic_after=after,
    )


async def _rekey_child(
    pfs_group: int | None,
    machine: ini.Initiator,
    tun: Tunnel,
    transform: EspTransform,
    rng: Callable[[int], bytes],
    clock: Callable[[], float],
    esp_keys_out: str | None = None,
) -> ExchangeResult:
    child = machine.child_result
    material = machine.ike_sa_material()
    if child is None or child.suite is None or material is None:
        return ExchangeResult(outcome="skipped", detail="no CHILD_SA to rekey")
    suite, keys, _, _ = material
    old_spi_in = tun.into.spi
    request = rk.child_rekey_request(child.suite, old_spi_in, child.ts_i, child.ts_r, pfs_group, rng)
    held, took = await ike_exchange(machine, tun, ExchangeType.CREATE_CHILD_SA, request.payloads, clock)
    if held is None:
        return ExchangeResult(outcome="timeout", detail="no answer to CREATE_CHILD_SA")
    answer = rk.read_answer(request, held.payloads, spi_bytes=4)
    if answer.error is not None:
        return ExchangeResult(outcome="refused", notify=answer.error, rtt_ms=_ms(took))
    if answer.detail is not None:
        return ExchangeResult(outcome="error", detail=answer.detail, rtt_ms=_ms(took))
    keymat = derive_keymat(suite.prf, keys.sk_d, request.nonce_i, answer.nonce_r, transform, answer.shared)
    tun.rekeyed(
        OutboundSa(spi=answer.spi_r, transform=transform, keys=keymat.out, rng=rng),
        InboundSa(spi=request.spi_i, transform=transform, keys=keymat.into),
    )
    if esp_keys_out:  # so that tshark decrypts what follows the rekey too
        with contextlib.suppress(OSError):  # written once already: the path was good
            write_esp_keys(
                esp_keys_out, esp_sa_lines(transform, keymat, request.spi_i, answer.spi_r), append=True
            )
    # The old CHILD_SA goes (RFC 7296 §1.3.3: the rekey's initiator deletes it); its answer deletes theirs.
    delete: list[Payload] = [DeletePayload(protocol=ProtocolId.ESP, spi_size=4, spis=(old_spi_in,))]
    deleted, _ = await ike_exchange(machine, tun, ExchangeType.INFORMATIONAL, delete, clock)
    detail = None if deleted is not None else "the Delete of the old CHILD_SA went unanswered"
    return ExchangeResult(outcome="ok", rtt_ms=_ms(took), detail=detail)


async def _rekey_ike(
    machine: ini.Initiator, tun: Tunnel, rng: Callable[[int], bytes], clock: Callable[[], float]
) -> ExchangeResult:
    material = machine.ike_sa_material()
    if material is None:
        return ExchangeResult(outcome="skipped", detail="no IKE SA keys")
    suite, keys, _, _ = material
    request = rk.ike_rekey_request(suite, rng)
    held, took = await ike_exchange(machine, tun, ExchangeType.CREATE_CHILD_SA, request.payloads, clock)
    if held is None:
        return ExchangeResult(outcome="timeout", detail="no answer to CREATE_CHILD_SA (IKE SA rekey)")
    answer = rk.read_answer(request, held.payloads, spi_bytes=8)
    if answer.error is not None:
        return ExchangeResult(outcome="refused", notify=answer.error, rtt_ms=_ms(took))
    if answer.detail is not None:
        return ExchangeResult(outcome="error", detail=answer.detail, rtt_ms=_ms(took))
    new_keys = rk.rekeyed_ike_keys(
        suite, keys, answer.shared, request.nonce_i, answer.nonce_r, request.spi_i, answer.spi_r
    )
    # The old IKE SA goes once the new one exists (RFC 7296 §1.3.2); then everything runs on the new one.
    delete: list[Payload] = [DeletePayload(protocol=ProtocolId.IKE, spi_size=0, spis=())]
    deleted, _ = await ike_exchange(machine, tun, ExchangeType.INFORMATIONAL, delete, clock)
    machine.adopt_ike_sa(request.spi_i, answer.spi_r, suite, new_keys)
    detail = None if deleted is not None else "the Delete of the old IKE SA went unanswered"
    return ExchangeResult(outcome="ok", rtt_ms=_ms(took), detail=detail)
