"""A minimal Chrome DevTools Protocol client: send a command, wait for its answer, keep the events.

The protocol is JSON over a WebSocket: each command carries an ``id`` and gets a reply with the
same ``id``; everything else that arrives is an event (``{"method": ..., "params": ...}``), which
this client queues for the caller to read with :meth:`CDPSession.events`.
"""

from __future__ import annotations

import json
import time

import websocket  # the websocket-client package


class CDPError(RuntimeError):
    """Chromium answered a command with an error."""


class CDPSession:
    """One WebSocket connection to a page target."""

    def __init__(self, url: str, timeout: float = 30.0):
        # Chromium refuses a DevTools connection that sends an Origin header it does not allow.
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self.next_id = 0
        self.queue: list[dict] = []
        self.handlers: dict[str, callable] = {}

    def on(self, method: str, handler) -> None:
        """Call ``handler(params)`` for each event ``method`` as soon as it arrives."""
        self.handlers[method] = handler

    def _receive(self, timeout: float) -> dict | None:
        self.ws.settimeout(max(timeout, 0.01))
        try:
            message = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in message:
            handler = self.handlers.get(message["method"])
            if handler is not None:
                handler(message.get("params", {}))
            self.queue.append(message)
        return message

    def send_nowait(self, method: str, **params) -> None:
        """Send a command and do not wait for its answer (for use inside an event handler)."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))

    def send(self, method: str, **params) -> dict:
        """Send a command and return its result (events that arrive meanwhile are queued)."""
        self.next_id += 1
        command_id = self.next_id
        self.ws.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = self._receive(deadline - time.monotonic())
            if message is not None and message.get("id") == command_id:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
        raise TimeoutError(f"Chromium did not answer {method} within {self.timeout:.0f} s")

    def wait_for(self, method: str, timeout: float) -> dict | None:
        """Wait until event ``method`` arrives (or was queued already); None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.queue:
                if message["method"] == method:
                    self.queue.remove(message)
                    return message.get("params", {})
            if time.monotonic() >= deadline:
                return None
            self._receive(deadline - time.monotonic())

    def pump(self, seconds: float) -> None:
        """Handle the events that arrive during the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._receive(deadline - time.monotonic())

    def events(self) -> list[dict]:
        """Take every queued event."""
        taken, self.queue = self.queue, []
        return taken

    def close(self) -> None:
        self.ws.close()
