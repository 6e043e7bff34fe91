#!/usr/bin/env python3
"""A service cloture cannot instrument (stdlib only): GET /numbers answers {"numbers": [1, 2, 3]}."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = (200, {"numbers": [1, 2, 3]}) if self.path in ("/numbers", "/") else (404, {"error": "no"})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
