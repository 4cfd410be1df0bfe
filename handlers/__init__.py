"""Tornado request handlers, one module per area; each exports `routes`.

The Application is built in `handlers.app`.
"""
