"""What an upload leaves on disk when its transaction fails (issue 3: no row without its file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.ingest import IncomingFile, ingest
from adapters.storage import FileStore, GroupWriter
from core.references import DEFAULT_REFERENCE_DATA
from core.settings import Settings
from tests import images
from tests.fakes import FakeUnitOfWork


class FailingCommit(FakeUnitOfWork):
    """A unit of work whose commit fails, surely or with its outcome unknown."""

    def __init__(self, *, in_doubt: bool) -> None:
        super().__init__()
        self._in_doubt = in_doubt

    async def commit(self) -> None:
        self.commit_in_doubt = self._in_doubt
        raise ConnectionResetError("the connection broke while COMMIT was in flight")


async def upload(tmp_path: Path, uow: FakeUnitOfWork) -> list[Path]:
    settings = Settings(upload_dir=str(tmp_path))
    with pytest.raises(ConnectionResetError):
        await ingest(
            [IncomingFile("a.jpg", images.jpeg())],
            uploader_id="u",
            category="PRODUCT",
            reference_data=DEFAULT_REFERENCE_DATA,
            settings=settings,
            writer=GroupWriter(FileStore(tmp_path)),
            uow=uow,
        )
    return [p for p in tmp_path.rglob("*") if p.is_file()]


async def test_a_commit_that_surely_failed_leaves_no_file(tmp_path: Path) -> None:
    assert await upload(tmp_path, FailingCommit(in_doubt=False)) == []


async def test_a_commit_in_doubt_keeps_the_file_for_the_orphan_sweep(tmp_path: Path) -> None:
    # The row may exist: removing its file would break "no row without its file".
    kept = await upload(tmp_path, FailingCommit(in_doubt=True))
    assert len(kept) == 1 and kept[0].read_bytes() == images.jpeg()
