"""What probes observe, as data only: frozen models and dataclasses, no I/O.

Probes (probes/) produce these over net/; checks (checks/) judge them and report (report/) renders the
results. Nothing here imports probes/ or net/: a check that reads an observation never loads asyncio or a
socket (the contracts in pyproject.toml, run by `make lint` and tests/unit/test_layers.py, say so).
"""
