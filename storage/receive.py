"""Streamed multipart/form-data uploads (docs/architecture.md §7): no upload is ever held in memory whole.

A handler decorated with `tornado.web.stream_request_body` creates a `FormReceiver` in
`prepare` and hands every body chunk to `FormReceiver.feed` from `data_received`. The
`streaming-form-data` parser runs in the default thread pool (one chunk at a time: Tornado
waits for each `data_received` before reading more, which is also the back-pressure), so
neither parsing nor disk writes block the event loop.

- File parts (`FilePart`) are spooled to temp files under `DATA_DIR/tmp` while their bytes
  are counted; the moment a part crosses its limit its temp file is removed, nothing more is
  written, and the rest of the body is only counted and dropped. `FormReceiver.result()`
  then raises `FileTooLarge` (413 FILE_TOO_LARGE, seed 001 §15).
- Plain fields are kept in memory, at most `max_field_bytes` each.
- `FormReceiver.cleanup()` removes every temp file; handlers call it whatever happens.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from streaming_form_data import StreamingFormDataParser
from streaming_form_data.parser import ParseFailedException, UnexpectedPartException
from streaming_form_data.targets import BaseTarget

from storage.errors import FileTooLarge, FormFieldError, MalformedForm, UploadRejected

MAX_FIELD_BYTES = 64 * 1024
MULTIPART_SLACK = 256 * 1024  # boundaries, part headers and small fields around the files


@dataclass(frozen=True)
class FileSpec:
    """An accepted file part: form `names` (first is canonical), byte `limit`, how many (`max_count`)."""

    names: tuple[str, ...]
    limit: int
    max_count: int = 1
    label: str = "file"


@dataclass
class FilePart:
    """One received file part: temp `path`, `size` in bytes, the client's `filename` (untrusted)."""

    name: str
    path: Path
    size: int
    filename: str | None


@dataclass
class ReceivedForm:
    """The parsed form: `fields` (name → list of str values) and `files` (name → [FilePart])."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[FilePart]] = field(default_factory=dict)

    def field(self, name: str) -> str | None:
        """The last value of field `name`, or None."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def file(self, name: str) -> FilePart | None:
        """The first file of part `name`, or None."""
        parts = self.files.get(name)
        return parts[0] if parts else None


class _SpoolTarget(BaseTarget):
    """Writes each occurrence of one file part to its own temp file, enforcing the limit."""

    def __init__(self, receiver: FormReceiver, spec: FileSpec):
        super().__init__()
        self.receiver, self.spec = receiver, spec
        self.current: FilePart | None = None
        self.handle = None
        self.count = 0

    def on_start(self) -> None:
        self.count += 1
        if self.count > self.spec.max_count:
            raise FormFieldError(self.spec.names[0],
                                 f"At most {self.spec.max_count} file(s) allowed.")
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.receiver.tmp_dir)
        self.handle = os.fdopen(fd, "wb")
        self.current = FilePart(self.spec.names[0], Path(name), 0, self.multipart_filename)
        self.receiver.temp_paths.append(self.current.path)
        self.multipart_filename = None

    def on_data_received(self, chunk: bytes) -> None:
        part = self.current
        part.size += len(chunk)
        if part.size > self.spec.limit:
            self._discard()
            raise FileTooLarge(f"The {self.spec.label} is larger than the limit of "
                               f"{_megabytes(self.spec.limit)}")
        self.handle.write(chunk)

    def on_finish(self) -> None:
        self.handle.close()
        self.handle = None
        self.receiver.form.files.setdefault(self.spec.names[0], []).append(self.current)
        self.current = None

    def set_multipart_filename(self, filename: str) -> None:
        self.multipart_filename = filename

    def _discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.current is not None:
            self.current.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close a half-written temp file (the body ended early or was rejected)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class _FieldTarget(BaseTarget):
    """Collects the values of one plain form field (each at most MAX_FIELD_BYTES)."""

    def __init__(self, receiver: FormReceiver, name: str):
        super().__init__()
        self.receiver, self.name = receiver, name
        self.buffer = bytearray()
        self.open = False

    def on_start(self) -> None:
        self.buffer = bytearray()
        self.open = True

    def on_data_received(self, chunk: bytes) -> None:
        if len(self.buffer) + len(chunk) > MAX_FIELD_BYTES:
            raise FormFieldError(self.name, f"Longer than {MAX_FIELD_BYTES} bytes.")
        self.buffer += chunk

    def on_finish(self) -> None:
        self.open = False
        try:
            value = self.buffer.decode("utf-8")
        except UnicodeDecodeError:
            raise FormFieldError(self.name, "Not valid UTF-8 text.") from None
        self.receiver.form.fields.setdefault(self.name, []).append(value)


