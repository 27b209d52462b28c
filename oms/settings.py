"""Settings for the OMS back office.

Everything that differs between a laptop, CI and production comes from the environment
(django-environ). The defaults are the *embedded* set-up that `make demo` runs on: SQLite and a
local-memory cache, no service needed. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY,
ALLOWED_HOSTS and leaves DEBUG off.
"""

import hashlib
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env is a convenience for developers; it is git-ignored and optional.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean strictly: a typo such as DEBUG=ture must fail loudly, not mean False."""
    raw = env.str(name, default=str(default))
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG and env_bool("REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # Only for the embedded demo and tests: a per-checkout key that is never committed.
    SECRET_KEY = "insecure-local-only-" + str(BASE_DIR)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "oms.api",
    "orders",
    "invoices",
    "legacy_migration",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before the API's fast path, so that its answers get the header too (it only sets a header).
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Cached API reads with a JWT are answered here, without the session/CSRF/auth/messages
    # layers below, which such a read has no use for (oms/api/middleware.py says why).
    "oms.api.middleware.CachedReadMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "oms.urls"
WSGI_APPLICATION = "oms.wsgi.application"

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
            ],
        },
    },
]

# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'oms.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # JIT compilation pays off for long analytical queries, not for an order desk's short ones:
    # measured on the 1M-order changelist, it added ~0.7 s to a deep page.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL + a busy timeout let the demo server and a management command share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
# The legacy monolith's database (read-only for us): SQL Server (mssql://), Oracle (oracle://),
# or a stand-in (sqlite:///, postgres://, mysql:// for MariaDB). Absent means no legacy side.
LEGACY_DATABASE_URL = env.str("LEGACY_DATABASE_URL", default="")
if LEGACY_DATABASE_URL:
    from legacy_migration.connections import legacy_database_config

    DATABASES["legacy"] = legacy_database_config(LEGACY_DATABASE_URL)
DATABASE_ROUTERS = ["legacy_migration.routers.LegacyRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------------------------
# Cache: Redis when REDIS_URL is set, otherwise local memory (the embedded default).
# ---------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="oms"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Short timeouts: a dead Redis must cost milliseconds, not a request.
                "SOCKET_CONNECT_TIMEOUT": 0.25,
                "SOCKET_TIMEOUT": 0.25,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    # The API's hot-read cache (oms/cache.py). Errors are NOT ignored here: oms.cache catches them
    # itself, opens its circuit breaker and serves from local memory and the database.
    CACHES["hot"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="oms") + ":hot",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": env.float("CACHE_REDIS_TIMEOUT", default=0.25),
            "SOCKET_TIMEOUT": env.float("CACHE_REDIS_TIMEOUT", default=0.25),
            "IGNORE_EXCEPTIONS": False,
        },
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "oms"}}
# Seconds a cached API value lives (writes make it stale at once; this only bounds memory).
CACHE_TTL = env.int("CACHE_TTL", default=600)
# While Redis is down: how long each process keeps values in local memory (the staleness a write
# in another process can cause), and how long before it tries Redis again.
CACHE_LOCAL_TTL = env.float("CACHE_LOCAL_TTL", default=5.0)
CACHE_REDIS_RETRY_SECONDS = env.float("CACHE_REDIS_RETRY_SECONDS", default=5.0)
# Bumps missed during an outage that a process remembers one by one; beyond, it bumps everything.
CACHE_PENDING_LIMIT = env.int("CACHE_PENDING_LIMIT", default=10_000)

# ---------------------------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# ---------------------------------------------------------------------------------------------
# REST API (oms/api): JWT for machines, the session for the browsable API and the docs.
# ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "oms.api.auth.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["oms.api.permissions.RolePermissions"],
    "DEFAULT_THROTTLE_CLASSES": ["oms.api.throttling.UserThrottle", "oms.api.throttling.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="1200/min"),
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        # Password guessing against the token endpoint, per client address.
        "token": env.str("API_THROTTLE_TOKEN", default="20/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "oms.api.pagination.KeysetPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": ["oms.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "oms.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "oms.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=env.int("JWT_REFRESH_HOURS", default=24)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
    # A key of its own (derived from SECRET_KEY unless JWT_SIGNING_KEY is set): rotating it logs
    # out every machine without touching sessions, and it always has the 256 bits HS256 wants.
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default="")
    or hashlib.sha256(f"oms-jwt:{SECRET_KEY}".encode()).hexdigest(),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OMS API",
    "DESCRIPTION": "Orders, invoices and customers of the Order Management System.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.OrderStatus",
        "CustomerStatusEnum": "orders.models.CustomerStatus",
        "InvoiceStatusEnum": "invoices.models.InvoiceStatus",
        "InvoiceKindEnum": "invoices.models.InvoiceKind",
        "CurrencyEnum": "oms.money.CURRENCY_CHOICES",
        "ShadowResourceEnum": "legacy_migration.models.ShadowResource",
        "ShadowOriginEnum": "legacy_migration.models.ShadowOrigin",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums"],
}
# Idempotency-Key records are kept this long; a key reused later starts a new request.
API_IDEMPOTENCY_HOURS = env.int("API_IDEMPOTENCY_HOURS", default=24)


# ---------------------------------------------------------------------------------------------
# Read sources of the API (legacy_migration/shadow.py): where detail reads of each resource come
# from while both systems run. `modern` (the default), `legacy` (served from the legacy database
# through the mapping: the rollback switch), or `shadow` (served from modern, a sample compared
# with legacy in the background, every mismatch recorded).
# ---------------------------------------------------------------------------------------------
READ_SOURCE_CHOICES = ("modern", "legacy", "shadow")


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.str(name, default=default).strip().lower()
    if raw not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {raw!r}")
    return raw


def env_number(name: str, default: float, *, minimum: float, maximum: float, integer: bool = False) -> float:
    """A number within [minimum, maximum]; anything else (a typo, a percentage) fails loudly."""
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a {'whole ' if integer else ''}number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {raw!r}")
    return value


READ_SOURCE_ORDERS = env_choice("READ_SOURCE_ORDERS", READ_SOURCE_CHOICES, "modern")
READ_SOURCE_INVOICES = env_choice("READ_SOURCE_INVOICES", READ_SOURCE_CHOICES, "modern")
READ_SOURCE_CUSTOMERS = env_choice("READ_SOURCE_CUSTOMERS", READ_SOURCE_CHOICES, "modern")
if "legacy" not in DATABASES and any(
        source != "modern" for source in (READ_SOURCE_ORDERS, READ_SOURCE_INVOICES, READ_SOURCE_CUSTOMERS)):
    raise ImproperlyConfigured("READ_SOURCE_* = legacy or shadow needs the legacy database: set LEGACY_DATABASE_URL")
# The share of shadow-mode detail reads compared with legacy (0 = none, 1 = every one).
SHADOW_SAMPLE_RATE = env_number("SHADOW_SAMPLE_RATE", 0.05, minimum=0.0, maximum=1.0)
# The time one comparison may take (legacy read + compare); beyond it the legacy query is
# interrupted where the driver allows it, and the comparison is counted as timed out.
SHADOW_TIMEOUT_MS = int(env_number("SHADOW_TIMEOUT_MS", 500, minimum=1, maximum=60_000, integer=True))
# Background comparers per process, and comparisons that may wait for them; beyond, new ones are dropped.
SHADOW_WORKERS = int(env_number("SHADOW_WORKERS", 2, minimum=1, maximum=32, integer=True))
SHADOW_QUEUE_SIZE = int(env_number("SHADOW_QUEUE_SIZE", 100, minimum=1, maximum=100_000, integer=True))

# ---------------------------------------------------------------------------------------------
# I18N / time: stored in UTC, shown in the desk's zone.
# ---------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="America/New_York")
USE_I18N = True
USE_TZ = True
# Legacy DATETIME values carry no zone; this is the zone the monolith's servers ran in.
LEGACY_TIME_ZONE = env.str("LEGACY_TIME_ZONE", default="America/New_York")

# ---------------------------------------------------------------------------------------------
# Static files
# ---------------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# ---------------------------------------------------------------------------------------------
# Security switches for production (all on when DEBUG is off and HTTPS is terminated upstream).
# ---------------------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "SAMEORIGIN"  # the printable invoice is previewed in a same-origin frame

# ---------------------------------------------------------------------------------------------
# Business settings
# ---------------------------------------------------------------------------------------------
# Invoices are due this many days after issue unless a due date is given.
INVOICE_PAYMENT_TERMS_DAYS = env.int("INVOICE_PAYMENT_TERMS_DAYS", default=30)
# Who issues the invoices, as printed on them (address lines separated by "|").
INVOICE_ISSUER = {
    "name": env.str("INVOICE_ISSUER_NAME", default="Order Management System"),
    "address_lines": [line for line in env.str("INVOICE_ISSUER_ADDRESS", default="").split("|") if line.strip()],
    "email": env.str("INVOICE_ISSUER_EMAIL", default=""),
    "phone": env.str("INVOICE_ISSUER_PHONE", default=""),
    "tax_id": env.str("INVOICE_ISSUER_TAX_ID", default=""),
    "paper": env.str("INVOICE_PAPER", default="letter"),
}
# Rows per admin changelist page for the big tables.
ADMIN_LIST_PER_PAGE = env.int("ADMIN_LIST_PER_PAGE", default=50)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
