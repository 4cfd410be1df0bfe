"""Site content routes (work in progress)."""
routes: list = []
