"""Deployment YAML for `vpndoctor config` (configgen/model.py `load_deployment`: size, nesting and alias
guards, PyYAML, the pydantic model), then the configuration of one target (picked by the input's length)
generated and put through the same self-check the CLI runs (configgen/validate.py)."""

from __future__ import annotations

from fuzz.harnesses._util import scratch_file
from vpndoctor.configgen import (  # noqa: F401 - imported lazily by generate
    TARGETS,
    f5,
    generate,
    haproxy,
    keepalived,
    kemp,
    netscaler,
    nftables,
    nginx,
    windows,
)
from vpndoctor.configgen.model import load_deployment
from vpndoctor.configgen.validate import VALIDATED_TARGETS, validate
from vpndoctor.errors import UsageError

OURS = (UsageError,)
MAX_LEN = 4096


def one_input(data: bytes) -> None:
    path = scratch_file("deployment.yaml", data)
    try:
        deployment = load_deployment(str(path))
    except UsageError:
        return
    target = tuple(TARGETS)[len(data) % len(TARGETS)]
    try:
        text = generate(target, deployment)
    except UsageError:
        return
    if target in VALIDATED_TARGETS:
        problems = validate(target, text)
        assert not problems, f"generated {target} configuration fails its check: {problems[0]}"
