"""Shared fixtures. Lab tests bring up the real lab (namespaces, strongSwan, nftables, dnsmasq, sstpd)
once per scenario and always tear it down, even when a test fails or the run is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from vpndoctor.lab.handle import Lab
from vpndoctor.lab.runner import lab_down, lab_up, preflight
from vpndoctor.lab.scenario import load_scenario

# Not the CLI's default prefix, so a developer's `vpndoctor lab up` and the suite can run side by side.
TEST_PREFIX = os.environ.get("VPNDOCTOR_TEST_PREFIX", "vdt")


def _lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces)"
    try:
        preflight()
    except Exception as exc:  # noqa: BLE001 - any reason is a reason to skip, stated in the skip
        return str(exc)
    name = f"{TEST_PREFIX}-probe"
    proc = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        return f"network namespaces not allowed here: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    return None


_REASON: str | None = None
_CHECKED = False


def lab_skip_reason() -> str | None:
    global _REASON, _CHECKED
    if not _CHECKED:
        _REASON, _CHECKED = _lab_unavailable(), True
    return _REASON


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lab_items = [i for i in items if i.get_closest_marker("lab")]
    if not lab_items:
        return
    reason = lab_skip_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        # In CI the lab is the point: a missing capability must fail loudly, not skip quietly.
        raise pytest.UsageError(f"lab tests cannot run in CI: {reason}")
    for item in lab_items:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def _terminate_cleanly() -> Iterator[None]:
    # CI stops a run with SIGTERM: turn it into KeyboardInterrupt so fixture finalizers tear the lab down.
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The lab for `request.param` (a scenario name); use with indirect parametrisation."""
    scenario = load_scenario(getattr(request, "param", "healthy"))
    lab_down(TEST_PREFIX)  # a lab left over by a crashed run
    lab_up(scenario, TEST_PREFIX)
    try:
        yield Lab(TEST_PREFIX)
    finally:
        lab_down(TEST_PREFIX)
