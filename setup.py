"""The one part of the build pyproject.toml cannot yet state without a warning: the capture fast path's record
walk in C (src/vpndoctor/capture/_scan.c). It is optional: without a C compiler and Python's headers the
package still installs, and the same walk runs in Python, about three times slower (`vpndoctor capture`
says so on stderr for a file of 64 MB or more)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "vpndoctor.capture._scan",
            sources=["src/vpndoctor/capture/_scan.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
