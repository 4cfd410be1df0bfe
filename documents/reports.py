"""documents/reports.py (community issue, in progress)."""
INDEXES: dict = {}
