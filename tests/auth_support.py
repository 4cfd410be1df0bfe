"""Account helpers shared by the auth tests: registering over HTTP, the tokens a session
answers with, reading the emails the auth flows send, and starting early in a rate-limit
window."""
from __future__ import annotations

import asyncio
import re
import time

PASSWORD = "Sup3rSecret!"
TOKEN_KEYS = {"user", "access_token", "refresh_token", "token_type", "expires_in",
              "accessToken", "refreshToken"}


async def register(api, username="newbie", email=None, password=PASSWORD, **extra):
    """Register an account over HTTP; returns the reply."""
    payload = {"email": email or f"{username}@example.com", "username": username,
               "password": password, **extra}
    return await api("POST", "/api/auth/register", json=payload)


NEW_PASSWORD = "Brand-New-Pass-42"


async def wait_for_email(services, to: str, category: str, count: int = 1) -> dict:
    """The newest email of `category` to `to` once `count` of them are stored (20 s at most)."""
    deadline = time.monotonic() + 20
    query = {"to": to, "category": category}
    while await services.db.emails.count_documents(query) < count:
        assert time.monotonic() < deadline, f"no {category} email to {to}"
        await asyncio.sleep(0.01)
    return await services.db.emails.find_one(query, sort=[("_id", -1)])


def token_in(text: str) -> str:
    return re.search(r"token=([\w-]+)", text).group(1)


WINDOW = 60


async def fresh_window() -> None:
    """Start the test early in a one-minute window, so no window ends halfway through it."""
    into = time.time() % WINDOW
    if into > WINDOW - 5:
        await asyncio.sleep(WINDOW - into + 0.1)
