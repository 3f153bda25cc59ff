"""The real processes: api, relay and workers started as subprocesses against the session's services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from core.dsn import DbDsn
from core.settings import Settings
from tests import services
from tests.conftest import make_settings
from tests.e2e.client import ImageClient
from tests.processes import Process


@dataclass
class Stack:
    settings: Settings
    log_dir: Path
    processes: dict[str, Process] = field(default_factory=dict)
    worker_metrics_port: int = 0
    relay_metrics_port: int = 0

    def start(
        self,
        name: str,
        args: list[str],
        settings: Settings | None = None,
        *,
        env: dict[str, str] | None = None,
        command: bool = False,
    ) -> Process:
        self.processes[name] = Process(name, args, settings or self.settings, self.log_dir, env=env, command=command)
        return self.processes[name]

    def logs(self) -> str:
        return "\n".join(f"== {n}\n{p.log()[-4000:]}" for n, p in self.processes.items())


def worker_ready(p: Process) -> bool:
    return "Worker ready" in p.log()


def stack_settings(database: DbDsn, kafka: str, root: Path, **overrides: object) -> Settings:
    """The settings of a stack of its own: a free port, its own upload directory and consumer group."""
    (root / "uploads").mkdir()
    port = services.free_port()
    return replace(
        make_settings(db_dsn=database, bootstrap=kafka, upload_dir=str(root / "uploads")),
        api_port=port,
        base_url=f"http://127.0.0.1:{port}/images/",
        worker_app_id=f"e2e-workers-{port}",
        **overrides,  # type: ignore[arg-type]
    )


@contextlib.contextmanager
def running_stack(settings: Settings, root: Path, *, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The api, a relay and a worker on `settings` (and `env`), until every one stops cleanly on SIGTERM."""
    s = Stack(settings, root)
    try:
        api = s.start("api", ["api"], env=env)
        s.relay_metrics_port = services.free_port()
        s.start("relay", ["outbox"], replace(settings, relay_metrics_port=s.relay_metrics_port), env=env)
        # workers-1 alone serves its metrics (every process needs a port of its own).
        s.worker_metrics_port = services.free_port()
        workers = s.start(
            "workers-1", ["workers", "worker"], replace(settings, worker_metrics_port=s.worker_metrics_port), env=env
        )
        port = settings.api_port
        services.wait_until(lambda: services.port_answers(port), timeout_s=30, what="the api to listen")
        services.wait_until(lambda: worker_ready(workers), timeout_s=60, what="workers-1 to join its group")
        assert api.alive()
        yield s
    except BaseException:
        print(s.logs())
        raise
    finally:
        codes = {name: p.terminate() for name, p in reversed(list(s.processes.items()))}
        bad = {n: c for n, c in codes.items() if c != 0}
        if bad:
            print(s.logs())
        assert not bad, f"processes did not stop cleanly on SIGTERM: {bad}"


@pytest.fixture(scope="module")
def stack(database: DbDsn, kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    with running_stack(stack_settings(database, kafka, root), root) as s:
        yield s


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[ImageClient]:
    client = ImageClient(f"http://127.0.0.1:{stack.settings.api_port}")
    yield client
    await client.close()
