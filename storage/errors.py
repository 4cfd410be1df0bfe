"""Errors of the storage layer, with the HTTP status and `error_code` they stand for.

`storage/` imports nothing but `config` (docs/architecture.md §2), so it raises these; the upload handlers
turn them into the API's error format (seed 001 §19) in one place.
"""
from __future__ import annotations


class UploadRejected(Exception):
    """An upload that cannot be accepted: ``status``, ``error_code`` and a human ``detail``."""

    status = 400
    error_code = "BAD_REQUEST"

    def __init__(self, detail: str, error_code: str | None = None, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if error_code:
            self.error_code = error_code
        if status:
            self.status = status


class InvalidFileType(UploadRejected):
    """400 `INVALID_FILE_TYPE`: the content is not one of the accepted formats."""

    error_code = "INVALID_FILE_TYPE"


class FileTooLarge(UploadRejected):
    """413 `FILE_TOO_LARGE`: a part (or the whole request) is over its size limit."""

    status, error_code = 413, "FILE_TOO_LARGE"


class InvalidModelFile(UploadRejected):
    """400 `INVALID_MODEL_FILE`: the file has a model format's signature but cannot be read."""

    error_code = "INVALID_MODEL_FILE"


class ModelTooComplex(UploadRejected):
    """413 `MODEL_TOO_COMPLEX`: reading the model needs more memory than an analysis may use."""

    status, error_code = 413, "MODEL_TOO_COMPLEX"


class InvalidImage(UploadRejected):
    """400 `INVALID_FILE_TYPE`: the image has an image signature but cannot be decoded."""

    error_code = "INVALID_FILE_TYPE"


class MalformedForm(UploadRejected):
    """400 `BAD_REQUEST`: the body is not well-formed multipart/form-data."""


class FormFieldError(UploadRejected):
    """422 `VALIDATION_ERROR` with one field error (unknown part, too many files, missing file)."""

    status, error_code = 422, "VALIDATION_ERROR"

    def __init__(self, field: str, message: str):
        super().__init__(f"Validation failed: {field}: {message}")
        self.field_errors = {field: [message]}
