"""The upload form's parsing: names as clients send them, limits, bodies split anywhere."""

from __future__ import annotations

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


def parse(data: bytes, *, chunk: int = 1 << 20, max_file_bytes: int = 1 << 20) -> _Form:
    form = _Form(max_file_bytes)
    parser = PushMultipartParser(BOUNDARY, header_charset="latin1")
    for start in range(0, len(data), chunk):
        for event in parser.parse(data[start : start + chunk]):
            form.feed(event)
    parser.close()
    return form


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
