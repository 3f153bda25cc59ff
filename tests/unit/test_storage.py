from __future__ import annotations

from pathlib import Path

import pytest

from adapters.storage import FileStore


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "", "a/./../b"])
def test_keys_that_could_leave_the_root_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        FileStore(tmp_path).path(key)


def test_write_is_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert store.write("A/2025/01/20/x.webp", b"data") == 4
    assert store.read("A/2025/01/20/x.webp") == b"data"
    assert [p.name for p in (tmp_path / "A/2025/01/20").iterdir()] == ["x.webp"]
