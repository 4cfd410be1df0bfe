"""MongoDB documents: one module per collection group, each with its marshmallow schema,
its indexes and the async functions that read and write it (docs/architecture.md §2, §4).

All database calls of the project live in this package, so that a move from motor to
PyMongo's `AsyncMongoClient` touches this folder alone.
"""
