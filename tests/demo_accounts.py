"""The demo accounts and well-known documents of `fixtures/`, declared once for the suite.

Every fixture account signs in with `DEMO_PASSWORD`; the admin also needs a TOTP code from
`ADMIN_TOTP_SECRET` (``pyotp.TOTP(ADMIN_TOTP_SECRET).now()``). Emails are what `tokens(...)`
and the login routes take; ids (`*_ID`, hex strings) are what documents and URLs hold — wrap
one in `ObjectId(...)` where a document query needs it.

- `ADMIN` (username ``admin``, id `ADMIN_ID`) — staff role ``superadmin``: every staff
  permission; the account for admin routes and the TOTP sign-in.
- `MODERATOR` (``moderator``, `MODERATOR_ID`) — staff role ``moderator``: reviews models and
  reports, handles support tickets; staff, but not an admin.
- `CREATOR` (``creator``, `CREATOR_ID`) — a verified creator: owns `ROBOT` and the pending
  `PENDING_OF_CREATOR`; the seller in checkout and earnings tests.
- `CREATOR2` (``creator2``, `CREATOR2_ID`) — a second verified creator: owns `SNOWMAN` and
  `PENDING_OF_CREATOR2`; the "someone else's model" in ownership tests.
- `BUYER` (``buyer``, `BUYER_ID`) — a plain customer: buys, reviews, opens tickets; member of
  the `GAME_ASSETS` community; the non-staff, non-owner caller in permission tests.
- `BUYER2` (``buyer2``, `BUYER2_ID`) — a second customer, for two-party flows (messages,
  follows, community members).
"""
from __future__ import annotations

DEMO_PASSWORD = "DemoPass123!"
ADMIN_TOTP_SECRET = "STNA4PQI7ZN2U5XYMVSNCCE4SNBTYVCY"

ADMIN = "admin@hwc3d.com"
MODERATOR = "moderator@hwc3d.com"
CREATOR = "creator@hwc3d.com"
CREATOR2 = "creator2@hwc3d.com"
BUYER = "buyer@hwc3d.com"
BUYER2 = "buyer2@hwc3d.com"

ADMIN_ID = "650000000000000000000001"
MODERATOR_ID = "650000000000000000000002"
CREATOR_ID = "650000000000000000000003"
CREATOR2_ID = "650000000000000000000004"
BUYER_ID = "650000000000000000000005"
BUYER2_ID = "650000000000000000000006"

# Every demo account, in the fixtures' order.
EMAILS = (ADMIN, MODERATOR, CREATOR, CREATOR2, BUYER, BUYER2)
USER_IDS = (ADMIN_ID, MODERATOR_ID, CREATOR_ID, CREATOR2_ID, BUYER_ID, BUYER2_ID)
USERNAMES = {email: email.split("@")[0] for email in EMAILS}

# Fixture models and the community several modules use.
ROBOT = "652000000000000000000001"               # Low-Poly Robot: approved, published, paid, by CREATOR
SNOWMAN = "652000000000000000000002"             # Friendly Snowman: approved, published, free, by CREATOR2
PENDING_OF_CREATOR = "652000000000000000000040"  # Crystal Cluster: pending review, by CREATOR
PENDING_OF_CREATOR2 = "652000000000000000000041"  # Laser Blaster: pending review, by CREATOR2
GAME_ASSETS = "653000000000000000000001"         # 3D Game Assets: public community BUYER and BUYER2 are in
