"""Headless Chromium for the tests that check a rendered page: found on PATH, required in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def chromium() -> str:
    """The browser's path; skips the test where it is missing, fails it where CI requires it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("AIPC_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (apt-get install chromium)")
        pytest.skip("chromium not installed (Debian package `chromium`)")
    return found


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the page (and its scripts) ran."""
    chrome = chromium()
    return subprocess.run(
        [chrome, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip


def screenshot(page: Path, profile: Path, shot: Path, size: str = "1400,2000") -> Path:
    chrome = chromium()
    subprocess.run([chrome, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120, check=True)  # fmt: skip
    return shot
