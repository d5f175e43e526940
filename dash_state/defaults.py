"""Default configuration. Every key can be set in config.toml, the environment, or ``app.server.config``."""

DEFAULTS: dict = {
    # Where ServerStore data lives: "memory", "client", "redis" or "database".
    "STATE_BACKEND": "memory",
    # Seconds a stored value lives without being written or touched.
    "STATE_TTL_DEFAULT": 3600,
    # Keep each browser session's data apart; false shares one namespace between all users.
    "STATE_ENABLE_USER_ISOLATION": True,
    "STATE_REDIS_URL": "redis://127.0.0.1:6379/0",
    "STATE_DATABASE_URL": "sqlite:///state.db",
    # Byte cap of the memory backend; least recently used values are evicted beyond it.
    "STATE_MEMORY_MAX_BYTES": 1 << 30,
    # An open page touches its stores every STATE_TOUCH_FRACTION x TTL, so active users never lose data.
    "STATE_TOUCH_FRACTION": 0.5,
    # Values kept per user and store: each write is a new value (tabs with memory stores keep their
    # own, as with dcc.Store); older ones than the last N writes are deleted instead of waiting for TTL.
    "STATE_VERSIONS_KEPT": 8,
    # Prefix of every Redis key, so several apps can share one Redis.
    "STATE_KEY_PREFIX": "dash-state:",
    # Table of the database backend.
    "STATE_DATABASE_TABLE": "dash_state_values",
    # "off" or "zstd": compress values of at least STATE_COMPRESSION_MIN_BYTES bytes (redis, database).
    "STATE_COMPRESSION": "off",
    "STATE_COMPRESSION_MIN_BYTES": 65536,
    # Bytes of recently written/read values each process keeps to skip re-reading them from redis or
    # database (a hit costs one existence check); 0 turns the cache off.
    "STATE_READ_CACHE_BYTES": 128 << 20,
    # How often an operation is retried (with backoff) when a backend server cannot be reached.
    "STATE_RETRIES": 3,
    # Per-store overrides, keyed by store id: {"backend": ..., "ttl": ...}.
    "STATE_STORES": {},
}

BACKEND_NAMES = ("memory", "client", "redis", "database")
