"""Checks are pure: observations in, findings out. They never open a socket."""
