"""The MP4/MOV structure check (issue 13): a box walk that only well-formed files pass."""

from __future__ import annotations

import pytest

from adapters.images.containers import MAX_BOXES, InvalidContainer, boxes, container_format
from tests import images
from tests.images import box


@pytest.mark.parametrize(("major", "fmt"), [(b"isom", "MP4"), (b"mp42", "MP4"), (b"3gp5", "MP4"), (b"qt  ", "MOV")])
def test_a_well_formed_file_is_recognised_by_its_brand(major: bytes, fmt: str) -> None:
    assert container_format(images.mp4(major)) == fmt


def test_a_quicktime_file_without_ftyp_is_a_mov() -> None:
    legacy = box(b"moov", box(b"mvhd", bytes(100))) + box(b"mdat", bytes(16))
    assert container_format(legacy) == "MOV"


def test_a_last_box_may_run_to_the_end_of_the_file_and_sizes_may_be_64_bit() -> None:
    big_mdat = (1).to_bytes(4, "big") + b"mdat" + (16 + 32).to_bytes(8, "big") + bytes(32)
    open_ended = (0).to_bytes(4, "big") + b"mdat" + bytes(40)
    assert container_format(images.mp4()[: -len(box(b"mdat", bytes(64)))] + big_mdat + open_ended) == "MP4"


@pytest.mark.parametrize(
    "data",
    [
        b"\0\0\0\x08free<?php system($_GET['c']); ?>",  # named shell.jpg, once stored READY as .mov
        b"\0\0\0\x18ftypisom\0\0\0\0isommp41<html><script>alert(1)</script></html>",  # page.mp4
        images.mp4()[:-10],  # truncated
        images.mp4() + b"\0\0\0",  # stray bytes after the last box
        box(b"ftyp", b"isom\0\0\0\0") + box(b"mdat", bytes(8)),  # no moov
        images.mp4() + box(b"moov", box(b"mvhd", bytes(8))),  # two moov
        box(b"ftyp", b"isom\0\0\0\0") + box(b"moov", box(b"trak")),  # moov without mvhd
        box(b"ftyp", b"abcd\0\0\0\0abcd") + box(b"moov", box(b"mvhd")),  # unknown brand
        box(b"ftyp", b"isom\0\0\0\0") + (4).to_bytes(4, "big") + b"moov",  # size smaller than its header
        box(b"ftyp", b"isom\0\0\0\0") + box(b"mo\x00v", box(b"mvhd")),  # type not printable
        box(b"ftyp", b"is"),  # ftyp too short for a brand
        box(b"html", b"<p>hi</p>"),  # first box is not ftyp nor a QuickTime atom
        b"",
    ],
)
def test_a_malformed_file_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidContainer):
        container_format(data)


def test_the_walk_stops_after_max_boxes() -> None:
    data = box(b"free") * (MAX_BOXES + 1)
    with pytest.raises(InvalidContainer, match="more than"):
        boxes(data)
