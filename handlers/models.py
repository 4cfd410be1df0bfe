"""PENDING: routes of this area are being built."""
routes: list = []
