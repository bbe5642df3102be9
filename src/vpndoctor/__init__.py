"""vpndoctor: diagnose Always On VPN, DirectAccess and IKEv2 gateways from the outside."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vpndoctor")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
