"""ESP (RFC 4303) in UDP (RFC 3948) and the few inner packets the tunnel probes send, sans-I/O: bytes in,
bytes out, keys and randomness passed in. `net.esp` moves the datagrams; `probes.tunnel` drives them."""
