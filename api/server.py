"""Serving the app: aiohttp's own HTTP-parser errors answered with the CONTRACT error body.

An over-long request line or header, or bytes that are not HTTP, never reach the app's
middleware: aiohttp's connection handler answers them itself, in plain text (issue 13). The
runner here builds its server with a connection handler whose error answer is the contract's
JSON body; everything else is aiohttp's as it is. Tests serve the app through the same runner.
"""

from __future__ import annotations

import asyncio
import signal
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from api import keys
from api.errors import CODE_OF_STATUS, error_body
from api.metrics import render_metrics

log = structlog.get_logger("api")


class _JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, with the contract's error body for the errors it answers itself."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:  # the client's bytes were not HTTP we accept: one line, no traceback (anyone can send them)
            log.info("http_request_refused", status=status, remote=request.remote, reason=str(exc or message)[:300])
        if request.writer.output_size > 0:  # part of a response went out: the connection is broken
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        code = CODE_OF_STATUS.get(status, "HTTP_ERROR") if status < 500 else "INTERNAL_SERVER_ERROR"
        text = (message or "").strip() or HTTPStatus(status).phrase
        path = "/"  # the request line could not be read, or was not even HTTP: its path is unknown
        response = web.Response(
            status=status, body=error_body(status, code, text, path), content_type="application/json"
        )
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """An AppRunner whose connections answer parser errors with the contract's JSON body."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        # The same handler, request factory and connection settings as aiohttp's own server.
        return _JsonErrorServer(made.request_handler, **{**self._kwargs, "request_factory": made.request_factory})


async def serve(app: web.Application, host: str, port: int, *, metrics_port: int = 0, **runner_args: Any) -> None:
    """Serve `app` until SIGTERM or SIGINT; then stop accepting, finish in-flight requests, clean up.

    With `metrics_port`, `/metrics` is served there alone, for Prometheus on a private network,
    and not on the API's port (api/app.py leaves it out).
    """
    runner = ApiRunner(app, access_log=None, **runner_args)
    await runner.setup()
    metrics_runner = _metrics_runner(app) if metrics_port else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("api_listening", url=f"http://{host}:{port}/")
        if metrics_runner is not None:
            await metrics_runner.setup()
            await web.TCPSite(metrics_runner, host, metrics_port).start()
            log.info("metrics_listening", url=f"http://{host}:{metrics_port}/metrics")
        await stop.wait()
        log.info("stopping")
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()


def _metrics_runner(app: web.Application) -> web.AppRunner:
    """A listener of its own for `/metrics`, reading the api app's pool."""

    async def metrics(request: web.Request) -> web.Response:
        return await render_metrics(app[keys.POOL])

    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", metrics)
    return web.AppRunner(metrics_app, access_log=None)
