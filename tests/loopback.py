"""An ``http.server`` for tests that stops at once.

``serve_forever()`` checks for ``shutdown()`` only between polls (0.5 s by default), so every
test using a server paid up to half a second in teardown. This loop waits on the listening
socket and on a wake-up socket together: ``stop()`` writes one byte and the loop ends now.
"""

from __future__ import annotations

import selectors
import socket
import threading
from http.server import ThreadingHTTPServer


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 (port chosen by the OS) with ``start``/``stop``."""

    daemon_threads = True
    block_on_close = False  # handlers that hang on purpose must not hold up teardown

    def __init__(self, handler: type[object]) -> None:
        super().__init__(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
        self.port = int(self.server_address[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                self._handle_request_noblock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        self.server_close()
        self._wake_r.close()
        self._wake_w.close()
