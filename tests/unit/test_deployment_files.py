"""Static checks of the deployment files (issue 7): what CI can check without a Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE_FILES = [ROOT / "compose" / "docker-compose.yml", ROOT / "compose" / "docker-compose.cluster.yml"]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it comes with the project's dev extras")
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    result = subprocess.run([tool("hadolint"), str(ROOT / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_files_follow_the_compose_specification() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, COMPOSE_FILES)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_env_example_names_exactly_the_settings_the_code_reads() -> None:
    text = (ROOT / "compose" / ".env.example").read_text()
    named = set(re.findall(r"^#?\s*(IMAGES_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert named == {name for name, _, _ in Settings.documented()}


def test_every_process_command_in_compose_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    compose = yaml.safe_load(COMPOSE_FILES[0].read_text())
    ours = {"api", "worker", "relay"}
    commands = {" ".join(compose["services"][name]["command"]) for name in ours}
    assert commands == {"python -m api", "python -m workers worker", "python -m outbox"}
    assert all(command in readme for command in commands)
    assert "compose/" in readme


@pytest.mark.parametrize("dockerfile", ["Dockerfile.api", "Dockerfile.worker"])
def test_images_run_as_a_non_root_user_with_a_healthcheck(dockerfile: str) -> None:
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^USER 10001", text, flags=re.MULTILINE) and "HEALTHCHECK" in text
