"""Settings for the control plane: every value comes from the environment (see README, "Configuration").

Malformed values stop start-up with ``ImproperlyConfigured`` naming the variable (``controlplane.env``).
"""

import logging
import re
import warnings
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from agents.plugins.net_policy import canonical_pattern
from controlplane import env
from observability.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.string("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env.boolean("DEBUG", False)
# Set by `manage.py standalone` before settings load: one process serves everything, so live events go to
# in-process listeners and the cache stays in memory; REDIS_URL from the environment is ignored.
STANDALONE = env.boolean("STANDALONE", False)
SECRET_KEY = env.string("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY: required when DEBUG is off (or set SECRET_KEY_FILE)")
    SECRET_KEY = "insecure-dev-only-key-because-DEBUG-is-on"

ALLOWED_HOSTS = env.string_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.string_list("CSRF_TRUSTED_ORIGINS", [])
USE_X_FORWARDED_HOST = env.boolean("USE_X_FORWARDED_HOST", False)
if env.boolean("SECURE_PROXY_SSL", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.boolean("SECURE_COOKIES", not DEBUG)
# HTTPS only in production (.env.example turns these on; `manage.py check --deploy` wants them). Off by
# default so `make demo` and a plain-http compose on localhost work: HSTS sent once is kept by browsers.
SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", False)
# The containers' health probes call these over plain http inside the network: a redirect would fail them.
# So may Prometheus /metrics (a redirect would not protect its token: the first request already carried it).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's release files, served by the project (no CDN)
    "django_structlog",
    "django_eventstream",
    "auditlog",
    "csp",
    "rbac",
    "agents",
    "run_queue",
    "runs",
    "files",
    "gateway",
    "observability",
    "portal",
    "controlplane",  # system checks and the standalone / seed_demo commands
]

MIDDLEWARE = [
    "observability.middleware.RequestIdMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "csp.middleware.CSPMiddleware",  # CONTENT_SECURITY_POLICY below; API data: HardeningMiddleware
    "controlplane.middleware.HardeningMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files in production (uvicorn serves no files)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the portal's language: the switch, else Accept-Language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.throttling.SignInThrottleMiddleware",  # SIGN_IN_VIEWS, below
    "core.audit.AuditContextMiddleware",  # the actor and address of audit-log entries
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
ASGI_APPLICATION = "controlplane.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context.header",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------------
DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'controlplane.sqlite3'}")}
# Read for every engine so the system checks can refuse a pool on SQLite instead of ignoring it.
DATABASE_POOL_SIZE = env.integer("DATABASE_POOL_SIZE", 0, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE takes the write lock when a transaction starts, so two writers queue on busy_timeout
    # instead of one failing with "database is locked" on upgrade; WAL lets readers run beside a writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
else:
    DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
    # Long-running processes (worker, reconciler) must keep their connection: reconnecting per task
    # costs ~3.4x in throughput (FACTS.md). Health checks drop connections broken by a server restart.
    DATABASES["default"]["CONN_MAX_AGE"] = env.integer("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Server-side binding lets psycopg prepare a statement run DATABASE_PREPARE_THRESHOLD times on one
    # connection: PostgreSQL then skips parsing and planning it (its CPU per run fell by a quarter,
    # docs/architecture.md). Behind PgBouncer in transaction mode, older than 1.21 or without
    # max_prepared_statements, set DATABASE_PREPARE_THRESHOLD=0 (never prepare).
    _prepare = env.integer("DATABASE_PREPARE_THRESHOLD", 5, minimum=0)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=env.boolean("DATABASE_SERVER_SIDE_BINDING", True),
        prepare_threshold=_prepare or None,
    )
    # A database that stops answering must fail requests, not hang them: libpq gives up connecting after
    # DATABASE_CONNECT_TIMEOUT_S, and the server cancels any statement running past
    # DATABASE_STATEMENT_TIMEOUT_MS (0: never; set it to 0 for a `migrate` that rewrites a large table).
    # The worker's LISTEN connection (run_queue/listener.py) is its own, without these options: it only
    # waits for notifications, and has its own connect timeout.
    _statement_timeout_ms = env.integer("DATABASE_STATEMENT_TIMEOUT_MS", 30_000, minimum=0)
    _options = DATABASES["default"]["OPTIONS"]
    _options["connect_timeout"] = env.integer("DATABASE_CONNECT_TIMEOUT_S", 5, minimum=1)
    _statement_timeout = f"-c statement_timeout={_statement_timeout_ms}"
    _options["options"] = f"{_options.get('options', '')} {_statement_timeout}".strip()
    if DATABASE_POOL_SIZE:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django requires it with a pool
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_SIZE,
            "timeout": env.number("DATABASE_POOL_TIMEOUT_S", 10.0, minimum=0.1),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.url("REDIS_URL", "", {"redis", "rediss", "unix"})
if STANDALONE:
    REDIS_URL = ""

# Every Redis client (cache, live publisher and subscriber) gives up connecting and waiting for a reply
# after these, so a Redis that stops answering costs a request seconds, not forever; its callers then
# skip Redis for a few seconds (core.cache.Outage) and fail open.
REDIS_CONNECT_TIMEOUT_S = env.number("REDIS_CONNECT_TIMEOUT_S", 2.0, minimum=0.1)
REDIS_SOCKET_TIMEOUT_S = env.number("REDIS_SOCKET_TIMEOUT_S", 2.0, minimum=0.1)
_redis_timeouts = {
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
    "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
}

CACHES: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CACHES["default"] = {
        "BACKEND": "core.cache.SharedRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": dict(_redis_timeouts),
    }

# --- auth, i18n, static ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:store"
LOGOUT_REDIRECT_URL = "login"
# Django's own (users, groups, model permissions) first; then per-app permissions from the app grants:
# user.has_perm("agents.use_app", app) (agents.backends).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "agents.backends.AppGrantBackend",
]
# English and Simplified Chinese. Django maps zh-cn / zh-sg to zh-hans, and a bare "zh" (or zh-tw, which has
# no translation here) falls back to the supported zh-hans variant.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.string("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env.string("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves STATIC_ROOT (collectstatic, as the Dockerfile runs it); with STATIC_FROM_APPS it serves
# the apps' and static/ folders directly, as runserver does (development, tests).
WHITENOISE_USE_FINDERS = env.boolean("STATIC_FROM_APPS", DEBUG)
if WHITENOISE_USE_FINDERS:  # then an empty STATIC_ROOT (no collectstatic yet) is expected, not a warning
    warnings.filterwarnings("ignore", message="No directory at: ")
WHITENOISE_AUTOREFRESH = DEBUG
# No inline script or style anywhere: every page's code is a file the project serves. An icon keeps its own
# stricter policy (agents.views): django-csp leaves a response that already has one alone.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Uploads (app-store icons). Never served as a public folder: each file is served by a view that checks
# who may see what it belongs to (an icon: its app).
MEDIA_ROOT = Path(env.string("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous API call then gets 401 with WWW-Authenticate, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlplane.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: DRF's browsable API renders a form from request.data while rendering a response, so a
    # POST with `Accept: text/html` and a body it cannot parse answered 500 (found by the property test).
    # People browse the API in Swagger UI (/api/docs/).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "controlplane.api.Pagination",
    # JSON only, read strictly (depth, NUL, lone surrogates, infinities): controlplane/parsers.py.
    "DEFAULT_PARSER_CLASSES": ["controlplane.parsers.StrictJSONParser"],
    "PAGE_SIZE": env.integer("API_PAGE_SIZE", 50, minimum=1),
    "EXCEPTION_HANDLER": "controlplane.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.string("API_THROTTLE_AUTH", "10/min"),
        "user": env.string("API_THROTTLE_USER", "6000/min"),
    },
    # Not on every request: a throttle costs two cache round trips. Views that create work opt in.
    "DEFAULT_THROTTLE_CLASSES": [],
    # Unused: throttles take the client's address from core.throttling.client_address (TRUSTED_PROXIES).
    "NUM_PROXIES": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# --- limits ---------------------------------------------------------------------------------------
# Proxies (addresses or CIDR networks) whose X-Forwarded-For is believed: a request from one of them is
# counted against the address it forwarded for. Empty: every client is its connection's address (and a
# proxy in front of the web process counts as one client). When set, also stop the ASGI server from
# rewriting the address itself (uvicorn/gunicorn: FORWARDED_ALLOW_IPS="", docs/operations.md).
TRUSTED_PROXIES = env.networks("TRUSTED_PROXIES", [])
# POSTs to these views spend the "auth" rate (API_THROTTLE_AUTH) per client address, with the token
# endpoint (core.throttling.SignInThrottleMiddleware).
SIGN_IN_VIEWS = frozenset({"admin:login", "login"})
# Runs a user may have queued, running or waiting for a human at once (0: no limit); a start beyond it
# is a 429. Counted before the run is inserted, so concurrent starts of one user can pass it by at most
# the number of them in flight.
RUNS_MAX_ACTIVE_PER_USER = env.integer("RUNS_MAX_ACTIVE_PER_USER", 20, minimum=0)
# Event streams (SSE) a user may hold open in one web process (0: no limit).
STREAMS_MAX_PER_USER = env.integer("STREAMS_MAX_PER_USER", 20, minimum=0)

# --- change audit (django-auditlog) -------------------------------------------------------------------
# Roles, bindings, departments, grants, prompt activations and projects are registered in rbac/audit.py and
# agents/audit.py; runs and queue entries are not (no audit query on the run path). Changes are stored as
# JSON values; who and from where comes from core.audit (not auditlog's middleware: it believes any
# X-Forwarded-For), the correlation id is the request id.
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_CID_GETTER = "core.audit.request_id"

SPECTACULAR_SETTINGS = {
    "TITLE": "Agent control plane API",
    # Only what the API has today (tests/controlplane/test_schema.py holds it to the paths).
    "DESCRIPTION": "Who I am and an API token; the app store (the apps I may see, whether I may start "
    "them, their icons); prompt versions and their activations; app settings in layers (app, project, "
    "user) and projects; the RBAC policy (roles, bindings, departments, grants); runs: start, list, "
    "cancel, their events as live SSE streams with replay (Last-Event-ID) or as pages, their todos; "
    "human-in-the-loop questions and replies. "
    'Every error has the shape {"error": {"code", "message", "detail"}}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar's static files: /api/docs/ works offline and under a CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge fetched from validator.swagger.io: nothing leaves the project.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # A status appears in several components (a run and a run in a list; a question pending or answered):
    # one enum named for each.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "runs.models.RunStatus",
        "HumanLoopStatusEnum": "runs.models.HumanLoopStatus",
        "TodoStatusEnum": "runs.models.TodoStatus",
        "AgentStateEnum": "agents.models.AgentState",
    },
}

# --- run queue and worker ------------------------------------------------------------------------
QUEUE_LEASE_S = env.number("QUEUE_LEASE_S", 30.0, minimum=1.0)
QUEUE_MAX_ATTEMPTS = env.integer("QUEUE_MAX_ATTEMPTS", 5, minimum=1)
QUEUE_RETRY_BASE_S = env.number("QUEUE_RETRY_BASE_S", 2.0, minimum=0.0)
QUEUE_RETRY_CAP_S = env.number("QUEUE_RETRY_CAP_S", 300.0, minimum=0.0)
QUEUE_POLL_S = env.number("QUEUE_POLL_S", 1.0, minimum=0.01)
QUEUE_RETENTION_S = env.number("QUEUE_RETENTION_S", 30 * 24 * 3600.0, minimum=0.0)
WORKER_CONCURRENCY = env.integer("WORKER_CONCURRENCY", 8, minimum=1)
WORKER_BATCH = env.integer("WORKER_BATCH", 50, minimum=1)
WORKER_SHUTDOWN_GRACE_S = env.number("WORKER_SHUTDOWN_GRACE_S", 30.0, minimum=0.0)
# A handler that hears nothing from its executor (no event, no keep-alive) this long stops having its
# lease renewed, so a run cannot be held for ever by a stuck thread (run_queue.worker).
WORKER_STALL_S = env.number("WORKER_STALL_S", 300.0, minimum=1.0)

# --- run repair (manage.py reconcile: runs.repair, observability.reconciler) ----------------------------
# Every run gets a deadline at start (an app may set its own); time spent waiting on a person does not
# count against it, and a run waiting on a person has its own, longer timeout.
RUN_DEADLINE_S = env.number("RUN_DEADLINE_S", 3600.0, minimum=1.0)
RUN_HUMAN_TIMEOUT_S = env.number("RUN_HUMAN_TIMEOUT_S", 7 * 24 * 3600.0, minimum=1.0)
# A running run with no word from its executor this long, and no live lease, is checked on its executor.
RUN_STALL_S = env.number("RUN_STALL_S", 300.0, minimum=1.0)
# How long an executor may stay unreachable for a stalled run before the run ends timed_out.
RUN_EXECUTOR_GRACE_S = env.number("RUN_EXECUTOR_GRACE_S", 600.0, minimum=0.0)
# A run waiting on a person is checked on its executor when its last sync is older than this.
RUN_SYNC_STALE_S = env.number("RUN_SYNC_STALE_S", 900.0, minimum=1.0)
# Finished runs (with their events) and finished queue entries older than these are deleted.
RUN_RETENTION_S = env.number("RUN_RETENTION_S", 30 * 24 * 3600.0, minimum=0.0)
RECONCILE_INTERVAL_S = env.number("RECONCILE_INTERVAL_S", 5.0, minimum=0.05)
RECONCILE_BATCH = env.integer("RECONCILE_BATCH", 100, minimum=1)
# The agent-status monitor (a reconcile step): polls every enabled executor's GET /v1/agents at most every
# AGENT_STATUS_POLL_S (0: every pass), each call bounded by AGENT_STATUS_TIMEOUT_S; a stored state changes
# after AGENT_STATUS_DEBOUNCE equal observations in a row, and an executor's agents turn offline after as
# many failed polls in a row.
AGENT_STATUS_POLL_S = env.number("AGENT_STATUS_POLL_S", RECONCILE_INTERVAL_S, minimum=0.0)
AGENT_STATUS_DEBOUNCE = env.integer("AGENT_STATUS_DEBOUNCE", 3, minimum=1)
AGENT_STATUS_TIMEOUT_S = env.number("AGENT_STATUS_TIMEOUT_S", 2.0, minimum=0.1)
# --- executors ------------------------------------------------------------------------------------
# With EXECUTOR_URL set, the Executor row named "default" mirrors these (agents.selectors.default_executor),
# so a deployment reaches its executor with no admin step. EXECUTOR_TIMEOUT_S is the read timeout, which is
# also the longest silence tolerated on an event stream: keep it above the executor's keep-alive (10 s).
EXECUTOR_URL = env.url("EXECUTOR_URL", "", {"http", "https"})
EXECUTOR_TOKEN = env.string("EXECUTOR_TOKEN")
EXECUTOR_CONNECT_TIMEOUT_S = env.number("EXECUTOR_CONNECT_TIMEOUT_S", 5.0, minimum=0.1)
EXECUTOR_TIMEOUT_S = env.number("EXECUTOR_TIMEOUT_S", 30.0, minimum=0.1)
EXECUTOR_RETRIES = env.integer("EXECUTOR_RETRIES", 3, minimum=0)
if EXECUTOR_URL and not EXECUTOR_TOKEN:
    raise ImproperlyConfigured("EXECUTOR_TOKEN: required when EXECUTOR_URL is set (or EXECUTOR_TOKEN_FILE)")
# Apps and executors are read per run (starting it, driving it): each process keeps them this long. A change
# in the admin applies at once in the process that made it and within this many seconds everywhere else;
# 0 reads them every time.
CONFIG_CACHE_S = env.number("CONFIG_CACHE_S", 5.0, minimum=0.0)

# --- live streams (django-eventstream) ------------------------------------------------------------
EVENTSTREAM_STORAGE_CLASS = "runs.streaming.RunEventStorage"
EVENTSTREAM_CHANNELMANAGER_CLASS = "runs.streaming.RunChannelManager"
# Redis pub/sub carries events from worker processes to every web process. django-eventstream tests for the
# setting's presence, so it is defined only when live delivery through Redis is wanted.
if env.boolean("EVENTSTREAM_USE_REDIS", bool(REDIS_URL)) and not STANDALONE:
    if not REDIS_URL:
        raise ImproperlyConfigured("EVENTSTREAM_USE_REDIS: needs REDIS_URL")
    EVENTSTREAM_REDIS = env.redis_kwargs("REDIS_URL", REDIS_URL) | _redis_timeouts
_grip_url = env.url("GRIP_URL", "", {"http", "https"})
if _grip_url:
    # Pushpin's control URL (e.g. http://pushpin:5561): workers publish every event through GRIP as well,
    # and the middleware lets a stream request that came through Pushpin be answered with a GRIP hold
    # (Pushpin keeps the connection; no web thread does). django-eventstream needs both.
    GRIP_URL = _grip_url
    MIDDLEWARE.insert(0, "django_grip.GripMiddleware")

# Threads that run Django's sync code (middleware, views, storage reads of open streams) in a web
# process; each keeps its own database connection, so this bounds the process's connections
# (controlplane/asgi_handler.py).
WEB_THREADS = env.integer("WEB_THREADS", 32, minimum=1)

# What an executor accepts as a request body: the reference executor's limit (executor/http.py
# MAX_BODY_BYTES, protocol v1; a test checks the default agrees). A run's input must fit in the start
# request sent to the executor, so POST /api/runs/ refuses one that would not (runs/validation.py).
EXECUTOR_MAX_BODY_BYTES = env.integer("EXECUTOR_MAX_BODY_BYTES", 1024 * 1024, minimum=4096)
# Request bodies over this are refused with 413 before they are read (controlplane/asgi_handler.py).
API_MAX_BODY_BYTES = env.integer("API_MAX_BODY_BYTES", EXECUTOR_MAX_BODY_BYTES, minimum=1024)

# Generation-0 threshold of the garbage collector in web processes (0 keeps Python's default of 700).
WEB_GC_THRESHOLD = env.integer("WEB_GC_THRESHOLD", 50_000, minimum=0)

# --- metrics (/metrics, Prometheus text: observability.metrics) ---------------------------------------
# Who may scrape: a bearer token (compared in constant time), client addresses or networks (the address as
# TRUSTED_PROXIES computes it), or both (then a scrape must pass both). With neither, /metrics is a 404.
METRICS_TOKEN = env.string("METRICS_TOKEN")
METRICS_ALLOW_IPS = env.networks("METRICS_ALLOW_IPS", [])
# The window (seconds) of the figures "of late": runs started and finished, errors, the duration histogram.
# A scrape reads the runs and failed spans of the window, so its cost grows with it.
METRICS_WINDOW_S = env.number("METRICS_WINDOW_S", 300.0, minimum=10.0)

# --- logging --------------------------------------------------------------------------------------
# JSON in production (one object per line, for a log pipeline), readable lines while developing.
LOG_FORMAT = env.choice("LOG_FORMAT", "console" if DEBUG else "json", {"console", "json"})
LOG_LEVEL = env.choice("LOG_LEVEL", "info", {"debug", "info", "warning", "error"}).upper()
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
DJANGO_STRUCTLOG_CELERY_ENABLED = False
# Safe: RequestIdMiddleware has already replaced a malformed incoming X-Request-ID with a fresh one.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True
# A client closing an event stream is how streams normally end, not a warning.
DJANGO_STRUCTLOG_REQUEST_CANCELLED_LOG_LEVEL = logging.INFO
# One INFO line per request (request_finished, with the request id, user, status), plus streaming_finished
# for a stream; request_started and streaming_started are DEBUG. At INFO, logging was ~12% of the CPU of a
# run (bench/runs.py: 109 runs/s at WARNING, 92-97 at INFO, 7 lines per run).
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG

# --- tracing (observability.tracing; docs/operations.md) ----------------------------------------------
# One trace per run, in the Span table (the dashboard's traces) and, with OTEL_EXPORTER_OTLP_ENDPOINT, in
# any OTLP/HTTP backend too. Traced processes: the web server, runworker, reconcile, standalone.
TRACING = env.boolean("TRACING", True)
# Official instrumentations to add, comma-separated: django, psycopg, urllib3 (a span per request, per
# query, per HTTP attempt to an executor). None by default: each costs the hot path.
TRACING_INSTRUMENT = env.string_list("TRACING_INSTRUMENT", [])
if unknown := set(TRACING_INSTRUMENT) - {"django", "psycopg", "urllib3"}:
    raise ImproperlyConfigured(f"TRACING_INSTRUMENT: unknown instrumentation(s) {sorted(unknown)}")
TRACING_SERVICE_NAME = env.string("OTEL_SERVICE_NAME", "agent-controlplane")
OTEL_EXPORTER_OTLP_ENDPOINT = env.url("OTEL_EXPORTER_OTLP_ENDPOINT", "", {"http", "https"})
# The batch processor's queue (spans past it are dropped, never waited for), delay and batch size.
TRACE_QUEUE_SIZE = env.integer("TRACE_QUEUE_SIZE", 8192, minimum=16)
TRACE_EXPORT_DELAY_MS = env.integer("TRACE_EXPORT_DELAY_MS", 2000, minimum=10)
TRACE_EXPORT_BATCH = env.integer("TRACE_EXPORT_BATCH", 512, minimum=1)
# Spans older than this are deleted by the reconciler's retention step (0 keeps them for ever).
TRACE_RETENTION_DAYS = env.integer("TRACE_RETENTION_DAYS", 7, minimum=0)

# --- plugins and the tool gateway (agents.plugins, gateway; docs/operations.md) ------------------------
# The whitelist: only the plugins named here are imported at all (built-in: echo, http_fetch, db_query;
# others come from the controlplane.plugins entry-point group). `manage.py plugins` shows what is installed.
PLUGINS_ENABLED = env.string_list("PLUGINS_ENABLED", ["http_fetch", "db_query"])
# The control plane's base URL as executors reach it (e.g. http://web:8000): a run whose app declares
# plugins is given {TOOL_GATEWAY_URL}/api/runs/<id>/tools and a token. Empty: no run is offered plugins.
TOOL_GATEWAY_URL = env.url("TOOL_GATEWAY_URL", "", {"http", "https"}).rstrip("/")
# A run's gateway token expires at the run's deadline, else this long after its start.
TOOL_TOKEN_TTL_S = env.integer("TOOL_TOKEN_TTL_S", 24 * 3600, minimum=60)
# Plugin calls running at once in one web process, all plugins together: a call past it is refused (429)
# rather than queued, so plugins can never hold more than this many of the WEB_THREADS.
TOOL_GATEWAY_CONCURRENCY = env.integer("TOOL_GATEWAY_CONCURRENCY", 16, minimum=1)
# Calls one run may make per minute, all plugins together (each plugin has its own per-run limit too).
TOOL_GATEWAY_RUN_RATE = env.integer("TOOL_GATEWAY_RUN_RATE", 600, minimum=1)

# --- the http_fetch plugin (agents.plugins.http_fetch, agents.plugins.net_policy) --------------------
# Hosts an agent may fetch from: exact names, "*.example.com" (any name under it, not example.com itself)
# or "*" (any host). Empty allows nothing. Whatever the list, a host is refused when any address it resolves
# to is internal (loopback, private, link-local, metadata…) unless inside HTTP_FETCH_ALLOW_NETWORKS; a
# cloud metadata address only when that network is exactly its one address.
# The one-process demo (standalone) may fetch from this machine only, so its tool agent has something to
# fetch with no internet: 127.0.0.1 (any port) as a host and as a network.
HTTP_FETCH_ALLOW_HOSTS = env.string_list("HTTP_FETCH_ALLOW_HOSTS", ["127.0.0.1"] if STANDALONE else [])
for _pattern in HTTP_FETCH_ALLOW_HOSTS:
    try:
        canonical_pattern(_pattern)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"HTTP_FETCH_ALLOW_HOSTS: {_pattern!r}: {_exc}") from None
