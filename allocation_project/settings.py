"""Settings, read from the environment (see .env.example).

A ``.env`` file in the project folder, when there is one, fills in variables
the environment leaves unset: ``scripts/run`` writes it for local development.
DATABASE_URL picks the engine: unset means the embedded SQLite file in the
project folder; ``postgres://...`` is the production engine.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# A checkout's local settings (scripts/run writes DEBUG=1 and a generated
# SECRET_KEY there), so that every manage.py command sees the same ones. The
# file only fills in what the real environment leaves unset (read_env does not
# overwrite), so a deployment's variables always win. ENV_FILE names another
# file, or none when empty; the test suite empties it, so a developer's .env
# cannot change what the tests see. The Docker image never contains a .env.
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE:
    if Path(ENV_FILE).is_file():
        environ.Env.read_env(ENV_FILE)
    elif "ENV_FILE" in env.ENVIRON:
        raise ImproperlyConfigured(f"ENV_FILE={ENV_FILE} is not a file.")

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable; for "
            "local development, ./scripts/run writes a .env with DEBUG=1 and a "
            "generated SECRET_KEY."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 (DEBUG only)
# Earlier keys, still accepted (sessions; webhook secrets encrypted under them).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allocation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "allocation.api.middleware.APIBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "allocation_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "allocation_project.wsgi.application"

# -- Database ---------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Writers queue for the database lock at BEGIN instead of failing halfway
    # through a transaction; WAL lets readers go on while one writes.
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_TIMEOUT", default=20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file, not shared-cache memory, so that threads in
    # concurrency tests wait on SQLite's lock the way servers do.
    import os
    import tempfile

    _db.setdefault("TEST", {})["NAME"] = env.str(
        "SQLITE_TEST_NAME",
        default=os.path.join(tempfile.gettempdir(), f"allocation-test-{os.getpid()}.sqlite3"),
    )
else:
    if _db["ENGINE"] == "django.db.backends.postgresql":
        # The same backend, with a health check that costs no query (see the module).
        _db["ENGINE"] = "allocation.db.postgresql"
    # Behind a pooler in transaction mode (PgBouncer's pool_mode=transaction)
    # consecutive transactions of one connection run on different server
    # sessions, so nothing may outlive a transaction: no prepared statements
    # (and server-side cursors only inside a transaction: the commands that
    # stream rows read them in one).
    _pool_mode = env.str("DATABASE_POOL_MODE", default="session")
    if _pool_mode not in ("session", "transaction"):
        raise ImproperlyConfigured(
            f"DATABASE_POOL_MODE must be 'session' or 'transaction', not {_pool_mode!r}."
        )
    _db["PREPARED_STATEMENTS"] = env.bool(
        "DATABASE_PREPARED_STATEMENTS", default=_pool_mode == "session"
    )
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3)
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- Auth, i18n, static -------------------------------------------------------

# Django's ModelBackend, with a user's permissions read in one query (see the module).
AUTHENTICATION_BACKENDS = ["allocation.auth.backends.ModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Tests run with DEBUG off but without collectstatic: let whitenoise find files.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # The hashed, compressed names come from collectstatic's manifest;
        # without collectstatic (DEBUG, or files found by the finders, as in
        # tests) there is no manifest and every {% static %} would fail.
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or WHITENOISE_USE_FINDERS
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "/admin/login/"

# -- Security (``manage.py check --deploy`` is clean with DEBUG off) ---------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# HSTS preload is a commitment browsers keep for months, so it is opt-in
# (SECURE_HSTS_PRELOAD=1). Django warns (security.W021) whenever it is off;
# off is this project's deliberate default, so that one warning is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Largest request body the API reads; larger ones get 413 payload_too_large.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

# Webhooks (SPEC 6.2): 1 lets subscriptions deliver to loopback, private and
# link-local hosts (development and tests); off, so that a subscriber cannot
# make the service probe the internal network.
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)

# -- REST framework -------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous API client gets 401 with WWW-Authenticate.
        "allocation.auth.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["allocation.auth.permissions.ModelWritePermissions"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "allocation.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "allocation.api.pagination.Pagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "allocation.api.negotiation.ContentNegotiation",
    "EXCEPTION_HANDLER": "allocation.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Allocation service API",
    "DESCRIPTION": "Decides which stock batch each customer order line ships from.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise load a badge from validator.swagger.io on any
    # host but localhost: the docs must work with no external network access.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    # The API is JSON (SPEC 2). Form parsers stay enabled for the browsable
    # API's HTML forms, but are not part of the documented contract: a form
    # cannot say null, so fuzzing them against the JSON schema is meaningless.
    "PARSER_WHITELIST": ["allocation.api.parsers.BoundedJSONParser"],
    # Batches and lines both have a "status" field, with different choices.
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "allocation.api.serializers.BATCH_STATUSES",
        "LineStatusEnum": "allocation.api.serializers.LINE_STATUSES",
        "EventTypeEnum": "allocation.api.serializers.EVENT_TYPE_NAMES",
        "WebhookStatusEnum": "allocation.api.serializers.WEBHOOK_STATUS_NAMES",
        # One code, one enum, whichever error body (a line's or an order's) carries it.
        "LineConflictCodeEnum": ["line_conflict"],
        "OutOfStockCodeEnum": ["out_of_stock"],
        "InvalidSkuCodeEnum": ["invalid_sku"],
    },
}

# -- Logging ----------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
