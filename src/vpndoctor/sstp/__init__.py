"""[MS-SSTP] codec, sans-I/O: SSTP packets (control messages, attributes, data) and the HTTPS preamble.

Hand-written because no maintained Python library speaks SSTP (sstp-server's codec is a server's private
implementation). Nothing here opens a socket, reads a clock or draws random numbers: the caller supplies them.
"""
