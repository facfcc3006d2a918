"""EXPLAIN (ANALYZE, BUFFERS) of the statements some requests run (`bench/events.py --explain`).

Run with the product's environment (DATABASE_URL of the database to look at);
the argument is a JSON list of ``{"name", "kind", "path"}`` (kind ``feed``:
as the benchmark's event reader, by token; ``admin``: as its superuser).
Each request goes through Django's test client once to warm up, once with
its statements captured; each statement on the event table is then run again
under EXPLAIN and its plan printed, with the statement count of the request.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allocation_project.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

HOST = {"HTTP_HOST": "127.0.0.1"}


def main() -> None:
    cases = json.loads(sys.argv[1])
    token = Token.objects.get(user__username="bench-reader").key
    feed = Client(HTTP_AUTHORIZATION=f"Token {token}", **HOST)
    admin = Client(**HOST)
    admin.force_login(get_user_model().objects.get(username="bench-admin"))
    for case in cases:
        client = feed if case["kind"] == "feed" else admin
        client.get(case["path"], secure=True)
        with CaptureQueriesContext(connection) as captured:
            status = client.get(case["path"], secure=True).status_code
        print(f"\n=== {case['name']}: {case['path']} -> {status}, {len(captured)} statements")
        for query in captured:
            sql = query["sql"]
            if "allocation_event" not in sql or not sql.lstrip().upper().startswith(
                ("SELECT", "WITH")
            ):
                continue
            print(f"--- {query['time']} s: {sql}")
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                print("\n".join(row[0] for row in cursor.fetchall()))


if __name__ == "__main__":
    main()
