"""vpndoctor: diagnose Always On VPN, DirectAccess and IKEv2 gateways from the outside."""

# The single source of the version (pyproject.toml reads it): importlib.metadata would cost every command
# ~0.1 s of start-up.
__version__ = "0.1.0"

__all__ = ["__version__"]
