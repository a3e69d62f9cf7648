"""One resumable HTTP download attempt, shared by the Hub and the package-index sources.

Bytes go to ``dest.part`` and are appended from where an earlier attempt (or a killed run) stopped, with a
``Range`` request; the file is renamed to ``dest`` only when complete. Whatever arrived before a failure stays
in ``.part``: retrying is the caller's decision (the Hub source retries with backoff, the package source asks
the user to rerun).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import progress

log = logging.getLogger(__name__)


def part_size(dest: Path) -> int:
    part = dest.with_name(dest.name + ".part")
    return part.stat().st_size if part.exists() else 0


def get(
    url: str,
    dest: Path,
    *,
    expected: int | None,
    headers: dict[str, str] | None = None,
    raise_for_status: Callable[[Any], None],
) -> None:
    """Fetch ``url`` into ``dest`` (``expected`` bytes when known). Raises httpx errors, or what
    ``raise_for_status(response)`` raises for an error answer, after reading its body."""
    import httpx

    part = dest.with_name(dest.name + ".part")
    have = part_size(dest)
    if expected is not None and have > expected:  # garbage from elsewhere: start over
        part.unlink()
        have = 0
    req_headers = dict(headers or {})
    if have:
        req_headers["Range"] = f"bytes={have}-"
    timeout = httpx.Timeout(30.0, read=120.0)
    # Authorization goes to the first origin only: httpx drops it when a redirect leaves it (the Hub's LFS CDN).
    with (
        httpx.Client(follow_redirects=True, timeout=timeout) as client,
        client.stream("GET", url, headers=req_headers) as resp,
    ):
        if resp.status_code == 416 and have and (expected is None or have == expected):
            pass  # nothing left to send: the part is whole
        else:
            if resp.status_code >= 400:
                resp.read()
                raise_for_status(resp)
            mode = "ab" if (have and resp.status_code == 206) else "wb"
            if have and resp.status_code == 200:
                log.info("server ignored the Range request for %s; restarting it", dest.name)
            with (
                open(part, mode) as f,
                progress.bytes_bar(dest.name, expected, start=have if mode == "ab" else 0) as bar,
            ):
                for chunk in resp.iter_bytes():
                    f.write(chunk)
                    bar(len(chunk))
    size = part.stat().st_size
    if expected is not None and size != expected:
        raise httpx.RemoteProtocolError(f"{dest.name}: got {size} of {expected} bytes")
    os.replace(part, dest)
