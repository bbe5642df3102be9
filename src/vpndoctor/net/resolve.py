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
