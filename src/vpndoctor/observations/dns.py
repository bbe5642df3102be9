"""What the resolvers answered for the VPN name."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResolverAnswer:
    resolver: str  # "system" or the resolver's address
    addresses: tuple[str, ...] = ()
    error: str | None = None  # "NXDOMAIN", "no answer", "timeout", ...
    round_trips: int = 1


@dataclass(frozen=True)
class DnsObservation:
    name: str
    answers: tuple[ResolverAnswer, ...] = field(default_factory=tuple)
