"""Typed keys of the objects the app shares between handlers."""

from __future__ import annotations

import aiomysql
from aiohttp import web

from adapters.auth.tokens import TokenVerifier
from adapters.db.group_commit import GroupCommit
from adapters.db.reference_cache import ReferenceCache
from adapters.files.directory import Directory
from adapters.files.writer_process import FileWriterProcess
from adapters.images.process_pool import ConverterPool
from adapters.outage import Outage
from core.auth import Caller
from core.ports import Storage
from core.settings import Settings
from core.upload import UploadPorts

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", aiomysql.Pool)
GROUP_COMMIT = web.AppKey("group_commit", GroupCommit)  # uploads' transactions, committed together
REFERENCES = web.AppKey("references", ReferenceCache)
STORAGE = web.AppKey("storage", Storage)  # where image files live (IMAGES_STORAGE_URL)
SERVED_DIRECTORY = web.AppKey("served_directory", Directory)  # a file:// storage's directory, which /images/ serves
FILE_WRITER = web.AppKey("file_writer", FileWriterProcess)  # a file:// store's uploads are written by it
CONVERTER = web.AppKey("converter", ConverterPool)
UPLOADS = web.AppKey("uploads", UploadPorts)  # an upload's ports: group commit, the file writer
SYNC_UPLOADS = web.AppKey("sync_uploads", UploadPorts)  # the same, converting in CONVERTER first
OUTAGE = web.AppKey("outage", Outage)  # MariaDB's: one log line per outage, requests answer 503
STORE_OUTAGE = web.AppKey("store_outage", Outage)  # the object store's, the same way
VERIFIER = web.AppKey("verifier", TokenVerifier)  # bearer tokens' (IMAGES_AUTH=jwt)
CALLER = web.RequestKey("caller", Caller)  # who sent the request (api/auth.py)
# Fields a handler adds to the request's one canonical log line (image ids, reference id, ...).
LOG_FIELDS = web.RequestKey("log_fields", dict)
ERROR_CODE = web.RequestKey("error_code", str)  # the contract's code of an error answer, for the metrics
