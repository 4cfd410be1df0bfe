"""Domain errors raised by `documents/` and rendered by the one error renderer in handlers.

Every error carries the HTTP status, the `error_code` of seed 001 §19 (plus our own where
the seed has none) and a human `detail`. Handlers never build error bodies by hand.
"""
from __future__ import annotations


class DomainError(Exception):
    """A rule of the data was broken. Rendered as ``{"detail", "error_code", "field_errors"}``."""

    status = 400
    error_code = "BAD_REQUEST"

    def __init__(self, detail: str, error_code: str | None = None,
                 field_errors: dict[str, list[str]] | None = None, status: int | None = None,
                 **extra):
        super().__init__(detail)
        self.detail = detail
        if error_code:
            self.error_code = error_code
        if status:
            self.status = status
        self.field_errors = field_errors
        self.extra = extra


class BadRequest(DomainError):
    status, error_code = 400, "BAD_REQUEST"


class Unauthorized(DomainError):
    status, error_code = 401, "UNAUTHORIZED"


class Forbidden(DomainError):
    status, error_code = 403, "FORBIDDEN"


class NotFound(DomainError):
    """404 with seed 001 §19's `NOT_FOUND` code; a precise code given (`MODEL_NOT_FOUND`,
    `NOT_IN_CART`) is kept beside it as `reason`."""

    status, error_code = 404, "NOT_FOUND"

    def __init__(self, detail: str, error_code: str | None = None, **kwargs):
        if error_code and error_code != "NOT_FOUND":
            kwargs.setdefault("reason", error_code)
        super().__init__(detail, **kwargs)


class Conflict(DomainError):
    status, error_code = 409, "CONFLICT"


class Invalid(DomainError):
    """422 with per-field messages (seed 001 §19 `field_errors`)."""

    status, error_code = 422, "VALIDATION_ERROR"

    def __init__(self, field_errors: dict[str, list[str]], detail: str = "Validation failed"):
        super().__init__(detail, field_errors=field_errors)


class PaymentFailed(DomainError):
    status, error_code = 402, "PAYMENT_FAILED"


class RateLimited(DomainError):
    """429 `RATE_LIMIT_EXCEEDED` (seed 001 §21); `retry_after` in whole seconds."""

    status, error_code = 429, "RATE_LIMIT_EXCEEDED"

    def __init__(self, retry_after: int):
        super().__init__(f"Rate limit exceeded. Try again in {retry_after} seconds.",
                         retry_after=retry_after)
        self.retry_after = retry_after
