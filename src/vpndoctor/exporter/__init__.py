"""`vpndoctor exporter`: vpndoctor's probes served the Prometheus multi-target way.

config (modules, limits, allow-list; pydantic) and allow (target names and addresses) are pure; metrics
builds the exposition text from observations and reports (pure); service runs the probes (the only module
here that imports probes/ and net/). cli/exporter.py wires it to net/http_server.py.
"""
