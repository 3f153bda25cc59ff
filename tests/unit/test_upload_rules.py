from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core import errors, fields, upload_rules
from tests.fakes import REFERENCE_DATA as DATA


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (None, errors.InvalidFileName),
        ("  ", errors.InvalidFileName),
        ("../a.jpg", errors.InvalidFileName),
        ("dir/a.jpg", errors.InvalidFileName),
        ("dir\\a.jpg", errors.InvalidFileName),
        ("photo", errors.FileExtensionNotFound),
        ("photo.", errors.FileExtensionNotFound),
        (".jpg", errors.FileExtensionNotFound),
        ("a.php.jpg", errors.InvalidFileExtension),
        ("a.exe", errors.InvalidFileExtension),
    ],
)
def test_bad_file_names_get_their_contract_code(name: str | None, error: type[errors.DomainError]) -> None:
    with pytest.raises(error):
        upload_rules.extension_of(name, DATA)


@pytest.mark.parametrize(("name", "ext"), [("a.jpg", "JPG"), ("A.JPEG", "JPEG"), ("x.HeIc", "HEIC"), ("v.mov", "MOV")])
def test_supported_extensions_are_case_insensitive(name: str, ext: str) -> None:
    assert upload_rules.extension_of(name, DATA) == ext


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_uploader_is_a_validation_error(raw: str | None) -> None:
    with pytest.raises(errors.ValidationError):
        upload_rules.require_uploader(raw)


@pytest.mark.parametrize("raw", [None, "", " ", "SHOE"])
def test_missing_or_unknown_category_is_reference_type_not_found(raw: str | None) -> None:
    """The message lists the codes that would do, so a client can fix its request without the docs."""
    with pytest.raises(
        errors.ReferenceTypeNotFound, match="one of BANNER, CATEGORY, POST, PRODUCT, PROFILE, USER_BACKGROUND"
    ):
        upload_rules.require_reference_type(raw, DATA)


def test_category_is_upper_cased() -> None:
    assert upload_rules.require_reference_type(" user_background ", DATA).code == "USER_BACKGROUND"


def test_storage_key_uses_the_utc_date() -> None:
    at = datetime.fromisoformat("2025-01-20T23:30:00-05:00")  # 2025-01-21 04:30 UTC
    assert upload_rules.image_key("PRODUCT", at, "abc", "WEBP") == "PRODUCT/2025/01/21/abc.webp"
    assert upload_rules.image_key("POST", at.astimezone(UTC), "abc", "JPEG") == "POST/2025/01/21/abc.jpg"


@pytest.mark.parametrize(
    ("origin", "suffix"), [("JPEG", "webp"), ("HEIC", "webp"), ("MP4", "mp4"), ("MOV", "mov"), ("SVG", "svg")]
)
def test_the_upload_url_names_the_file_it_will_become(origin: str, suffix: str) -> None:
    from core.images import ImageStatus

    at = datetime(2025, 1, 20, tzinfo=UTC)
    original = upload_rules.StoredOriginal("id-1", "POST", "u", "_originals/x", origin, 10, 0, 0)
    image = upload_rules.new_image(original, base_url="http://x/", at=at, status=ImageStatus.TEMP)
    assert image.image_url == f"http://x/POST/2025/01/20/id-1.{suffix}"


def test_a_text_field_longer_than_its_column_is_a_validation_error() -> None:
    assert upload_rules.require_uploader("u" * fields.UPLOADER_ID) == "u" * fields.UPLOADER_ID
    with pytest.raises(errors.ValidationError, match="uploaderId"):
        upload_rules.require_uploader("u" * 1_000)
    with pytest.raises(errors.ValidationError, match="category"):
        upload_rules.require_reference_type("P" * (fields.CATEGORY + 1), DATA)
    with pytest.raises(errors.ValidationError, match="file name"):
        upload_rules.extension_of("a" * fields.FILE_NAME + ".jpg", DATA)


def test_a_long_reason_is_clipped_to_its_column() -> None:
    assert len(fields.clip("x" * 5_000)) == fields.REASON
    assert fields.clip("short") == "short"
