"""Object storage (docs/architecture.md §7): backends behind one interface, upload validation, 3D analysis
and image processing off the event loop.

`open_storage(settings)` picks S3 when `S3_BUCKET_NAME` is set, else local disk under
`DATA_DIR/files`.
"""
from __future__ import annotations

from config import Settings
from storage.base import Storage


async def open_storage(settings: Settings) -> Storage:
    """The configured backend, opened and ready."""
    if settings.s3_bucket_name:
        from storage.s3 import S3Storage

        backend = S3Storage(settings)
        await backend.open()
        return backend
    from storage.local import LocalStorage

    return LocalStorage(settings.data_dir / "files", settings)
