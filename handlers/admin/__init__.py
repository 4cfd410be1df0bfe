"""Staff (admin) routes under /api/admin, one module per area."""
