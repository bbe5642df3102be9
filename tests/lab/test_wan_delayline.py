"""Pure tests of the wan's scheduling part (no sockets, fake clock) and of its argument checking."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from vpndoctor.lab.wan import DelayLine

SRC = Path(__file__).resolve().parents[2] / "src"


def test_delay_is_respected_with_a_fake_clock() -> None:
    line = DelayLine(delay_s=0.05)
    assert line.next_due() is None
    assert line.push(b"f1", now=10.0)
    assert line.next_due() == pytest.approx(10.05)
    assert line.due(10.0) == []
    assert line.due(10.049) == []
    assert line.due(10.05) == [b"f1"]
    assert line.next_due() is None
    assert line.due(20.0) == []


def test_fifo_order_and_partial_release() -> None:
    line = DelayLine(delay_s=1.0)
    for i in range(5):
        assert line.push(bytes([i]), now=100.0 + i * 0.1)
    assert len(line) == 5
    assert line.due(101.25) == [b"\x00", b"\x01", b"\x02"]
    assert line.next_due() == pytest.approx(101.3)
    assert line.due(1000.0) == [b"\x03", b"\x04"]
    assert len(line) == 0
    assert line.stats.accepted == 5
    assert line.stats.released == 5


def test_zero_delay_releases_at_the_same_instant() -> None:
    line = DelayLine(delay_s=0.0)
    assert line.push(b"x", now=5.0)
    assert line.next_due() == 5.0
    assert line.due(5.0) == [b"x"]


@pytest.mark.parametrize("loss_pct", [10.0, 30.0, 50.0])
def test_loss_rate_is_within_statistical_bounds(loss_pct: float) -> None:
    line = DelayLine(delay_s=0.0, loss_pct=loss_pct, rng=random.Random(1234), max_queue=20_000)
    n = 10_000
    kept = sum(line.push(b"f", now=0.0) for _ in range(n))
    lost_pct = 100.0 * (n - kept) / n
    assert abs(lost_pct - loss_pct) <= 2.0
    assert line.stats.lost == n - kept
    assert len(line.due(0.0)) == kept


def test_same_seed_same_losses() -> None:
    def pattern(seed: int) -> list[bool]:
        line = DelayLine(delay_s=0.0, loss_pct=25.0, rng=random.Random(seed))
        return [line.push(b"f", now=float(i)) for i in range(1000)]

    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)


def test_zero_loss_loses_nothing() -> None:
    line = DelayLine(delay_s=0.0, loss_pct=0.0, rng=random.Random(1))
    assert all(line.push(b"f", now=0.0) for _ in range(5000))
    assert line.stats.lost == 0


def test_full_loss_loses_everything() -> None:
    line = DelayLine(delay_s=0.0, loss_pct=100.0, rng=random.Random(1))
    assert not any(line.push(b"f", now=0.0) for _ in range(5000))
    assert line.stats.lost == 5000
    assert line.next_due() is None


def test_queue_bound_tail_drops_and_recovers() -> None:
    line = DelayLine(delay_s=1.0, max_queue=3)
    assert [line.push(bytes([i]), now=0.0) for i in range(5)] == [True, True, True, False, False]
    assert line.stats.overflow == 2
    assert line.due(1.0) == [b"\x00", b"\x01", b"\x02"]
    assert line.push(b"\x05", now=1.0)
    assert line.due(2.0) == [b"\x05"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delay_s": -0.001},
        {"delay_s": float("nan")},
        {"loss_pct": -1.0},
        {"loss_pct": 100.5},
        {"max_queue": 0},
    ],
)
def test_invalid_parameters_are_rejected(kwargs: dict[str, float]) -> None:
    params: dict[str, float] = {"delay_s": 0.0} | kwargs
    with pytest.raises(ValueError):
        DelayLine(**params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [
        ["--if-a", "x"],
        ["--if-a", "x", "--if-b", "y", "--loss-pct", "150"],
        ["--if-a", "x", "--if-b", "y", "--delay-ms", "-5"],
        ["--if-a", "x", "--if-b", "y", "--delay-ms", "soon"],
        ["--if-a", "vdw-no-such0", "--if-b", "vdw-no-such1"],
        ["--if-a", "lo", "--if-b", "lo"],
    ],
)
def test_cli_errors_are_one_line_and_exit_2(args: list[str]) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "vpndoctor.lab.wan", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert "error:" in lines[0]
    assert "Traceback" not in res.stderr
