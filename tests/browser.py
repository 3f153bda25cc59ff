"""Headless Chromium for the tests (Debian's `chromium`, which `make test` installs when missing)."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests import services

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        services.unavailable("a headless Chromium (python scripts/devstack.py tools installs Debian's)")
    return str(found)


async def dump_dom(url: str, *, budget_ms: int = 15000, timeout_s: float = 90) -> str:
    """Open `url`, let its scripts run for `budget_ms` of virtual time (fetches included), return the DOM."""
    proc = await asyncio.create_subprocess_exec(
        browser(),
        "--headless=new",
        "--no-sandbox",  # running as root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"Chromium did not render {url} within {timeout_s:g} s")
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")
