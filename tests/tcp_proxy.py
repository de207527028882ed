"""A small TCP proxy on loopback for fault tests (tests/faults/), with toxiproxy's toxics:

* down (``cut``/``restore``): refuse new connections and cut the open ones, so a client sees
  the server vanish while the real server keeps running for everyone else;
* blackhole (``blackhole``/``heal``): connections stay open but nothing gets through, so a
  client waits for answers that never come;
* reset (``reset``): abort the open connections once (TCP RST), new ones pass;
* latency and jitter (``delay``): each chunk waits ``latency`` + up to ``jitter`` seconds,
  in order, in both directions;
* slicer (``slice``): each chunk is written in slices of a few bytes with a pause between,
  so every protocol frame arrives in pieces.

``clear`` removes latency and slicing. ``connections`` and ``resets`` count what happened."""

from __future__ import annotations

import asyncio
import contextlib
import random
from urllib.parse import urlsplit


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.up = True
        self.blackholed = False
        self.latency = 0.0
        self.jitter = 0.0
        self.slice_size = 0
        self.slice_pause = 0.0
        self._rng = random.Random(0)
        self.connections = 0
        self.resets = 0

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

    def reset(self) -> None:
        """Abort every open connection once (a reset); the proxy stays up."""
        self.resets += len(self._writers) // 2
        self.cut()
        self.restore()

    def delay(self, latency: float, jitter: float = 0.0, seed: int = 0) -> None:
        """Add ``latency`` s, plus up to ``jitter`` s drawn from a seeded generator, to every chunk."""
        self.latency, self.jitter, self._rng = latency, jitter, random.Random(seed)

    def slice(self, size: int, pause: float) -> None:
        """Write every chunk in slices of ``size`` bytes, ``pause`` s apart."""
        self.slice_size, self.slice_pause = size, pause

    def clear(self) -> None:
        """No latency, no slicing."""
        self.latency = self.jitter = self.slice_pause = 0.0
        self.slice_size = 0

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
        self.connections += 1
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
                if self.latency or self.jitter:
                    await asyncio.sleep(self.latency + self.jitter * self._rng.random())
                if self.slice_size:
                    for start in range(0, len(data), self.slice_size):
                        writer.write(data[start : start + self.slice_size])
                        await writer.drain()
                        await asyncio.sleep(self.slice_pause)
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
