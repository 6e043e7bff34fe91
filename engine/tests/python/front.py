#!/usr/bin/env python3
"""A service cloture cannot instrument (stdlib only): GET /total sums what back's /numbers returns.

It handles back's error statuses and refused or reset connections with a 503, but not a timeout: that one
ends in the generic handler as a 500. The bug cloture finds through its proxies. GET /total-or-zero answers
200 {"total": 0} instead of a 503: a fallback that hides back's failure from the caller. GET /both sums the
numbers of back and of other (OTHER_URL): it handles failed connections and timeouts of either with a 503,
but not an error status, which ends in the generic handler as a 500 (two bugs, one per dependency). GET
/partial sums what back and other answer, leaving out one that fails: it waits on each in turn, within its
0.5 s limit on each, but without a limit on the whole.
"""
import json
import os
import sys
import traceback
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACK = os.environ.get("BACK_URL", "http://127.0.0.1:7001")
OTHER = os.environ.get("OTHER_URL", "http://127.0.0.1:7002")


def numbers(base, traceparent):
    headers = {"traceparent": traceparent} if traceparent else {}
    request = urllib.request.Request(base + "/numbers", headers=headers)
    with urllib.request.urlopen(request, timeout=0.5) as response:
        return json.load(response)["numbers"]


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/":
            return self.reply(200, {"status": "ok"})
        if self.path == "/both":
            return self.both()
        if self.path == "/partial":
            return self.partial()
        if self.path not in ("/total", "/total-or-zero"):
            return self.reply(404, {"error": "not found"})
        unavailable = (200, {"total": 0}) if self.path == "/total-or-zero" else (503, None)
        try:
            try:
                # W3C trace context, passed on as received: cloture's proxy links this call to the request.
                traceparent = self.headers.get("traceparent")
                headers = {"traceparent": traceparent} if traceparent else {}
                request = urllib.request.Request(BACK + "/numbers", headers=headers)
                with urllib.request.urlopen(request, timeout=0.5) as response:
                    numbers = json.load(response)["numbers"]
            except urllib.error.HTTPError:
                return self.reply(unavailable[0], unavailable[1] or {"error": "back is malfunctioning"})
            except (ConnectionError, urllib.error.URLError):
                return self.reply(unavailable[0], unavailable[1] or {"error": "back is unavailable"})
            self.reply(200, {"total": sum(numbers)})
        except Exception:
            traceback.print_exc()
            self.reply(500, {"error": "internal server error"})

    def both(self):
        traceparent = self.headers.get("traceparent")
        try:
            try:
                total = sum(numbers(BACK, traceparent)) + sum(numbers(OTHER, traceparent))
            except urllib.error.HTTPError:
                raise
            except (ConnectionError, TimeoutError, urllib.error.URLError):
                return self.reply(503, {"error": "a dependency is unavailable"})
            self.reply(200, {"total": total})
        except Exception:
            traceback.print_exc()
            self.reply(500, {"error": "internal server error"})

    def partial(self):
        traceparent = self.headers.get("traceparent")
        total = 0
        for base in (BACK, OTHER):
            try:
                total += sum(numbers(base, traceparent))
            except Exception as error:
                print(f"left out {base}: {error!r}", file=sys.stderr)
        self.reply(200, {"total": total})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
