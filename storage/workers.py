"""Worker process pools for CPU- and memory-heavy work: trimesh analysis and Pillow images.

Each pool is a ProcessPoolExecutor started through forkserver (never a fork of a process that
already runs threads) whose workers are recycled after `RECYCLE_AFTER` tasks (a worker that
parsed a large file does not keep its memory) and start with

- an address-space limit (`resource.RLIMIT_AS`, ANALYSIS_MEMORY_MB / IMAGE_MEMORY_MB): an
  allocation past it raises MemoryError in the worker, which the caller turns into a clean
  4xx, instead of the machine swapping or the OOM killer picking the server;
- nice 10, so the server's event loop wins the CPU over them;
- one thread for numpy's BLAS (its per-thread buffers would count against the limit).

The pool's size is the concurrency limit of its work: a request waits for a free worker.
"""
from __future__ import annotations

import multiprocessing
import os
import resource
from concurrent.futures import ProcessPoolExecutor
from typing import Any

RECYCLE_AFTER = 20


def open_pool(workers: int, memory_bytes: int, *, numeric: bool = False) -> ProcessPoolExecutor:
    """A pool of `workers` processes, each limited to `memory_bytes` of address space; with
    `numeric`, numpy is loaded and its BLAS buffers taken before the work (see start_worker)."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
        max_tasks_per_child=RECYCLE_AFTER, initializer=start_worker,
        initargs=(memory_bytes, numeric))


def start_worker(memory_bytes: int, numeric: bool = False) -> None:
    """Worker initializer: memory limit, low priority, single-threaded BLAS.

    With `numeric`, one small matrix product runs first: OpenBLAS takes its buffers on its
    first call and aborts the process (no MemoryError) when it cannot, so it takes them while
    the address space is still free, and a large model then fails in numpy with MemoryError.
    """
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(10, os.getpriority(os.PRIO_PROCESS, 0)))
    except (AttributeError, OSError):
        pass
    if memory_bytes:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    if numeric:
        import numpy

        numpy.ones((64, 64)) @ numpy.ones((64, 64))


def replace_pool(services: Any, attribute: str, broken: ProcessPoolExecutor, *,
                 kill: bool) -> None:
    """Put a fresh pool (same size, start method and initializer) in place of `broken` at
    `services.<attribute>`.

    With `kill`, the old workers are terminated first (a hung task). Only the first caller
    for a given broken pool replaces it.
    """
    if getattr(services, attribute) is not broken:
        return
    options = {"max_workers": getattr(broken, "_max_workers", 1),
               "mp_context": getattr(broken, "_mp_context", None),
               "initializer": getattr(broken, "_initializer", None),
               "initargs": getattr(broken, "_initargs", ())}
    if getattr(broken, "_max_tasks_per_child", None):
        options["max_tasks_per_child"] = broken._max_tasks_per_child
    setattr(services, attribute, ProcessPoolExecutor(**options))
    if kill:
        for process in list((getattr(broken, "_processes", None) or {}).values()):
            if process.is_alive():
                process.terminate()
    broken.shutdown(wait=False, cancel_futures=True)
