"""Helpers shared by lab tests."""

from __future__ import annotations

import shutil

import pytest


def scenarios(*names: str) -> pytest.MarkDecorator:
    """Parametrise a test over lab scenarios (one lab per scenario, shared by all tests that ask)."""
    return pytest.mark.parametrize("lab", names, indirect=True, ids=list(names))


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not installed (scripts/install-deps.sh installs it)")
    return path
