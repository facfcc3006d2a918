"""Webhook delivery tests' receiver and history (SPEC 6.2)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

from django.core.management import call_command

from allocation import models as orm
from allocation import services
from allocation.webhooks import selectors

SKU = "RED-CHAIR"


class Receiver:
    """An HTTP server that records each POST and answers with the next scripted status
    (200 once the script is used up)."""

    def __init__(self, port: int = 0, script: list[int] | None = None, delay: float = 0.0):
        self.requests: list[dict] = []
        self.script = list(script or [])
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.requests.append(
                        {
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "status": status,
                        }
                    )
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.in_flight -= 1
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[int]:
        return [int(r["headers"]["webhook-id"]) for r in self.requests]

    def delivered_ids(self) -> list[int]:
        return [int(r["headers"]["webhook-id"]) for r in self.requests if r["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def history() -> list[int]:
    services.add_batch(reference="b1", sku=SKU, purchased_quantity=10)
    services.allocate(order_id="o1", sku=SKU, qty=2)
    services.allocate(order_id="o2", sku=SKU, qty=3)
    services.change_batch(reference="b1", purchased_quantity=4)  # o2 backordered
    return list(orm.Event.objects.order_by("id").values_list("id", flat=True))


def row(subscription_id: int) -> orm.WebhookSubscription:
    return selectors.subscription(subscription_id)


def deliver_once() -> str:
    out = StringIO()
    call_command("deliver_webhooks", "--once", stdout=out)
    return out.getvalue()
