#!/usr/bin/env python3
"""A functional test comparing front's answers with the fault-free ones (`cloture.matches_reference`).

GET /total-or-zero: a 200 must be the answer of the fault-free run; a 503 is fine under a fault. front
answers 200 {"total": 0} when back fails — a fallback that hides the failure, which this test catches.
test_slow_when_faulted hangs whenever a fault was injected: the runner is killed at the deadline and
started again.
"""
import json
import os
import time
import urllib.error
import urllib.request

import cloture

FRONT = os.environ.get("FRONT_URL", "http://127.0.0.1:7000")


def get(path):
    try:
        with urllib.request.urlopen(FRONT + path, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_total_or_zero():
    status, body = get("/total-or-zero")
    if status == 200:
        assert cloture.matches_reference("front:total", body), f"200 {body}, not the fault-free answer"
    else:
        assert status == 503 and cloture.fault_injected(), f"unexpected answer: {status} {body}"


def test_slow_when_faulted():
    status, body = get("/total")
    if cloture.fault_injected():
        time.sleep(60)
    assert status == 200, f"unexpected answer: {status} {body}"
