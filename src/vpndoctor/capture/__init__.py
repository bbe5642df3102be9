"""Capture analysis: a streaming pcap/pcapng reader, the IP layer, fragment reassembly and UDP
classification. Pure: every function takes bytes or a stream it is given and opens nothing itself
(except `open_capture`, the one entry point that turns a path into a stream)."""
