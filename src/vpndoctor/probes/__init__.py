"""Probes drive a sans-I/O protocol machine over `vpndoctor.net` and return observations."""
