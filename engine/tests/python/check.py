#!/usr/bin/env python3
"""The functional test of the Python pair: GET /total is 200 {"total": 6}, or a 503 or another 200 when
cloture injected a fault in this execution (asked from its coordinator). Exit status 0 passes.

`check.py URL [PATH TOTAL [TIMEOUT]]` asks PATH instead, expecting {"total": TOTAL}, with a time limit of
TIMEOUT seconds (5 by default)."""
import json
import os
import sys
import urllib.error
import urllib.request


def fault_injected():
    url = f"{os.environ['CLOTURE_COORDINATOR']}/v1/executions/{os.environ['CLOTURE_EXECUTION']}/injected"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["injected"]


path, total = (sys.argv[2], int(sys.argv[3])) if len(sys.argv) > 3 else ("/total", 6)
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 5
try:
    with urllib.request.urlopen(sys.argv[1] + path, timeout=timeout) as response:
        status, body = response.status, json.load(response)
except urllib.error.HTTPError as error:
    status, body = error.code, error.read().decode(errors="replace")
if status == 200 and body == {"total": total}:
    sys.exit(0)
if status in (200, 503) and fault_injected():
    sys.exit(0)
sys.exit(f"unexpected answer: {status} {body}")
