"""Tornado request handlers, one module per area; each exports `routes`.

The Application is built in `handlers.app`; the services it hands to handlers are opened
by the composition root, `composition.py`.
"""