HTTP_FETCH_ALLOW_NETWORKS = env.networks("HTTP_FETCH_ALLOW_NETWORKS", ["127.0.0.1/32"] if STANDALONE else [])
# The largest body fetched (an agent may ask for less, never more); the result's budget follows from it.
HTTP_FETCH_MAX_BYTES = env.integer("HTTP_FETCH_MAX_BYTES", 1024 * 1024, minimum=1)
HTTP_FETCH_MAX_REDIRECTS = env.integer("HTTP_FETCH_MAX_REDIRECTS", 5, minimum=0)
# Each wait on the network is also bounded by the time the tool gateway has left for the call; the
# plugin's gateway timeout is the sum of the two.
HTTP_FETCH_CONNECT_TIMEOUT_S = env.number("HTTP_FETCH_CONNECT_TIMEOUT_S", 5.0, minimum=0.1)
HTTP_FETCH_READ_TIMEOUT_S = env.number("HTTP_FETCH_READ_TIMEOUT_S", 10.0, minimum=0.1)
# The CA certificates https fetches are verified against (a PEM file); empty: certifi's bundle.
HTTP_FETCH_CA_BUNDLE = env.string("HTTP_FETCH_CA_BUNDLE")
if HTTP_FETCH_CA_BUNDLE and not Path(HTTP_FETCH_CA_BUNDLE).is_file():
    raise ImproperlyConfigured(f"HTTP_FETCH_CA_BUNDLE: no such file {HTTP_FETCH_CA_BUNDLE!r}")

