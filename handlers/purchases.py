"""Purchase routes (seed 000 §4, seed 004 "Purchase Success"): the buyer's library, one
purchase, signed download links counted against the download limit, and staff refunds.
Rules live in `documents.purchases`."""
from __future__ import annotations

from datetime import timedelta

from marshmallow import fields, validate

from documents import purchases
from documents.common import iso, utcnow
from documents.payments import ProviderUnavailable
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds, staff
from storage.store import signed_url


class RefundSchema(ApiSchema):
    reason = fields.String(validate=validate.Length(max=500))


class PurchasesHandler(ApiHandler):
    @query(PageQuery)
    @responds(paginated=True)
    async def get(self) -> None:
        """The caller's purchases, newest first, with model cards (paginated, seed 001 §22)."""
        items, meta = await purchases.list_purchases(self.db, self.current_user,
                                                     page=self.query["page"],
                                                     limit=self.query["limit"])
        self.write_page(items, meta)


class PurchaseHandler(ApiHandler):
    @responds()
    async def get(self, transaction_id: str) -> None:
        """One of the caller's transactions (``TXN-YYYY-NNNNNN``) with its purchase, model
        and order number; 404 TRANSACTION_NOT_FOUND otherwise."""
        self.write_json(await purchases.get_purchase(self.db, self.current_user, transaction_id))


class _DownloadBase(ApiHandler):
    async def write_link(self, **purchase_ref) -> None:
        """Count a download, then answer with a URL valid DOWNLOAD_URL_TTL_MINUTES."""
        claim = await purchases.claim_download(self.db, self.current_user, **purchase_ref)
        ttl = self.settings_.download_url_ttl_minutes * 60
        url = await signed_url(self.services.storage, claim.pop("file_key"), ttl,
                               claim["filename"])
        self.write_json({"download_url": url, "expires_at": iso(utcnow() + timedelta(seconds=ttl)),
                         "expires_in": ttl, **claim})


class DownloadHandler(_DownloadBase):
    @responds()
    async def get(self, model_id: str) -> None:
        """A short-lived signed download URL for a bought model: ``{download_url, expires_at,
        expires_in, download_count, download_limit, remaining_downloads, ...}``; 403
        NOT_PURCHASED / PURCHASE_REVOKED / DOWNLOAD_LIMIT_REACHED; 404 for unknown models."""
        await self.write_link(model_id=model_id)


class DownloadLinkHandler(_DownloadBase):
    @responds()
    async def get(self, transaction_id: str) -> None:
        """The same signed download URL, by transaction id (seed 004 "Purchase Success")."""
        await self.write_link(transaction_id=transaction_id)


class RefundHandler(ApiHandler):
    @staff("revenue.manage")
    @body(RefundSchema)
    @responds()
    async def post(self, transaction_id: str) -> None:
        """Refund one transaction (seed 000 §4, admin only): the provider refunds it, the
        purchase is revoked, the seller's ledger line reversed. 409 ALREADY_REFUNDED; 404
        TRANSACTION_NOT_FOUND."""
        if self.services.payments is None:
            raise ProviderUnavailable("Payments are not configured")
        self.write_json(await purchases.refund_transaction(
            self.db, self.services.payments, transaction_id, self.current_user))


routes = [
    (r"/api/purchases", PurchasesHandler),
    (r"/api/purchases/([^/]+)/download", DownloadHandler),
    (r"/api/purchases/([^/]+)/download-link", DownloadLinkHandler),
    (r"/api/purchases/([^/]+)", PurchaseHandler),
    (r"/api/transactions/([^/]+)/refund", RefundHandler),
]
