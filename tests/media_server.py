"""An HTTP server on 127.0.0.1 for the tests that download: it serves a folder, records every request, and has the
endpoints that misbehave the way a hostile or broken server does.

    /slow                             answers after 3 s
    /trickle?every=S&count=N          N bytes, one every S seconds (default 0.2 s, 15 bytes), no Content-Length
    /big?size=N[&declared=0]          N zero bytes, in 1 MB writes, with (or without) Content-Length
    /redirect?to=URL                  302 to URL
    /loop                             302 to itself
"""

import contextlib
import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class MediaServer(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []  # every request path, in order (the tests clear it)

    def do_GET(self):  # noqa: N802 - the name http.server calls
        MediaServer.requests.append(self.path)
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path == "/slow":
            time.sleep(3)
            self._headers(200, length=4)
            self.wfile.write(b"late")
        elif url.path == "/trickle":
            self._headers(200)
            for _ in range(int(query.get("count", 15))):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(float(query.get("every", 0.2)))
        elif url.path == "/big":
            size = int(query["size"])
            self._headers(200, length=size if query.get("declared", "1") == "1" else None)
            for _ in range(size // (1 << 20)):
                self.wfile.write(b"\0" * (1 << 20))
            self.wfile.write(b"\0" * (size % (1 << 20)))
        elif url.path in ("/redirect", "/loop"):
            self._headers(302, length=0, location=query.get("to", "/loop"))
        else:
            super().do_GET()

    def _headers(self, status: int, length: int | None = None, location: str | None = None) -> None:
        self.send_response(status)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if location is not None:
            self.send_header("Location", location)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients that gave up (timeouts, size caps) break the connection


@contextlib.contextmanager
def serve(folder: str | Path) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 for the length of the block; yields the base URL."""
    server = QuietServer(("127.0.0.1", 0), functools.partial(MediaServer, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
