# syntax=docker/dockerfile:1
# Production image: gunicorn serving the Django app, static files via whitenoise.
#
#   docker build -t allocation .
#   docker run --rm -e SECRET_KEY=... -e ALLOWED_HOSTS=example.com \
#       -e DATABASE_URL=postgres://user:pass@db:5432/allocation allocation python manage.py migrate
#   docker run -p 8000:8000 -e SECRET_KEY=... -e ALLOWED_HOSTS=example.com \
#       -e DATABASE_URL=postgres://user:pass@db:5432/allocation allocation
#
# Configuration is environment only (see .env.example). WEB_CONCURRENCY sets
# the number of gunicorn workers.
#
# Webhooks need a second, long-running process from the same image, beside the
# web one (another container or service with the same environment). It stops
# cleanly on SIGTERM (the requests in flight finish); several may run at once:
#   docker run -e SECRET_KEY=... -e DATABASE_URL=postgres://user:pass@db:5432/allocation \
#       allocation python manage.py deliver_webhooks
FROM python:3.11.14-slim-trixie

# Without DATABASE_URL the app would put SQLite next to the (read-only) code;
# default to a writable directory instead. Production sets a postgres:// URL.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_CONCURRENCY=3 \
    DATABASE_URL=sqlite:////app/data/db.sqlite3

# A fixed numeric id, so USER resolves the same on any host and runtime.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when requirements change.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# Code stays owned by root: the app user can read it, not change it.
COPY . .
RUN SECRET_KEY=build-only DEBUG=0 python manage.py collectstatic --noinput \
    && mkdir -p /app/data \
    && chown 10001:10001 /app/data

USER 10001:10001

EXPOSE 8000

# Ask /healthz with the first allowed host, so Django's host check passes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = os.environ.get('ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.'); u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': h if h not in ('', '*') else 'localhost'}), timeout=4)"]

# Everything else (workers from WEB_CONCURRENCY, timeouts, request limits,
# access log, no control socket) is in gunicorn.conf.py, shared with the
# benchmarks. Worker heartbeats go to memory, not the container's overlay disk.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--worker-tmp-dir", "/dev/shm"]
