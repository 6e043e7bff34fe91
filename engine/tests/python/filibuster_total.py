#!/usr/bin/env python3
"""A functional test written for Filibuster, run unchanged by cloture (as a command, or by its runner).

GET /total through front is 200 {"total": 6}; when a fault was injected on back, front may answer 503
instead. Filibuster's assertions come from the `cloture` package's `filibuster.assertions`. front's URL is
FRONT_URL.
"""
import json
import os
import urllib.error
import urllib.request

from filibuster.assertions import was_fault_injected, was_fault_injected_on

FRONT = os.environ.get("FRONT_URL", "http://127.0.0.1:7000")


def test_total():
    try:
        with urllib.request.urlopen(FRONT + "/total", timeout=5) as response:
            status, body = response.status, json.load(response)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read().decode(errors="replace")
    if was_fault_injected_on("back"):
        assert status in (200, 503), f"unexpected answer under a fault on back: {status} {body}"
    else:
        assert not was_fault_injected(), "a fault was injected, but not on back"
        assert (status, body) == (200, {"total": 6}), f"unexpected answer: {status} {body}"


if __name__ == "__main__":
    test_total()
