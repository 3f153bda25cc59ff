"""Domain errors, one class per CONTRACT error code. The api maps codes to HTTP statuses."""

from __future__ import annotations


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


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyRequestInProgress(DomainError):
    code = "IDEMPOTENCY_REQUEST_IN_PROGRESS"


class IllegalTransition(InvalidImageStatus):
    """A status change the state table of CONTRACT section 3 does not allow."""
