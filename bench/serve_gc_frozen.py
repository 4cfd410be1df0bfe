"""Diagnostic for `realtime_bench.py --ours-gc-freeze`: `server.py` with `gc.freeze()` once
start-up (imports, services, seeded documents) is done, before serving.

Not how the server runs: it shows what moving the start-up heap out of the garbage
collector's reach (the suggested change to `server.py`) does to CPU per delivery. Same
arguments as `server.py`.
"""
from __future__ import annotations

import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import server

_open_services = server.open_services


async def open_services_then_freeze(*args, **kwargs):
    """`open_services`, then every object alive so far moves to the permanent generation."""
    services = await _open_services(*args, **kwargs)
    gc.collect()
    gc.freeze()
    return services


server.open_services = open_services_then_freeze

if __name__ == "__main__":
    server.main()
