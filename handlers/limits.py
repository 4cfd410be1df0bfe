"""Request size limits answered in the error format (seed 001 §19), before anything is buffered.

- `LimitedApplication`: the Tornado Application whose non-streaming routes (every JSON route;
  only the upload handlers stream their bodies, `handlers/uploads.py`) take at most
  `MAX_JSON_KB` of body. A declared `Content-Length` over it is answered at once, a chunked
  body as soon as it passes it: 413 ``PAYLOAD_TOO_LARGE``; what was received is dropped, the
  rest is discarded unread into memory and the connection is closed after the answer.
- `LimitedHTTPServer`: the HTTPServer whose connections answer request headers over
  `MAX_HEADER_KB` with 431 ``HEADERS_TOO_LARGE`` and a malformed request with 400
  ``BAD_REQUEST``, in JSON (Tornado alone closes the connection silently, or sends an empty
  400).
"""
from __future__ import annotations

import json
from typing import Any

import tornado.web
from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream, UnsatisfiableReadError

from documents.errors import DomainError
from handlers.base import ApiHandler
from handlers.routing import RouteIndex


class PayloadTooLarge(DomainError):
    """413 `PAYLOAD_TOO_LARGE`: a JSON body over `MAX_JSON_KB`."""

    status, error_code = 413, "PAYLOAD_TOO_LARGE"


class PayloadTooLargeHandler(ApiHandler):
    """Answers the request whose body went over the limit (no auth, no rate limit)."""

    rate_limit = None
    route_name = "(body over the limit)"

    async def prepare(self) -> None:
        self.set_header("X-Request-ID", self.request_id)
        limit_kb = self.settings_.max_json_bytes // 1024
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit_kb} KB")


class _BodyLimit(httputil.HTTPMessageDelegate):
    """Wraps the delegate of a non-streaming route: counts the body, refuses past `limit`."""

    def __init__(self, application: LimitedApplication, request: httputil.HTTPServerRequest,
                 inner: httputil.HTTPMessageDelegate, limit: int) -> None:
        self.application = application
        self.request = request
        self.inner: httputil.HTTPMessageDelegate | None = inner
        self.limit = limit
        self.received = 0

    def headers_received(self, start_line, headers):
        declared = headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.limit:
            self._refuse()
            return None
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes):
        if self.inner is None:
            return None
        self.received += len(chunk)
        if self.received > self.limit:
            self._refuse()
            return None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if self.inner is not None:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if self.inner is not None:
            self.inner.on_connection_close()

    def _refuse(self) -> None:
        self.inner = None  # drops the chunks held so far
        self.request.body = b""
        refusal = tornado.web.Application.get_handler_delegate(
            self.application, self.request, PayloadTooLargeHandler,
            {"services": self.application.settings["services"]})
        refusal.execute()


class LimitedApplication(tornado.web.Application):
    """A Tornado Application that bounds the body of every non-streaming route by the
    `max_json_bytes` of its services' settings (413 PAYLOAD_TOO_LARGE), and finds a
    request's route among the rules of its first two path segments (`RouteIndex`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.route_index = RouteIndex(self.wildcard_router.rules)

    def find_handler(self, request, **kwargs):
        if len(self.default_router.rules) > 1:  # host-specific tables (`add_handlers`) first
            return super().find_handler(request, **kwargs)
        for rule in self.route_index.candidates(request.path):
            params = rule.matcher.match(request)
            if params is not None:
                return self.get_handler_delegate(request, rule.target, rule.target_kwargs,
                                                 params.get("path_args"),
                                                 params.get("path_kwargs"))
        return super().find_handler(request, **kwargs)  # the default handler: a JSON 404

    def get_handler_delegate(self, request, target_class, target_kwargs=None,
                             path_args=None, path_kwargs=None):
        delegate = super().get_handler_delegate(request, target_class, target_kwargs,
                                                path_args, path_kwargs)
        if getattr(target_class, "_stream_request_body", False):
            return delegate  # uploads count their own parts (storage/receive.py)
        headers = request.headers
        if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            return delegate  # no body is coming: nothing to count
        limit = self.settings["services"].settings.max_json_bytes
        return _BodyLimit(self, request, delegate, limit)


def _raw_json_response(status: int, reason: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


_TORNADO_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"
_BAD_REQUEST = _raw_json_response(400, "Bad Request", {
    "detail": "Malformed HTTP request", "error_code": "BAD_REQUEST"})


class _JsonErrorStream(IOStream):
    """The connection's stream: Tornado's own protocol errors go out in the error format."""

    headers_too_large = b""

    def write(self, data, *args, **kwargs):
        if len(data) == len(_TORNADO_BAD_REQUEST) and bytes(data) == _TORNADO_BAD_REQUEST:
            data = _BAD_REQUEST
        return super().write(data, *args, **kwargs)

    def close(self, exc_info=False) -> None:
        error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        # the header read is the one regex read of HTTP/1.1 (request line and headers)
        if (isinstance(error, UnsatisfiableReadError) and not self.closed()
                and self._read_regex is not None):
            try:
                self.socket.send(self.headers_too_large)
            except OSError:
                pass
        super().close(exc_info)


class LimitedHTTPServer(HTTPServer):
    """HTTPServer whose protocol errors are JSON: 431 HEADERS_TOO_LARGE past
    `max_header_size`, 400 BAD_REQUEST for a malformed request (plain TCP only)."""

    def initialize(self, *args, **kwargs) -> None:
        super().initialize(*args, **kwargs)
        limit_kb = self.conn_params.max_header_size // 1024
        self._headers_too_large = _raw_json_response(431, "Request Header Fields Too Large", {
            "detail": f"The request line and headers are larger than the limit of {limit_kb} KB",
            "error_code": "HEADERS_TOO_LARGE"})

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        if type(stream) is IOStream:
            stream = _JsonErrorStream(stream.socket, max_buffer_size=stream.max_buffer_size,
                                      read_chunk_size=stream.read_chunk_size)
            stream.headers_too_large = self._headers_too_large
        super().handle_stream(stream, address)
