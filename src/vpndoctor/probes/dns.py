"""Resolve the VPN server name through the system resolver and through each resolver the user names
(dnspython, UDP, bounded by a timeout). Observations only: judging them is `checks.diagnose`'s job."""

from __future__ import annotations

import asyncio
import socket

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from vpndoctor.observations.dns import DnsObservation, ResolverAnswer


async def _system(name: str, timeout_s: float) -> ResolverAnswer:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(name, None, type=socket.SOCK_DGRAM), timeout_s)
    except TimeoutError:
        return ResolverAnswer("system", error="timeout")
    except socket.gaierror as exc:
        nx = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5))
        return ResolverAnswer("system", error="NXDOMAIN" if nx else (exc.strerror or str(exc)))
    addrs = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    return ResolverAnswer("system", addresses=addrs)


async def _via(server: str, name: str, timeout_s: float) -> ResolverAnswer:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [server]
    resolver.lifetime = timeout_s
    resolver.timeout = timeout_s
    addrs: list[str] = []
    errors: list[str] = []
    for rtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        try:
            answer = await resolver.resolve(name, rtype, raise_on_no_answer=False)
            addrs += [r.to_text() for r in answer]
        except dns.resolver.NXDOMAIN:
            return ResolverAnswer(server, error="NXDOMAIN", round_trips=1)
        except dns.exception.Timeout:
            errors.append("timeout")
        except (dns.exception.DNSException, OSError) as exc:
            errors.append(type(exc).__name__)
    if addrs:
        return ResolverAnswer(server, addresses=tuple(addrs))
    return ResolverAnswer(server, error=errors[0] if errors else "no answer")


async def resolve_all(name: str, resolvers: list[str], *, timeout_s: float = 3.0) -> DnsObservation:
    tasks = [_system(name, timeout_s)] + [_via(r, name, timeout_s) for r in resolvers]
    answers = await asyncio.gather(*tasks)
    return DnsObservation(name=name, answers=tuple(answers))
