"""Name resolution for probes (the system resolver, bounded by a timeout)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from vpndoctor.errors import UsageError


async def resolve_one(target: str, *, timeout_s: float = 5.0) -> str:
    """An IP address literal is returned as is; a name is resolved (IPv4 preferred, like most clients)."""
    try:
        return str(ipaddress.ip_address(target.strip("[]")))
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(target, None, type=socket.SOCK_DGRAM), timeout_s)
    except TimeoutError:
        raise UsageError(f"cannot resolve {target}: no answer within {timeout_s:g} s") from None
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve {target}: {exc.strerror}") from None
    addrs = [str(info[4][0]) for info in infos]
    v4 = [a for a in addrs if ":" not in a]
    return (v4 or addrs)[0]


async def resolve_addresses(
    name: str, *, timeout_s: float = 5.0, server: str | None = None, port: int = 53
) -> tuple[str, ...]:
    """Every address `name` resolves to (A and AAAA), in the resolver's order, once.

    With `server`, asks that DNS server over UDP (dnspython) instead of the system resolver. Callers that
    check the answer against a policy must use these very addresses afterwards (never resolve again).
    Raises UsageError with one line when nothing comes back.
    """
    if server is None:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(name, None, type=socket.SOCK_DGRAM, flags=socket.AI_ADDRCONFIG), timeout_s
            )
        except TimeoutError:
            raise UsageError(f"cannot resolve {name}: no answer within {timeout_s:g} s") from None
        except socket.gaierror as exc:
            raise UsageError(f"cannot resolve {name}: {exc.strerror}") from None
        return tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    import dns.asyncresolver
    import dns.exception
    import dns.rdatatype
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [server]
    resolver.port = port
    resolver.lifetime = resolver.timeout = timeout_s
    found: list[str] = []
    for rtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        try:
            answer = await resolver.resolve(name, rtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            raise UsageError(f"cannot resolve {name}: NXDOMAIN") from None
        except (dns.exception.DNSException, OSError) as exc:
            raise UsageError(f"cannot resolve {name}: {type(exc).__name__}") from None
        found += [r.to_text() for r in answer]
    if not found:
        raise UsageError(f"cannot resolve {name}: no address")
    return tuple(dict.fromkeys(found))
