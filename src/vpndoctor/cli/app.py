"""The root `vpndoctor` command: a lazy registry of the commands, and one-line errors.

Each command lives in its own module of this package and is imported only when it runs (or when the help
lists them all): `vpndoctor capture x.pcap` never imports the TLS auditor, the lab or the event readers.
Nothing here reads `sys.argv` at import time.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from vpndoctor import __version__
from vpndoctor.cli.output import err, out
from vpndoctor.errors import VpndoctorError

# name -> (module, attribute): the typer.Typer that holds the command, or the group's subcommands (GROUPS).
# The order is the order of `vpndoctor --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "diagnose": ("vpndoctor.cli.diagnose", "app"),
    "ike": ("vpndoctor.cli.ike", "app"),
    "connect": ("vpndoctor.cli.connect", "app"),
    "scan": ("vpndoctor.cli.scan", "app"),
    "cert": ("vpndoctor.cli.cert", "app"),
    "sstp": ("vpndoctor.cli.sstp", "sstp_app"),
    "iphttps": ("vpndoctor.cli.sstp", "iphttps_app"),
    "tls": ("vpndoctor.cli.tls", "app"),
    "capture": ("vpndoctor.cli.capture", "app"),
    "events": ("vpndoctor.cli.events", "events_app"),
    "explain": ("vpndoctor.cli.events", "explain_app"),
    "address": ("vpndoctor.cli.address", "address_app"),
    "isatap": ("vpndoctor.cli.address", "isatap_app"),
    "config": ("vpndoctor.cli.config", "config_app"),
    "lab": ("vpndoctor.cli.lab", "lab_app"),
    "exporter": ("vpndoctor.cli.exporter", "app"),
}
GROUPS = frozenset({"isatap", "config", "lab"})


def load_command(name: str) -> Any:
    """The click command (or group) registered as `name`, imported now."""
    module, attribute = COMMANDS[name]
    holder = getattr(importlib.import_module(module), attribute)
    command = typer.main.get_group(holder) if name in GROUPS else typer.main.get_command(holder)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A typer group whose commands are imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = self.commands[cmd_name] = load_command(cmd_name)
        return command


app = typer.Typer(
    name="vpndoctor",
    cls=LazyGroup,
    help="Diagnose Always On VPN (IKEv2, SSTP), DirectAccess (IP-HTTPS) and IKEv2 gateways from the outside.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"vpndoctor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """vpndoctor: find why remote-access VPN clients cannot connect (error 809 and friends), and fix it."""


def _click_exceptions() -> Any:
    # typer >= 0.20 carries its own copy of click as typer._click; older releases use the click package.
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def _one_line(text: str) -> str:
    # A file name or argument with a newline or escape in it must not break the one-line promise.
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _fail(message: str) -> None:
    err.print(f"vpndoctor: error: {_one_line(message)}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(2)


def _usage_message(exc: Any) -> str:
    """click's usage error as one line: the message, then where the help is (click prints three lines and
    typer a rich box)."""
    message = str(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        if ctx.command.get_help_option(ctx) is None:
            return message
        return f"{message} (try '{ctx.command_path} {ctx.help_option_names[0]}')"
    # Some parser errors ("Option '--prefix' requires an argument.") carry no context: find the command
    # from the words of the command line.
    command, words = typer.main.get_command(app), ["vpndoctor"]
    for arg in sys.argv[1:]:
        get = getattr(command, "get_command", None)
        sub = get(None, arg) if get is not None else None
        if sub is None:
            break
        command, words = sub, [*words, arg]
    return f"{message} (try '{' '.join(words)} --help')"


def run() -> None:
    # standalone_mode=False: click hands its usage errors to us instead of printing them in its own shape.
    click_errors = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except VpndoctorError as exc:
        _fail(str(exc))
    except click_errors.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help (rich prints it already)
            if exc.format_message().strip():
                typer.echo(exc.format_message())
            sys.exit(exc.exit_code)
        if exc.exit_code != 2:  # not a usage error (click.FileError and the like): still one line
            err.print(f"vpndoctor: error: {_one_line(_usage_message(exc))}", highlight=False, markup=False)
            sys.exit(exc.exit_code)
        _fail(_usage_message(exc))
    except typer.Abort:
        err.print("vpndoctor: aborted", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("vpndoctor: interrupted", highlight=False)
        sys.exit(130)
    # Without standalone mode, typer.Exit(n) from a command (and --help, --version) comes back as n.
    if isinstance(code, int) and code:
        sys.exit(code)
