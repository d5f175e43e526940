"""Default configuration. Every key can be set in config.toml, the environment, ``app.server.config``
or ``init_app(app, **settings)``; the README's configuration table explains each one."""

DEFAULTS: dict = {
    # Where ServerStore data lives: "local" (one store shared by every process of this host: gunicorn
    # workers, background-job workers), "memory" (this process only), "redis" or "database" (several
    # hosts), or "client" (in the browser, as dcc.Store: the rollback switch).
    "STATE_BACKEND": "local",
    # Seconds a stored value lives without being written or touched.
    "STATE_TTL_DEFAULT": 3600,
    # Keep each user's data apart; false shares one namespace between all users.
    "STATE_ENABLE_USER_ISOLATION": True,
    # The redis backend's server: redis://, rediss:// (TLS), unix://, redis+sentinel:// or redis+cluster://.
    "STATE_REDIS_URL": "redis://127.0.0.1:6379/0",
    # The database backend's SQLAlchemy URL (a relative SQLite path is relative to the working directory).
    "STATE_DATABASE_URL": "sqlite:///state.db",
    # Directory of the local backend's store, shared by every process of this host; "" picks one per
    # app under /dev/shm (values unsealed, as in process memory) or else the temp dir (values sealed).
    "STATE_LOCAL_PATH": "",
    # Byte cap of the local backend (its LMDB map plus value files): a write that does not fit is refused.
    "STATE_LOCAL_MAX_BYTES": 1 << 30,
    # Byte cap of the memory backend: a write that does not fit is refused, nobody is evicted.
    "STATE_MEMORY_MAX_BYTES": 1 << 30,
    # Largest single value, and most bytes one user may keep across all stores (any backend).
    "STATE_MAX_VALUE_BYTES": 64 << 20,
    "STATE_MAX_USER_BYTES": 256 << 20,
    # Most values one user keeps per store (server backends): a write past it evicts that store's oldest
    # values (never the newest), so pages that never release (reloads of a "memory" store) stay bounded.
    # A page still holding an evicted value reads None, as for an expired one. Initial layout data and
    # APP-scoped values are not counted.
    "STATE_VALUES_PER_STORE": 16,
    # An open page touches its stores every STATE_TOUCH_FRACTION x TTL, so active users never lose data.
    "STATE_TOUCH_FRACTION": 0.5,
    # Prefix of every Redis key, so several apps can share one Redis.
    "STATE_KEY_PREFIX": "dash-state:",
    # Table of the database backend.
    "STATE_DATABASE_TABLE": "dash_state_values",
    # "aes-gcm" (values encrypted at rest, redis and database) or "hmac" (authenticated only).
    "STATE_ENCRYPTION": "aes-gcm",
    # "off" or "zstd": compress values of at least STATE_COMPRESSION_MIN_BYTES bytes (redis, database).
    "STATE_COMPRESSION": "off",
    "STATE_COMPRESSION_MIN_BYTES": 65536,
    # Bytes of recently written/read values each process keeps to skip re-reading them from redis or
    # database (a hit costs one existence check); 0 turns the cache off.
    "STATE_READ_CACHE_BYTES": 64 << 20,
    # Bytes of redis/database values kept in a near tier shared by the processes of this host (least
    # recently used out): another worker's read costs a local read plus one existence check, and
    # during an outage unexpired values it holds are still served. 0 turns it off.
    "STATE_NEAR_TIER_BYTES": 256 << 20,
    # Directory the near tier makes its store in ("": STATE_LOCAL_PATH if set, else /dev/shm or the temp dir).
    "STATE_NEAR_TIER_PATH": "",
    # How often an operation is retried (with backoff) when a backend server cannot be reached.
    "STATE_RETRIES": 3,
    # Seconds a backend may take to connect or to answer a read before the call fails.
    "STATE_BACKEND_TIMEOUT": 2.0,
    # Who is logged in: "auto" (flask-login, then dash-auth), "flask_login", "dash_auth", "anonymous",
    # "module:function", or (init_app only) a callable returning the user id or None.
    "STATE_USER_RESOLVER": "auto",
    # At login: carry the browser's anonymous state over to the user (true) or drop it (false).
    "STATE_LOGIN_CARRY_OVER": True,
    # At logout: delete the user's state (true) or keep it for their next login (false).
    "STATE_LOGOUT_DELETE": False,
    # dash-state's identity cookie: name, Secure ("auto": over HTTPS), "__Host-" prefix, lifetime (s).
    "STATE_COOKIE_NAME": "dash_state_id",
    "STATE_COOKIE_SECURE": "auto",
    "STATE_COOKIE_HOST_PREFIX": False,
    "STATE_COOKIE_MAX_AGE": 31 * 86400,
    # An anonymous browser is "new" for this many seconds after the server issued its identity cookie.
    # When the memory backend is full, new browsers' least recently used values make room (they read
    # as expired); established and logged-in users' values are never evicted. 0: nobody is new.
    "STATE_NEW_VISITOR_SECONDS": 600,
    # Counters and latency histograms per store (StateManager.stats(), the dev-tools panel).
    "STATE_METRICS": True,
    # Serve them at <prefix>_dash-state/metrics in Prometheus' text format (needs prometheus-client).
    "STATE_PROMETHEUS": False,
    # One JSON line per write, delete and security event: "off", "logger" (dash_state.audit), or a file path.
    "STATE_AUDIT_LOG": "off",
    # How an open page learns that a live store changed: "auto" (a Server-Sent Events stream where the
    # server can hold connections: threaded servers such as gunicorn's gthread or gevent workers and
    # Flask's own; else a poll), "sse", or "poll" (a cheap conditional request every STATE_LIVE_POLL_SECONDS).
    "STATE_LIVE_TRANSPORT": "auto",
    # Seconds between two polls of a page on the "poll" transport.
    "STATE_LIVE_POLL_SECONDS": 2.0,
    # Seconds a live stream stays open before the page reconnects (each open stream holds one server thread).
    "STATE_LIVE_STREAM_SECONDS": 300,
    # Most live streams one process holds open (on gunicorn's gthread workers also at most half of
    # --threads, so streams never take every thread); pages past it poll.
    "STATE_LIVE_MAX_STREAMS": 50,
    # Per-store settings, keyed by store id: backend, ttl, scope, live, writable, latest_only,
    # client_read, client_write, mirror.
    "STATE_STORES": {},
}

