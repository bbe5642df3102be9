"""Raw TLS hello codec, sans-I/O: build ClientHellos and parse the server's first flight.

Hand-written rather than driven through the `ssl` module because an auditor must send hellos the local
OpenSSL refuses to send (SSLv3, NULL suites, any suite list in any order), as testssl.sh does in its socket
mode. Nothing here opens a socket, reads a clock or draws random numbers: the caller supplies them.
"""
