#!/usr/bin/env python3
"""The cinema's functional test (stdlib only), for `cloture explore`: as a command, or a function for the runner.

GET /users/chris_rivers/bookings: 200 with the expected body; or, when cloture injected a fault in this
execution, 503 or 404. As a command (`--functional-test "python3 tests/external/test_user_bookings.py"`)
exit status 0 passes; through the runner (`--runner "python3 -m cloture.runner
tests/external/test_user_bookings.py:test_user_bookings"`) the function returning passes. The users URL
comes from the first argument of the command, else CINEMA_USERS_URL (default http://127.0.0.1:5000);
whether a fault was injected comes from the coordinator cloture runs (CLOTURE_COORDINATOR,
CLOTURE_EXECUTION, read anew for every execution).
"""
import json
import os
import sys
import urllib.error
import urllib.request

EXPECTED = {"20151201": [{"rating": 8.8, "title": "Creed", "uri": "/movies/267eedb8-0f5d-42d5-8f43-72426b9fb3e6"}]}


def fault_injected():
    coordinator = os.environ.get("CLOTURE_COORDINATOR")
    execution = os.environ.get("CLOTURE_EXECUTION")
    if not coordinator or not execution:
        return False
    with urllib.request.urlopen(f"{coordinator}/v1/executions/{execution}/injected", timeout=5) as response:
        return json.load(response)["injected"]


def test_user_bookings(users=None):
    users = users or os.environ.get("CINEMA_USERS_URL", "http://127.0.0.1:5000")
    try:
        with urllib.request.urlopen(f"{users}/users/chris_rivers/bookings", timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    if status == 200:
        if fault_injected() or json.loads(body) != EXPECTED:
            sys.exit(f"unexpected answer: 200 {body!r}")
    elif not (fault_injected() and status in (503, 404)):
        sys.exit(f"unexpected answer: {status} {body.decode(errors='replace')}")


if __name__ == "__main__":
    test_user_bookings(sys.argv[1] if len(sys.argv) > 1 else None)
