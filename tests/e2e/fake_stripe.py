"""A tiny Stripe-shaped API for the tests and for docs/walkthrough.md: POST /v1/charges makes
a charge object, GET /v1/balance a balance object, anything else a Stripe-style 404. It trusts
the gate in front of it and records the client address the gate vouched for.

Standalone: /usr/bin/python3 tests/e2e/fake_stripe.py --port 9000   (127.0.0.1 only)"""
import argparse
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from servers import HttpServer


class FakeStripe(HttpServer):
    """A tiny Stripe-shaped API behind the gate: POST /v1/charges makes a charge object, GET
    /v1/balance a balance object. Records the client address the gate vouched for
    (X-Iplock-Client) and the key id of every request."""

    def __init__(self, port=0, verbose=False):
        self.seen = []      # (client address per the gate, method, path, key id)
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *a):
                if verbose:
                    print("fake-stripe: %s from %s (key %s)" % (self.requestline, self.headers.get("X-Iplock-Client"),
                                                               self.headers.get("X-Iplock-Key-Id")), flush=True)

            def _reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Request-Id", "req_test%d" % time.time_ns())
                self.end_headers()
                self.wfile.write(body)

            def _record(self):
                with api.lock:
                    api.seen.append((self.headers.get("X-Iplock-Client"), self.command,
                                     self.path.split("?")[0], self.headers.get("X-Iplock-Key-Id")))

            def do_GET(self):
                self._record()
                if self.path.split("?")[0] == "/v1/balance":
                    return self._reply(200, {
                        "object": "balance", "livemode": False,
                        "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
                        "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]})
                if self.path.startswith("/v1/careless"):   # an API that echoes the key it got
                    return self._reply(400, {"error": {"type": "invalid_request_error",
                                                       "message": "No such object for " + self.headers.get("Authorization", "")}})
                self._reply(404, {"error": {"type": "invalid_request_error",
                                            "message": f"Unrecognized request URL (GET: {self.path})"}})

            def do_POST(self):
                self._record()
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                if self.path.split("?")[0] != "/v1/charges":
                    return self._reply(404, {"error": {"type": "invalid_request_error",
                                                       "message": "Unrecognized request URL"}})
                amount = int(form.get("amount", ["0"])[0])
                now = int(time.time())
                self._reply(200, {
                    "id": "ch_%d" % time.time_ns(), "object": "charge", "amount": amount,
                    "amount_captured": amount, "amount_refunded": 0, "captured": True,
                    "currency": form.get("currency", ["usd"])[0], "created": now,
                    "description": form.get("description", [None])[0], "livemode": False,
                    "paid": True, "refunded": False, "status": "succeeded",
                    "source": {"id": "card_test", "object": "card", "brand": "Visa", "last4": "4242"},
                    "metadata": {}, "outcome": {"type": "authorized", "network_status": "approved_by_network"}})

        super().__init__(Handler, port)

    def clients(self):
        with self.lock:
            return [c for c, _, _, _ in self.seen]

    def clear(self):
        with self.lock:
            self.seen.clear()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="fake Stripe API on 127.0.0.1 (for the iplock walkthrough)")
    ap.add_argument("--port", type=int, default=9000)
    port = ap.parse_args().port
    api = FakeStripe(port, verbose=True)
    print(f"fake-stripe: listening on http://127.0.0.1:{port}", flush=True)
    try:
        api.thread.join()
    except KeyboardInterrupt:
        api.close()
