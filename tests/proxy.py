"""A TCP proxy the tests can cut and restore, to take a service away without stopping it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_port`; `cut()` drops every connection and refuses new ones.

    With `tls`, it terminates TLS: clients speak TLS to it, the target plain TCP.
    """

    def __init__(self, port: int, target_port: int, *, tls: ssl.SSLContext | None = None) -> None:
        self.port, self.target_port, self.tls = port, target_port, tls
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.tls)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        # abort() closes each socket in a callback of the next loop turn: let it run, or a cut at the end
        # of a test leaves open transports to the garbage collector (an unraisable-warning failure, later).
        await asyncio.sleep(0)

    async def restore(self) -> None:
        await self.start()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await self._relay(reader, writer, up_reader, up_writer)

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        """Carry one connection's bytes both ways until either side closes."""
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


class ProxyThread:
    """A TcpProxy on a loop of its own, in a thread: it serves while the tests' loop is not running."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)
        return self.proxy

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.cut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()  # its self-pipe sockets too: left open, they warn when collected, in a later test


class CommitCutter(TcpProxy):
    """A TcpProxy to MariaDB that, once `arm()`ed, lets one transaction commit and never says so.

    The first query carrying a pipelined COMMIT (`;\\nCOMMIT`: the service's transactions send
    their writes and the COMMIT as one query) reaches the server; the client's connection is then
    dropped before any answer reaches it, while the server's side stays open, so the server runs
    the whole query: the transaction commits, and the client only knows it lost its connection
    with the COMMIT on its way. Plain `COMMIT` queries (autocommit bookkeeping) pass untouched.
    """

    MARKER = b";\nCOMMIT"

    def __init__(self, port: int, target_port: int) -> None:
        super().__init__(port, target_port)
        self.armed = False
        self.cuts = 0

    def arm(self) -> None:
        self.armed = True

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        committing = asyncio.Event()

        async def client_to_server() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await reader.read(65536):
                    if self.armed and self.MARKER in data:
                        self.armed = False
                        committing.set()
                    up_writer.write(data)
                    await up_writer.drain()

        async def server_to_client() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await up_reader.read(65536):
                    if committing.is_set():
                        if not writer.transport.is_closing():
                            self.cuts += 1
                            writer.transport.abort()  # the client hears nothing; the server's answer is drained
                        continue
                    writer.write(data)
                    await writer.drain()

        await asyncio.gather(client_to_server(), server_to_client())
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()
