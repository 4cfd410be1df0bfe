"""The schema kit of the handlers: fields and pre-load steps that several areas share.

- `MoneyAmount`: a decimal amount with at most two places, loaded as integer cents
  (docs/architecture.md §5);
- `strip_strings` / `drop_blanks`: a body's string values without surrounding blanks, a
  query's empty parameters (``?status=``) treated as absent;
- `BlankDropping`: the base of query schemas whose clients send empty parameters;
- `take_aliases` / `TESTIMONIAL_ALIASES`, `testimonial_out`: the seeds' field names accepted
  beside ours and answered beside ours (docs/api-contract.md §3);
- `absolute_file_urls`: a body's ``/files/<key>`` image URLs stored absolute
  (docs/api-contract.md §2).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from marshmallow import ValidationError, fields, pre_load

from documents.support import absolute_file_url
from handlers.base import ApiSchema


class MoneyAmount(fields.Field):
    """A decimal amount with at most two places (``25``, ``25.5``, ``"25.50"``) in
    `min_cents`..`max_cents`, loaded as integer cents.

    Booleans, NaN, out-of-range amounts and a third decimal place are field errors.
    """

    def __init__(self, *, max_cents: int, min_cents: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.min_cents, self.max_cents = min_cents, max_cents

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("Must be a decimal amount")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError("Must be a decimal amount") from None
        if not amount.is_finite():
            raise ValidationError("Must be a decimal amount")
        # the range first: quantize() raises InvalidOperation past 28 digits
        if amount * 100 < self.min_cents:
            raise ValidationError(f"Must be at least {Decimal(self.min_cents) / 100}"
                                  if self.min_cents > 1 else
                                  "Must be greater than 0" if self.min_cents == 1 else
                                  "Must not be negative")
        if amount * 100 > self.max_cents:
            raise ValidationError(f"Must be at most {Decimal(self.max_cents) / 100}")
        if amount != amount.quantize(Decimal("0.01")):
            raise ValidationError("At most two decimal places")
        return int(amount * 100)


def strip_strings(data, keep: tuple[str, ...] = ()):
    """A body's string values without surrounding blanks (non-dicts unchanged), except the
    fields of `keep` (texts whose spacing is content)."""
    if isinstance(data, dict):
        return {k: v.strip() if isinstance(v, str) and k not in keep else v
                for k, v in data.items()}
    return data


def drop_blanks(data):
    """A query with empty parameters (``?status=``) treated as absent."""
    return {k: v for k, v in data.items() if v != ""} if isinstance(data, dict) else data


class BlankDropping(ApiSchema):
    """Query schemas whose clients send empty parameters (`?status=&page=1`): blanks are
    treated as absent."""

    @pre_load
    def _drop_blank(self, data, **kwargs):
        return drop_blanks(data)


# seed 004 `Testimonial` names → ours
TESTIMONIAL_ALIASES = {"author": "author_name", "company": "author_title", "text": "content",
                       "featured": "is_featured"}


def take_aliases(data, aliases: dict[str, str]):
    """A body with the seeds' field names (`aliases`: seed name → ours) moved to ours; ours
    wins when both are sent. Non-dicts unchanged."""
    if not isinstance(data, dict):
        return data
    out = {k: v for k, v in data.items() if k not in aliases}
    for seed_name, ours in aliases.items():
        if seed_name in data:
            out.setdefault(ours, data[seed_name])
    return out


def testimonial_out(doc: dict) -> dict:
    """A rendered testimonial with seed 004's names beside ours: `author`, `company`,
    `text`, `featured`, `verified` (approved)."""
    return {**doc, **{seed: doc.get(ours) for seed, ours in TESTIMONIAL_ALIASES.items()},
            "verified": bool(doc.get("is_approved"))}


IMAGE_URL_FIELDS = ("avatar_url", "image_url", "featured_image")


def absolute_file_urls(data: dict, settings) -> dict:
    """`data` with its relative ``/files/<key>`` image URLs (`IMAGE_URL_FIELDS`) made the
    absolute URLs the storage serves them at (CDN_URL or PUBLIC_URL); others unchanged."""
    return {k: absolute_file_url(v, settings) if k in IMAGE_URL_FIELDS and isinstance(v, str)
            and v.startswith("/files/") else v for k, v in data.items()}
