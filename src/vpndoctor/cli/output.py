"""One way out for every command: the terminal (a rich renderer from `report/`), `--json`, `--html`.

The consoles are made on first use, so `--json` runs never import rich. A command checks its `--html` target
before it probes (a wrong path is a usage error, not a lost 30-second audit), then hands its report to
`emit`, which writes the HTML, prints the JSON or calls the renderer.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from vpndoctor.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

R = TypeVar("R")


class _LazyConsole:
    """A rich Console made on first use."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out = cast("Console", _LazyConsole())
err = cast("Console", _LazyConsole(stderr=True))


def check_writable(path: str | None, option: str = "--html") -> None:
    """A UsageError now when `path` cannot be written later (its directory is missing or read-only)."""
    if not path:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write in {parent}")


def write_text(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def to_json(report: Any) -> str:
    """A pydantic model by its schema, a dataclass or a dict by json.dumps."""
    if hasattr(report, "model_dump_json"):
        return str(report.model_dump_json())
    if is_dataclass(report) and not isinstance(report, type):
        return json.dumps(asdict(report))
    return json.dumps(report)


def emit(
    report: R,
    *,
    as_json: bool,
    render: Callable[[R, Console], None] | None = None,
    html: str | None = None,
    render_html: Callable[[R], str] | None = None,
) -> None:
    """The report out: HTML to `html` (if given), then JSON on stdout or the terminal renderer."""
    if html and render_html is not None:
        write_text(html, render_html(report))
    if as_json:
        print(to_json(report))
    elif render is not None:
        render(report, out)


def warn(message: str, label: str = "warning") -> None:
    """One line on stderr, never taken for markup: `vpndoctor: warning: ...`."""
    prefix = f"vpndoctor: {label}: " if label else "vpndoctor: "
    err.print(f"{prefix}{message}", highlight=False, markup=False, soft_wrap=True)


@contextlib.contextmanager
def status(text: str, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while a probe runs (none when `quiet`, as with --json); yields a function that
    updates its text."""
    if quiet:
        yield lambda _msg: None
        return
    with err.status(text) as spinner:
        yield lambda msg: spinner.update(msg)

