"""gunicorn settings, read from ./gunicorn.conf.py by default (``gunicorn`` with no arguments).

Every value can be overridden from the environment (the names below) or on
the command line. The defaults suit a service behind a reverse proxy that
terminates TLS; sync workers are simple and predictable, and the timeouts
bound what a slow or stalled client can hold.
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


wsgi_app = "allocation_project.wsgi"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Workers: WEB_CONCURRENCY (the usual PaaS variable), else 2 per CPU + 1.
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = _int("GUNICORN_THREADS", 1)

# A sync worker is busy for as long as its client is: a request (a slow
# upload included) that takes longer than ``timeout`` gets the worker killed
# and replaced, so a stalled client cannot hold one for ever.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On a restart or SIGTERM, requests in flight get this long to finish.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive connections (gthread workers) are closed after this many seconds.
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Bounds on the request head, before Django sees anything; the body limit is
# API_MAX_BODY_BYTES (413 payload_too_large).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# Recycle workers now and then (jittered, so they do not all restart at once).
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# Access log to stdout, error log to stderr (the container collects both).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# No runtime control socket (gunicornc): it defaults to one path per user, which
# several masters on one host would fight over; signals manage the master.
control_socket_disable = True
