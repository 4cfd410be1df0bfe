"""Adapters to outside services that are not collections (docs/architecture.md §2): the
payment provider (`payments`), OAuth over HTTP (`oauth`), mail transports (`mail`) and the
job queue client (`jobs`, with `memory_queue` in process).
"""
