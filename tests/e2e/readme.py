"""The README's shell blocks, run as a developer would run them against a test's own stack."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

from core.settings import Settings
from tests import images, services
from tests.processes import ROOT, settings_env


def readme_block(heading: str, document: str = "README.md") -> str:
    """The first shell block under a heading of the README (or another document), exactly as written there."""
    section = (ROOT / document).read_text().split(heading, 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


async def run_readme_block(script: str, settings: Settings, tmp_path: Path) -> dict:
    """Run a README block as a developer would (a `photo.jpg` and `.venv` beside it); return its last line's event."""
    if not shutil.which("jq"):
        services.unavailable("jq (python scripts/devstack.py tools installs Debian's)")
    local = "API=http://127.0.0.1:8080\n"
    assert local in script, "the block names the local API"
    script = script.replace(local, f"API=http://127.0.0.1:{settings.api_port}\n")  # this stack's port
    (tmp_path / "photo.jpg").write_bytes(images.noisy_jpeg(640, 480))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {**settings_env(settings), "PATH": os.environ["PATH"], "IMAGES_LOG_FORMAT": "json"}
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    event = json.loads(done.stdout.strip().splitlines()[-1])
    assert (event["topic"], event["value"]["eventType"]) == ("product-image-changed", "IMAGES_CHANGED")
    assert event["key"].startswith("product-"), event["key"]
    return event  # type: ignore[no-any-return]


async def run_readme_block_failing(script: str, settings: Settings, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a README block as a person pasting it would (no `set -e` of ours), in `tmp_path` as it is."""
    tmp_path.mkdir(exist_ok=True)
    script = script.replace("API=http://127.0.0.1:8080\n", f"API=http://127.0.0.1:{settings.api_port}\n")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {**settings_env(settings), "PATH": os.environ["PATH"], "IMAGES_LOG_FORMAT": "json"}
    return await asyncio.to_thread(
        subprocess.run, ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
