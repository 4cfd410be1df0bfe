"""Stub (in progress)."""
routes: list = []