# --- the db_query plugin (agents.plugins.db_query, sql_guard, db_query_run) ---------------------------
# The databases agents may query, as DATABASES aliases, the first being the default. None by default:
# never `default` unless the operator names it (it holds users and password hashes). Every other alias
# named here is added to DATABASES from DB_QUERY_DATABASE_URL_<ALIAS> (postgres:// or sqlite:///); give it
# a database role that may only SELECT (the plugin also runs each query read-only).
# The demo (standalone) queries a sample SQLite database of its own in var/ (seed_demo fills it).
DB_QUERY_DATABASES = env.string_list("DB_QUERY_DATABASES", ["samples"] if STANDALONE else [])
for _alias in DB_QUERY_DATABASES:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", _alias):
        raise ImproperlyConfigured(f"DB_QUERY_DATABASES: {_alias!r} is not an alias ([a-z][a-z0-9_]*)")
    if _alias != "default":
        _demo = f"sqlite:///{VAR_DIR / 'demo-samples.sqlite3'}" if STANDALONE and _alias == "samples" else ""
        DATABASES[_alias] = env.database(f"DB_QUERY_DATABASE_URL_{_alias.upper()}", _demo)
        DATABASES[_alias]["CONN_MAX_AGE"] = 60
        DATABASES[_alias]["CONN_HEALTH_CHECKS"] = True
        if DATABASES[_alias]["ENGINE"] != "django.db.backends.sqlite3":
            DATABASES[_alias]["OPTIONS"] = {
                "connect_timeout": env.integer("DATABASE_CONNECT_TIMEOUT_S", 5, minimum=1)
            }
# Each query is cancelled after this long (and never later than the tool gateway stops waiting).
DB_QUERY_TIMEOUT_MS = env.integer("DB_QUERY_TIMEOUT_MS", 5000, minimum=1)
# The most rows a query returns (an agent's max_rows may lower it); more are cut off with truncated=true.
DB_QUERY_MAX_ROWS = env.integer("DB_QUERY_MAX_ROWS", 1000, minimum=1)

# The file browser (files/): roots declared here as name=/path pairs are written to the database by
# `manage.py file_roots --sync` (the standalone command and the container's start run it); more roots
# and every ACL are added in the admin.
FILE_ROOTS = env.named_paths("FILE_ROOTS")
# A download is read and sent this many bytes at a time.
FILES_CHUNK_BYTES = env.integer("FILES_CHUNK_BYTES", 1024 * 1024, minimum=4096)
# nginx's internal location for downloads (X-Accel-Redirect: <it>/<root>/<path>); empty: sent by Django.
FILES_X_ACCEL_REDIRECT = env.string("FILES_X_ACCEL_REDIRECT", "")

ENVIRONMENT_VARIABLES = frozenset(env.READ)
