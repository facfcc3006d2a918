"""Settings of the floor: a bare Django + DRF app on the product's own tables.

Not part of the product. It exists so the benchmark can say how close the
product comes to what the database and the framework allow on this machine:
no middleware, no authentication, no sessions, no templates, no models of its
own; the same database settings as production (persistent connections).
"""

import environ

env = environ.Env()

SECRET_KEY = env.str("SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1"])
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.floor.urls"
WSGI_APPLICATION = "bench.floor.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if env.bool("FLOOR_PREPARED", default=False):
    # What-if (bench/perf.py --floor-prepared): the product's backend, whose
    # prepared statements the floor's queries then use as the product's do.
    DATABASES["default"]["ENGINE"] = "allocation.db.postgresql"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

LOGGING = {"version": 1, "disable_existing_loggers": False}
