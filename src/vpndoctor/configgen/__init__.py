"""Configuration generators: a deployment description in, the configuration of each device out
(`vpndoctor config TARGET`). One module per target; `generate` is the single entry point."""

from __future__ import annotations

from collections.abc import Sequence

from vpndoctor.configgen.model import Deployment
from vpndoctor.configgen.recipes import RECIPES, TARGETS, select

__all__ = ["RECIPES", "TARGETS", "Deployment", "generate"]


def generate(target: str, d: Deployment, recipes: Sequence[str] | None = None) -> str:
    """The configuration text of `target` for `d`: `recipes`, or every recipe of the target that applies."""
    from vpndoctor.configgen import f5, haproxy, keepalived, kemp, netscaler, nftables, nginx, windows

    chosen = select(target, d, recipes)
    renderers = {
        "netscaler": netscaler.render,
        "f5": f5.render,
        "kemp": kemp.render,
        "haproxy": haproxy.render,
        "nginx": nginx.render,
        "nftables": nftables.render,
        "keepalived": keepalived.render,
        "windows": windows.render,
    }
    return renderers[target](d, chosen)
