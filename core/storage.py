"""Where image files live (`IMAGES_STORAGE_URL`, CONTRACT 7): a local directory or an S3 bucket.

`file:///srv/images` (or `file:relative/dir`) keeps files under a directory of this host: one
host only. `s3://bucket/prefix` keeps them as objects in an S3-compatible bucket, under the
prefix: any number of hosts. Keys are the same in both (`POST/2025/01/20/<uuid>.webp`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

FILE, S3 = "file", "s3"
# S3's bucket naming rules (the subset every S3-compatible server accepts): 3-63 characters of
# lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
PREFIX_MAX_CHARS = 256  # S3 keys end at 1,024 bytes; ours are ~70 under the prefix
# The health check's probe files and objects: never an image's key, left alone by the orphan sweep.
PROBE_PREFIX = ".health-"


@dataclass(frozen=True)
class StorageUrl:
    """A parsed storage URL: the scheme, the directory or bucket, and (S3) the key prefix."""

    scheme: str
    location: str  # file: the directory; s3: the bucket
    prefix: str = ""  # s3: the keys' prefix, no slash at either end ("" for the bucket's root)

    @classmethod
    def directory(cls, path: str) -> StorageUrl:
        """File storage under a directory."""
        return cls(FILE, path)

    @property
    def local(self) -> bool:
        """Whether the files are on this host's disk."""
        return self.scheme == FILE

    @property
    def bucket(self) -> str:
        """The S3 bucket (only for s3://)."""
        assert self.scheme == S3, "a file:// storage has no bucket"
        return self.location

    def __str__(self) -> str:
        if self.scheme == S3:
            return f"s3://{self.location}/{self.prefix}" if self.prefix else f"s3://{self.location}"
        return f"file://{self.location}" if self.location.startswith("/") else f"file:{self.location}"


def parse_storage_url(raw: str) -> StorageUrl:
    """Parse `file:///dir`, `file:relative/dir` or `s3://bucket[/prefix]`; raise ValueError otherwise."""
    parts = urlsplit(raw.strip())
    if parts.query or parts.fragment:
        raise ValueError("a storage URL takes no query or fragment")
    if parts.scheme == FILE:
        if parts.netloc not in ("", "localhost"):
            raise ValueError("file:// storage is on this host: file:///absolute/dir or file:relative/dir")
        if not parts.path.strip("/") and parts.path != "/":
            raise ValueError("file:// needs a directory")
        return StorageUrl(FILE, parts.path)
    if parts.scheme == S3:
        bucket = parts.netloc
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ValueError(f"{bucket!r} is not a bucket name (3-63 of a-z, 0-9, '.', '-')")
        prefix = parts.path.strip("/")
        segments = prefix.split("/") if prefix else []
        if any(s in ("", ".", "..") for s in segments) or len(prefix) > PREFIX_MAX_CHARS:
            raise ValueError(f"prefix {prefix!r} must be plain path segments, at most {PREFIX_MAX_CHARS} characters")
        return StorageUrl(S3, bucket, prefix)
    raise ValueError("expected file:///dir or s3://bucket/prefix")
