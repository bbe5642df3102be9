"""Capture analysis: a streaming pcap/pcapng reader, the IP layer, fragment reassembly and UDP
classification. Pure: every function takes bytes or a stream it is given and opens nothing itself
(except `open_capture`, the one entry point that turns a path into a stream).

    analysis       `analyse`: read -> conversations -> `checks.capture` -> `model.CaptureReport`
    conversations  frames -> IKEv2 conversations, ESP and TCP 443 flows, packet counts, warnings
    reader         pcap/pcapng -> `Frame`s (the exact path); drives the fast path
    fastpath       settles bulk packets in place (C `_scan.c` or its Python twin); forks the worker
    worker         the forked worker: the later part of a big mapped file, counted in its own tables
    layout         what those three share: record layouts read in place, kinds, packet cap, page release
    ip, reassembly, udp, tcp   the exact path's layers;  decrypt   --keys
    model          data only: the JSON report and the collected conversations the checks judge
"""