class FormReceiver:
    """Receives one streamed multipart body into a `ReceivedForm`.

    `headers`: the request headers (Content-Type with the boundary). `files`: the accepted
    `FileSpec`s. `fields`: the accepted plain field names; with `strict`, any other part is a
    422 field error, otherwise it is skipped. Raises MalformedForm (400) at once when the
    request is not multipart/form-data.
    """

    def __init__(self, headers, tmp_dir: Path, files: tuple[FileSpec, ...],
                 fields: tuple[str, ...] = (), strict: bool = False):
        self.tmp_dir = Path(tmp_dir)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.form = ReceivedForm()
        self.temp_paths: list[Path] = []
        self.error: UploadRejected | None = None
        self.received = 0
        self.closed = False
        self._lock = asyncio.Lock()
        try:
            self.parser = StreamingFormDataParser(headers, strict=strict)
        except ParseFailedException:
            raise MalformedForm("Expected a multipart/form-data body") from None
        self.spools = [_SpoolTarget(self, spec) for spec in files]
        self.field_targets = [_FieldTarget(self, name) for name in fields]
        for spool in self.spools:
            for name in spool.spec.names:
                self.parser.register(name, spool)
        for target in self.field_targets:
            self.parser.register(target.name, target)

    @staticmethod
    def max_request_bytes(files: tuple[FileSpec, ...]) -> int:
        """The largest body the `files` can arrive in (every limit plus multipart slack)."""
        return sum(spec.limit * spec.max_count for spec in files) + MULTIPART_SLACK

    async def feed(self, chunk: bytes) -> None:
        """Parse one body chunk in a worker thread. Never raises: errors are kept for `result()`.

        After the first error the rest of the body is only counted, never parsed or written.
        """
        self.received += len(chunk)
        if self.error is not None or self.closed:
            return
        try:
            async with self._lock:
                await asyncio.get_running_loop().run_in_executor(None, self._feed, chunk)
        except UploadRejected as exc:
            await self._fail(exc)
        except UnexpectedPartException as exc:
            await self._fail(FormFieldError(exc.part_name or "_form", "Unknown field."))
        except ParseFailedException:
            await self._fail(MalformedForm("Malformed multipart/form-data body"))

    def _feed(self, chunk: bytes) -> None:
        self.parser.data_received(chunk)

    async def _fail(self, error: UploadRejected) -> None:
        self.error = error
        await self.cleanup()

    def result(self) -> ReceivedForm:
        """The parsed form once the body has ended; raises the first error met while receiving."""
        if self.error is not None:
            raise self.error
        unfinished = any(s.handle is not None for s in self.spools) or any(
            t.open for t in self.field_targets)
        if unfinished:
            raise MalformedForm("The multipart/form-data body ended in the middle of a part")
        return self.form

    async def cleanup(self) -> None:
        """Remove every temp file of this request (idempotent; runs in a worker thread).

        Waits for a chunk being parsed, so that no temp file appears after the cleanup.
        """
        self.closed = True
        async with self._lock:
            paths, self.temp_paths = self.temp_paths, []
            if paths or any(s.handle is not None for s in self.spools):
                await asyncio.get_running_loop().run_in_executor(None, self._remove, paths)

    def _remove(self, paths: list[Path]) -> None:
        for spool in self.spools:
            spool.close()
        for path in paths:
            path.unlink(missing_ok=True)


def _megabytes(limit: int) -> str:
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MB"
    return f"{limit} bytes"
