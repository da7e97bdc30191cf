"""Local receivers for notification tests: a minimal SMTP server on asyncio streams and an HTTP server that
keeps the JSON bodies POSTed to it, each on 127.0.0.1 in a thread of its own.

The SMTP server speaks just what a client handing over mail needs (RFC 5321: greeting, EHLO/HELO, MAIL,
RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) and keeps every message it accepts.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SmtpReceiver:
    """An SMTP server on 127.0.0.1 (a free port) keeping the messages it accepts in :attr:`messages`."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smtp-receiver", daemon=True)

    def __enter__(self) -> SmtpReceiver:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the SMTP receiver did not start")
        return self

    def __exit__(self, *_exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        server.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(f"{line}\r\n".encode())
            await writer.drain()

        await reply("220 receiver ESMTP")
        while line := await reader.readline():
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                await reply("250 receiver")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                await reply("250 OK")
            elif verb == "DATA":
                await reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := await reader.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                self.messages.append(email.message_from_bytes(b"".join(lines), policy=email.policy.default))
                await reply("250 accepted")
            elif verb == "QUIT":
                await reply("221 bye")
                break
            else:
                await reply("502 not implemented")
        writer.close()


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (a free port) keeping every JSON body POSTed to it in :attr:`bodies`."""

    def __init__(self):
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
