"""The upload form's parsing: names as clients send them, limits, bodies split anywhere."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from multipart import PushMultipartParser

from api.uploads import MAX_FIELD_BYTES, _Form
from core import errors

BOUNDARY = "b0undary"


def body(disposition: str, content: bytes) -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode()
        + content
        + f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="category"\r\n\r\nPRODUCT'
        f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def parse(data: bytes, *, chunk: int = 1 << 20, max_file_bytes: int = 1 << 20, spool_dir: Path | None = None) -> _Form:
    async def feed_all() -> _Form:
        form = _Form(max_file_bytes, spool_dir or Path("/nonexistent/spool"))  # small parts never spool
        parser = PushMultipartParser(BOUNDARY, header_charset="latin1")
        for start in range(0, len(data), chunk):
            for event in parser.parse(data[start : start + chunk]):
                await form.feed(event)
        parser.close()
        return form

    return asyncio.run(feed_all())


@pytest.mark.parametrize(
    ("sent", "name"),
    [
        ("사진.jpg", "사진.jpg"),
        ("사진 %221%22.jpg", '사진 "1".jpg'),  # browsers (WHATWG)
        ('사진 \\"1\\".jpg', '사진 "1".jpg'),  # curl, older clients
        ("C:\\\\photos\\\\a.jpg", "C:\\\\photos\\\\a.jpg"),  # kept as sent: the contract refuses it
    ],
)
def test_file_names_are_read_as_clients_send_them(sent: str, name: str) -> None:
    form = parse(body(f'name="file"; filename="{sent}"', b"data"))
    assert [(f.file_name, f.data) for f in form.single] == [(name, b"data")]
    assert form.fields == {"category": "PRODUCT"}


def test_a_name_that_is_not_utf8_is_replaced_not_refused() -> None:
    euc_kr = "사진".encode("euc-kr")  # an old client's Korean file name
    data = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
        + euc_kr
        + f'.jpg"\r\n\r\nx\r\n--{BOUNDARY}--\r\n'.encode()
    )
    name = parse(data).single[0].file_name
    assert name is not None and name.endswith(".jpg") and "\ufffd" in name


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_a_body_split_anywhere_gives_the_same_parts(chunk: int) -> None:
    content = bytes(range(256)) * 40 + b"\r\n--b0und"  # a near-boundary inside the file
    form = parse(body('name="files"; filename="a.png"', content), chunk=chunk)
    assert [f.data for f in form.multi] == [content]
    assert form.fields == {"category": "PRODUCT"}


def test_a_file_over_its_limit_stops_the_parse() -> None:
    with pytest.raises(errors.FileTooLarge):
        parse(body('name="file"; filename="a.jpg"', b"x" * 101), chunk=50, max_file_bytes=100)


def test_a_field_over_64_kib_stops_the_parse() -> None:
    with pytest.raises(errors.FileTooLarge):
        parse(body('name="uploaderId"', b"u" * (MAX_FIELD_BYTES + 1)))


def test_a_request_past_the_spool_threshold_sends_its_parts_to_disk_as_they_arrive(tmp_path: Path) -> None:
    """Parts within SPOOL_AFTER stay in memory; the one that takes the request past it is written to disk."""
    small, large = b"s" * 1000, bytes(range(256)) * (3 * 4096)  # 1000 B, then 3 MiB
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{n}.jpg"\r\n\r\n'.encode() + c
        for n, c in enumerate((small, large))
    ]
    data = b"\r\n".join(parts) + f"\r\n--{BOUNDARY}--\r\n".encode()
    form = parse(data, chunk=256 * 1024, max_file_bytes=8 << 20, spool_dir=tmp_path)
    held, spooled = form.multi
    assert (held.data, held.spooled) == (small, None)
    assert spooled.data == b"" and spooled.spooled is not None and spooled.size == len(large)
    assert Path(spooled.spooled.path).read_bytes() == large
    assert spooled.spooled.digest == hashlib.sha256(large).hexdigest()
    asyncio.run(form.discard())
    assert list(tmp_path.rglob("*.part")) == []  # nobody stored it: gone with the request
