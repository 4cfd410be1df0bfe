"""Download links a browser can follow (seed 004 "Purchase Success", seed 000 §4; docs/architecture.md §7).

A download link is ``{PUBLIC_URL}/api/downloads/<token>``: the token is a JWT (HS256, the
server's secret) naming the user, the model, why they may have the file and until when::

    {"typ": "download", "sub": user id, "mid": model id, "why": "purchase" | "free" |
     "owner", "jti": link id, "exp": unix time}

Handing a link out (checkout, `GET /api/purchases`, `GET /api/purchases/{id}/download`,
`GET /api/models/{id}/download`) counts nothing. Following it (`follow`) counts the
download once per link — a purchase's `download_count` against its `download_limit`
(`documents.purchases.claim_download`) or a free model's `downloads` — however many times
the browser asks for it (retries, ranges); the `download_links` collection remembers which
links were counted (``{_id: jti, user_id, model_id, why, counted_at, expires_at}``, dropped
by a TTL index once expired).
"""
from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta

import jwt
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import catalog, purchases, users
from documents.common import iso, require_id, utcnow
from documents.errors import Forbidden, NotFound

LINKS = "download_links"
REASONS = ("purchase", "free", "owner")
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")

INDEXES = {LINKS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)]}


def make_link(settings, user_id, model_id, why: str) -> dict:
    """A fresh download link: ``{download_url, expires_at, expires_in}`` (seconds), valid
    DOWNLOAD_URL_TTL_MINUTES."""
    ttl = settings.download_url_ttl_minutes * 60
    expires = int(time.time()) + ttl
    token = jwt.encode({"typ": "download", "sub": str(user_id), "mid": str(model_id),
                        "why": why, "jti": uuid.uuid4().hex, "exp": expires},
                       settings.jwt_secret_key, algorithm="HS256")
    return {"download_url": f"{settings.public_url.rstrip('/')}/api/downloads/{token}",
            "expires_at": iso(utcnow() + timedelta(seconds=ttl)), "expires_in": ttl}


def read_link(settings, token: str) -> dict:
    """The claims of a download link token. Raises NotFound (404) for something that is no
    link at all, Forbidden DOWNLOAD_LINK_INVALID (403) for one tampered with or expired."""
    if not TOKEN_SHAPE.fullmatch(token or ""):
        raise NotFound("No such download link", "NOT_FOUND")
    try:
        claims = jwt.decode(token, settings.jwt_secret_key, algorithms=["HS256"],
                            options={"require": ["exp", "sub", "mid", "jti"]})
    except jwt.PyJWTError:
        raise Forbidden("This download link is invalid or has expired",
                        "DOWNLOAD_LINK_INVALID") from None
    if claims.get("typ") != "download" or claims.get("why") not in REASONS:
        raise Forbidden("This download link is invalid or has expired", "DOWNLOAD_LINK_INVALID")
    return claims


async def model_link(db, settings, user: dict, model_id) -> dict:
    """A download link for the original file of `model_id` for `user`: its creator and staff
    (not counted), or anyone signed in for a free public model (counted when followed); a
    paid model's buyers get theirs through `GET /api/purchases/{id}/download`.

    Returns ``{download_url, expires_at, expires_in, filename, file_format, file_size}``.
    Raises NotFound (hidden or unknown model, no file), Forbidden NOT_PURCHASED (a paid model).
    """
    model = await catalog.get_visible(db, model_id, user)
    if catalog.can_manage(user, model):
        why = "owner"
    elif model.get("is_free"):
        why = "free"
    elif await purchases.active_purchase(db, user, model["_id"]):
        why = "purchase"
    else:
        raise Forbidden("Buy this model to download its file", "NOT_PURCHASED")
    if not model.get("file_key"):
        raise NotFound("The model's file is not available", "FILE_NOT_FOUND")
    return {**make_link(settings, user["_id"], model["_id"], why), **file_facts(model)}


def file_facts(model: dict) -> dict:
    return {"filename": purchases.filename(model), "file_format": model.get("file_format"),
            "file_size": model.get("file_size")}


async def follow(db, claims: dict) -> dict:
    """Count the download of a followed link (once per link) and return what to serve:
    ``{file_key, filename}``.

    Raises NotFound (the model or its file is gone), Forbidden PURCHASE_REVOKED /
    DOWNLOAD_LIMIT_REACHED (purchases), Forbidden DOWNLOAD_LINK_INVALID (the user is gone).
    """
    model = await catalog.find_model(db, require_id(claims["mid"], "Model"))
    if model is None or not model.get("file_key"):
        raise NotFound("The model's file is not available", "FILE_NOT_FOUND")
    user = await users.get(db, require_id(claims["sub"], "User"))
    if user is None:
        raise Forbidden("This download link is invalid or has expired", "DOWNLOAD_LINK_INVALID")
    why = claims["why"]
    if why == "purchase":
        purchase = await purchases.active_purchase(db, user, model["_id"])
        if await _first_follow(db, claims):
            try:
                await purchases.claim_download(db, user, model_id=model["_id"])
            except BaseException:
                await db[LINKS].delete_one({"_id": claims["jti"]})
                raise
        elif purchase is None:
            raise Forbidden("This purchase was refunded", "PURCHASE_REVOKED")
    elif why == "free":
        if not model.get("is_free") or not catalog.is_public(model):
            raise Forbidden("This model is no longer free to download", "NOT_PURCHASED")
        if await _first_follow(db, claims):
            await catalog.move_counter(db, model["_id"], "downloads", 1)
    elif not catalog.can_manage(user, model):
        raise Forbidden("This download link is invalid or has expired", "DOWNLOAD_LINK_INVALID")
    return {"file_key": model["file_key"], "filename": purchases.filename(model)}


async def _first_follow(db, claims: dict) -> bool:
    """True the first time the link `claims` is followed (it is then remembered)."""
    try:
        await db[LINKS].insert_one({
            "_id": claims["jti"], "user_id": claims["sub"], "model_id": claims["mid"],
            "why": claims["why"], "counted_at": utcnow(),
            "expires_at": utcnow() + timedelta(seconds=max(0, claims["exp"] - time.time()))})
    except DuplicateKeyError:
        return False
    return True
