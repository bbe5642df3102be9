"""The project's error types.

Every failure that reaches the user is one of these; the CLI prints its message on one line and exits 2.
"""


class VpndoctorError(Exception):
    """Base class: a failure with a message fit for one line on a terminal."""


class UsageError(VpndoctorError):
    """The user asked for something that cannot be done as asked (bad argument, bad file)."""


class LocalEnvironmentError(VpndoctorError):
    """This machine lacks something: privileges, a system package, kernel support."""


class LabError(VpndoctorError):
    """The lab could not be built, started or torn down."""
