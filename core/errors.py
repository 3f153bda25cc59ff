"""Domain errors, one class per CONTRACT error code. The api maps codes to HTTP statuses."""

from __future__ import annotations

import errno


class DomainError(Exception):
    """A rule of the contract was broken; `code` is the contract's error code."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    code = "VALIDATION_ERROR"


class ReferenceTypeNotFound(DomainError):
    code = "REFERENCE_TYPE_NOT_FOUND"


class InvalidFileName(DomainError):
    code = "INVALID_FILE_NAME"


class FileExtensionNotFound(DomainError):
    code = "FILE_EXTENSION_NOT_FOUND"


class InvalidFileExtension(DomainError):
    code = "INVALID_FILE_EXTENSION"


class InvalidFileContent(DomainError):
    code = "INVALID_FILE_CONTENT"


class FileTooLarge(DomainError):
    code = "FILE_TOO_LARGE"


class RequestTooLarge(DomainError):
    code = "REQUEST_TOO_LARGE"


class ImageDimensionsExceeded(DomainError):
    code = "IMAGE_DIMENSIONS_EXCEEDED"


class ImageNotFound(DomainError):
    code = "IMAGE_NOT_FOUND"


class ImageProcessingInProgress(DomainError):
    code = "IMAGE_PROCESSING_IN_PROGRESS"


class ImageProcessingFailed(DomainError):
    code = "IMAGE_PROCESSING_FAILED"


class InvalidImageStatus(DomainError):
    code = "INVALID_IMAGE_STATUS"


class ImageAlreadyConfirmed(DomainError):
    code = "IMAGE_ALREADY_CONFIRMED"


class NotAllowedMultipleImages(DomainError):
    code = "NOT_ALLOWED_MULTIPLE_IMAGES"


class ImageCountExceeded(DomainError):
    code = "IMAGE_COUNT_EXCEEDED"


class InvalidImageSequence(DomainError):
    code = "INVALID_IMAGE_SEQUENCE"


class InvalidReference(DomainError):
    code = "INVALID_REFERENCE"


class ImageSaveFailed(DomainError):
    code = "IMAGE_SAVE_FAILED"


def outcome_unknown(what: str) -> ImageSaveFailed:
    """The answer when a commit's outcome is unknown (CONTRACT 2): never 503, which says nothing was stored."""
    return ImageSaveFailed(
        f"the {what}'s outcome is unknown: the database connection was lost during its commit. Retry with the"
        " same Idempotency-Key (it answers what was stored), or read the images"
    )


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyRequestInProgress(DomainError):
    code = "IDEMPOTENCY_REQUEST_IN_PROGRESS"


class IllegalTransition(InvalidImageStatus):
    """A status change the state table of CONTRACT section 3 does not allow."""


class Unauthorized(DomainError):
    """No token, or one that cannot be trusted (RFC 6750 3.1: `error` is None when none was sent)."""

    code = "UNAUTHORIZED"

    def __init__(self, message: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(message)
        self.error = error


class Forbidden(DomainError):
    """A trusted caller without the permission (`scope`: the scope it lacks, when one would do)."""

    code = "FORBIDDEN"

    def __init__(self, message: str, *, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope


class QuotaExceeded(DomainError):
    """The uploader's quota would be exceeded; it fits again after `retry_after_s`."""

    code = "QUOTA_EXCEEDED"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(DomainError):
    """Something the request needs cannot be reached now; nothing was done (CONTRACT 2: 503, retry).

    `retry_after_s`: the Retry-After to answer with (None: the api's outage default).
    """

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(ServiceUnavailable):
    """The process holds as much as it may (issue 26): nothing was read or stored; retry shortly."""

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, retry_after_s=retry_after_s)


class StorageFull(ServiceUnavailable):
    """The disk the files go to is full (ENOSPC): nothing was stored; it fits again once space is freed.

    503 rather than 507 INSUFFICIENT_STORAGE (CONTRACT 2, docs/operations): the contract's clients
    already retry a 503 with Retry-After, and it keeps its promise, nothing was stored; 507 is
    WebDAV's, which no client of this API knows, and says nothing about trying again.
    """

    def __init__(self, message: str = "the image store is full: nothing was stored; retry later") -> None:
        super().__init__(message, retry_after_s=30)


def is_disk_full(exc: BaseException) -> bool:
    """Tell whether an error is a full disk or quota (ENOSPC, EDQUOT): waiting for space cures it, not a retry now."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
