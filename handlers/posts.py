"""handlers/posts.py (community issue, in progress)."""
routes: list = []
