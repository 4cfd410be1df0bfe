"""Real-time hubs (docs/architecture.md §6): channel registry, local fan-out, the broker between instances
(Redis pub/sub or in-process), channel history with offsets, presence; and the rate-limit
counters, which share the Redis connection.
"""
