"""handlers/communities.py (community issue, in progress)."""
routes: list = []
