"""The jinja2 environment of the text-file targets (haproxy, nginx, keepalived): templates are package
data in configgen/templates; undefined names are errors, not empty strings."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("vpndoctor.configgen", "templates"),
        autoescape=False,  # configuration files, not HTML; every value is validated by the input model
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_template(name: str, **values: Any) -> str:
    return environment().get_template(name).render(**values)
