"""Purchase routes (seed 000 §4, seed 004 "Purchase Success"): the buyer's library, one
purchase, signed download links counted against the download limit, and staff refunds.
Rules live in `documents.purchases`."""
from __future__ import annotations

from marshmallow import fields, validate

from documents import downloads, purchases, receipts, refunds
from handlers.base import ApiHandler, ApiSchema, PageQuery, body, query, responds, staff
from handlers.schemas_money import DownloadLinkOut, PurchaseDetailOut, PurchaseOut, TransactionOut
from providers.payments import ProviderUnavailable


class RefundSchema(ApiSchema):
    reason = fields.String(validate=validate.Length(max=500))


class PurchasesHandler(ApiHandler):
    @query(PageQuery)
    @responds(PurchaseOut, paginated=True)
    async def get(self) -> None:
        """The caller's purchases, newest first, with model cards and a `download_url` each
        (a short-lived link a browser tab can follow; counted only when followed; null once
        refunded or out of downloads). Paginated (seed 001 §22)."""
        user_id = self.current_user["_id"]
        items, meta = await purchases.list_purchases(
            self.db, self.current_user, page=self.query["page"], limit=self.query["limit"],
            link=lambda model_id: downloads.make_link(self.settings_, user_id, model_id,
                                                      "purchase"))
        self.write_page(items, meta)


class PurchaseHandler(ApiHandler):
    @responds(PurchaseDetailOut)
    async def get(self, transaction_id: str) -> None:
        """One of the caller's transactions (``TXN-YYYY-NNNNNN``) with its purchase, model
        and order number; 404 TRANSACTION_NOT_FOUND otherwise."""
        self.write_json(await receipts.get_receipt(self.db, self.current_user, transaction_id))


class _DownloadBase(ApiHandler):
    async def write_link(self, **purchase_ref) -> None:
        """Answer with a download link valid DOWNLOAD_URL_TTL_MINUTES that a browser tab
        follows without a header (`documents.downloads`); the download is counted when the
        link is followed, not here."""
        state = await purchases.download_state(self.db, self.current_user, **purchase_ref)
        model_id = state.pop("model_id")
        link = downloads.make_link(self.settings_, self.current_user["_id"], model_id,
                                   "purchase")
        self.write_json({**link, "model_id": str(model_id), **state})


class DownloadHandler(_DownloadBase):
    @responds(DownloadLinkOut)
    async def get(self, model_id: str) -> None:
        """A short-lived download link for a bought model.

        ``{download_url, expires_at,
        expires_in, download_count, download_limit, remaining_downloads, filename, ...}``;
        opening `download_url` in a browser (no header) downloads the file and counts it
        once. 403 NOT_PURCHASED / PURCHASE_REVOKED / DOWNLOAD_LIMIT_REACHED; 404 for
        unknown models."""
        await self.write_link(model_id=model_id)


class DownloadLinkHandler(_DownloadBase):
    @responds(DownloadLinkOut)
    async def get(self, transaction_id: str) -> None:
        """The same signed download URL, by transaction id (seed 004 "Purchase Success")."""
        await self.write_link(transaction_id=transaction_id)


class RefundHandler(ApiHandler):
    @staff("revenue.manage")
    @body(RefundSchema)
    @responds(TransactionOut)
    async def post(self, transaction_id: str) -> None:
        """Refund one transaction (seed 000 §4, admin only): the provider refunds it, the
        purchase is revoked, the seller's ledger line reversed. 409 ALREADY_REFUNDED; 404
        TRANSACTION_NOT_FOUND."""
        if self.services.payments is None:
            raise ProviderUnavailable("Payments are not configured")
        self.write_json(await refunds.refund_transaction(
            self.db, self.services.payments, transaction_id, self.current_user))


routes = [
    (r"/api/purchases", PurchasesHandler),
    (r"/api/purchases/([^/]+)/download", DownloadHandler),
    (r"/api/purchases/([^/]+)/download-link", DownloadLinkHandler),
    (r"/api/purchases/([^/]+)", PurchaseHandler),
    (r"/api/transactions/([^/]+)/refund", RefundHandler),
]
