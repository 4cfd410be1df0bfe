"""documents/posts.py (community issue, in progress)."""
INDEXES: dict = {}
