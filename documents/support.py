"""PENDING: documents of this area are being built."""
INDEXES: dict = {}
