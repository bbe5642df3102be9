"""Renderers: they turn observations and findings into text; they never decide."""
