"""A small TCP proxy on loopback for fault tests, with two of toxiproxy's toxics: "down"
(refuse new connections and cut the open ones, so a client sees the server vanish while
the real server keeps running for everyone else) and "timeout" (a blackhole: connections
stay open but nothing gets through, so a client waits for answers that never come)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.up = True
        self.blackholed = False

    @classmethod
    def to(cls, url: str) -> TcpProxy:
        """A proxy to the server a URL names (postgresql://…, amqp://…)."""
        real = urlsplit(url)
        return cls(real.hostname, real.port)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        self.cut()
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    def cut(self) -> None:
        """Go down: close every open connection and refuse new ones."""
        self.up = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.up = True

    def blackhole(self) -> None:
        """Swallow every byte from now on, in both directions, on every connection."""
        self.blackholed = True

    def heal(self) -> None:
        """End a blackhole: its connections lost bytes, so they are cut; new ones pass."""
        self.cut()
        self.blackholed = False
        self.restore()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self.blackholed:
                    continue
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


def through(url: str, port: int, query: str = "") -> str:
    """``url`` pointed at a proxy on loopback ``port`` (credentials and path kept; ``query``
    replaces the query when given)."""
    real = urlsplit(url)
    credentials = real.netloc.rsplit("@", 1)[0] + "@" if "@" in real.netloc else ""
    return real._replace(netloc=f"{credentials}127.0.0.1:{port}", query=query or real.query).geturl()
