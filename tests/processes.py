"""Running the real process shells (`python -m api|workers|outbox`) as subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.dsn import DbDsn
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def dsn_url(dsn: DbDsn) -> str:
    """Render a DSN back into its `mysql://` form, password included (for a child process's IMAGES_DB_DSN)."""
    auth = quote(dsn.user, safe="") + (":" + quote(dsn.password, safe="") if dsn.password else "")
    query = f"?unix_socket={quote(dsn.unix_socket)}" if dsn.unix_socket else ""
    return f"mysql://{auth}@{dsn.host}:{dsn.port}/{dsn.database}{query}"


def documented_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) of every setting, as docs/settings.md and compose/.env.example list them."""
    rows = []
    for f in fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(default)
        elif default is None:
            default = ""
        rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows


def settings_env(settings: Settings) -> dict[str, str]:
    """Render settings back into the IMAGES_* variables the process reads."""
    env: dict[str, str] = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if value is None:  # unset: the process takes the default
            continue
        if isinstance(value, DbDsn):
            value = dsn_url(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, tuple):
            value = ",".join(value)
        env[f.metadata["env"]] = str(value)
    return env


class Process:
    """One shell process with its output in a log file.

    `args` are `python -m`'s, or with `command=True` a whole command line (nginx, say); `env` is
    added over the settings' variables (a replica's own port, the AWS_* variables).
    """

    def __init__(
        self,
        name: str,
        args: list[str],
        settings: Settings,
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
        command: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("IMAGES_")}
        environment |= settings_env(settings) | {"IMAGES_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"} | (env or {})
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args if command else [sys.executable, "-m", *args],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        """The process's JSON log lines, parsed (other lines, e.g. a traceback on stderr, skipped)."""
        events = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        return events

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, like a crashed machine."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)
        self._log.close()

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM and wait for a clean exit; return the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                raise AssertionError(f"{self.name} ignored SIGTERM for {timeout_s}s:\n{self.log()[-3000:]}") from None
        self._log.close()
        return int(self.popen.returncode)
