"""Waiting on a server in another process from outside, as a polling client would:
the only way a test learns that a child server took or recovered something."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Ask ``check`` until it answers something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
    return found


def events_until(http: httpx.Client, handler_id: str, kind: str) -> list[str]:
    """The types of the run's recorded events from the start, up to one of ``kind``."""
    seen = []
    with http.stream("GET", f"/events/{handler_id}", params={"after_sequence": "-1"}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:])["type"])
                if seen[-1] == kind:
                    break
    return seen