BACKEND_NAMES = ("memory", "client", "redis", "database", "local")

#: Per-store settings that take one of a few words, and their defaults (``[STATE_STORES.<id>]``).
STORE_CHOICES: dict = {
    # Who shares the value: "page" (each page its own, as dcc.Store), "user" (every tab, browser and
    # device of one user), "app" (everyone; held once). Wins over the component's scope= prop.
    "scope": ("page", "user", "app"),
}

#: Per-store settings and their defaults (``[STATE_STORES.<id>]``).
STORE_DEFAULTS: dict = {
    # A user or app store pushes every change to the open pages that hold it, and their callbacks fire
    # (wins over the component's live= prop).
    "live": False,
    # Callbacks may write an app store (wins over the component's writable= prop); by default only
    # the layout's data, set_store() and the CLI do.
    "writable": False,
    # Only the newest value this user's server callbacks wrote is accepted (for server-decided facts
    # such as a role): an older reference, or one written from the browser, reads as missing.
    "latest_only": False,
    # window.dash_state.get(reference) may fetch the value into the browser (clientside callbacks).
    "client_read": False,
    # Values written in the browser (clientside callbacks, running=, uploads) are accepted.
    "client_write": True,
    # A store whose data a clientside callback takes or sets is held in the browser too, as dcc.Store
    # holds it, so clientside code and clientside Patch see the data (false: only its reference).
    "mirror": True,
}
