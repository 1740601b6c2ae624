"""The protocol's error table: stable numbers, stable names, a default human message each.

Numbers never change meaning once released; new errors get new numbers. PROTOCOL.md carries the same table
(a test keeps them in step). Errors that end the connection close it with websocket close code
``4000 + number`` and the error name as the close reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ..imaging.errors import ImageError
from .limits import MAX_ERROR_MESSAGE_CHARS


class ErrorCode(IntEnum):
    # 1xx: the message itself
    MALFORMED_JSON = 100
    INVALID_MESSAGE = 101
    UNKNOWN_METHOD = 102
    VERSION_MISMATCH = 103
    MESSAGE_TOO_LARGE = 104
    UNEXPECTED_BINARY = 105
    PAYLOAD_MISSING = 106
    DUPLICATE_ID = 107
    HELLO_REQUIRED = 108
    # 2xx: who may connect (most are answered at the HTTP handshake)
    TOKEN_MISSING = 200
    TOKEN_INVALID = 201
    ORIGIN_FORBIDDEN = 202
    HOST_FORBIDDEN = 203
    NOT_PAIRED = 204
    PAIRING_FAILED = 205
    TOO_MANY_CONNECTIONS = 206
    SUBPROTOCOL_MISSING = 207
    METHOD_NOT_ALLOWED = 208
    # 3xx: limits and back-pressure
    BUSY = 300
    TOO_MANY_JOBS = 301
    TOO_MANY_PIXELS = 302
    IMAGE_TOO_LARGE = 303
    TEXT_TOO_LONG = 304
    SLOW_CONSUMER = 305
    # 4xx: what happened to a job
    CANCELLED = 400
    TIMEOUT = 401
    OUT_OF_MEMORY = 402
    JOB_FAILED = 403
    UNSUPPORTED = 404
    SHUTTING_DOWN = 405
    UNKNOWN_JOB = 406
    ENGINE_UNAVAILABLE = 407
    NO_FACE = 408
    ME_STORE = 409
    UNKNOWN_REFERENCE = 410
    # 5xx: the image could not be read or written
    NOT_AN_IMAGE = 500
    UNSUPPORTED_FORMAT = 501
    TRUNCATED_IMAGE = 502
    CORRUPT_IMAGE = 503
    ANIMATED_IMAGE = 504
    UNSUPPORTED_MODE = 505
    IMAGE_TOO_COMPLEX = 506
    # 9xx: our fault
    INTERNAL = 900

    @property
    def wire_name(self) -> str:
        """The stable name sent beside the number (lower snake case)."""
        return self.name.lower()

    @property
    def close_code(self) -> int:
        """Websocket close code for errors that end the connection."""
        return 4000 + int(self)


@dataclass(frozen=True)
class ErrorInfo:
    message: str  # default human message
    http_status: int  # when answered at the HTTP handshake (or by /health)
    retry: bool  # whether retrying the same request later can succeed


ERRORS: dict[ErrorCode, ErrorInfo] = {
    ErrorCode.MALFORMED_JSON: ErrorInfo("the message is not valid JSON", 400, False),
    ErrorCode.INVALID_MESSAGE: ErrorInfo("the message does not match the protocol schema", 400, False),
    ErrorCode.UNKNOWN_METHOD: ErrorInfo("no such method", 400, False),
    ErrorCode.VERSION_MISMATCH: ErrorInfo("the daemon does not speak this protocol version", 400, False),
    ErrorCode.MESSAGE_TOO_LARGE: ErrorInfo("the frame is larger than the daemon accepts", 413, False),
    ErrorCode.UNEXPECTED_BINARY: ErrorInfo("a binary frame no pending request announced", 400, False),
    ErrorCode.PAYLOAD_MISSING: ErrorInfo("the announced image frame did not arrive in time", 400, True),
    ErrorCode.DUPLICATE_ID: ErrorInfo("a request with this id is still in progress", 400, False),
    ErrorCode.HELLO_REQUIRED: ErrorInfo("the first message must be hello", 400, False),
    ErrorCode.TOKEN_MISSING: ErrorInfo("no pairing token was offered", 401, False),
    ErrorCode.TOKEN_INVALID: ErrorInfo("the pairing token is not valid; pair again", 401, False),
    ErrorCode.ORIGIN_FORBIDDEN: ErrorInfo("this origin may not use the daemon", 403, False),
    ErrorCode.HOST_FORBIDDEN: ErrorInfo("the Host header is not the loopback address", 403, False),
    ErrorCode.NOT_PAIRED: ErrorInfo("this extension is not paired; start pairing", 401, False),
    ErrorCode.PAIRING_FAILED: ErrorInfo("pairing failed", 400, True),
    ErrorCode.TOO_MANY_CONNECTIONS: ErrorInfo("too many connections", 503, True),
    ErrorCode.SUBPROTOCOL_MISSING: ErrorInfo("offer the websocket subprotocol 'ally' or 'ally.pair'", 400, False),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorInfo("this method is not allowed on this connection", 403, False),
    ErrorCode.BUSY: ErrorInfo("the daemon is busy; retry after the hinted delay", 503, True),
    ErrorCode.TOO_MANY_JOBS: ErrorInfo("too many jobs in progress on this connection", 429, True),
    ErrorCode.TOO_MANY_PIXELS: ErrorInfo("the image has more pixels than the daemon accepts", 413, False),
    ErrorCode.IMAGE_TOO_LARGE: ErrorInfo("the image file is larger than the daemon accepts", 413, False),
    ErrorCode.TEXT_TOO_LONG: ErrorInfo("the text is longer than the daemon accepts", 413, False),
    ErrorCode.SLOW_CONSUMER: ErrorInfo("the client does not read the daemon's answers", 503, True),
    ErrorCode.CANCELLED: ErrorInfo("the job was cancelled", 409, True),
    ErrorCode.TIMEOUT: ErrorInfo("the job took too long and was stopped", 504, True),
    ErrorCode.OUT_OF_MEMORY: ErrorInfo("not enough memory for this job, even on the CPU", 507, False),
    ErrorCode.JOB_FAILED: ErrorInfo("the protection failed", 500, False),
    ErrorCode.UNSUPPORTED: ErrorInfo("this capability is not available in this daemon", 501, False),
    ErrorCode.SHUTTING_DOWN: ErrorInfo("the daemon is shutting down", 503, True),
    ErrorCode.UNKNOWN_JOB: ErrorInfo("no job with this id on this connection", 404, False),
    ErrorCode.ENGINE_UNAVAILABLE: ErrorInfo("the protection models could not be loaded", 503, True),
    ErrorCode.NO_FACE: ErrorInfo("no face was found in the photo", 422, False),
    ErrorCode.ME_STORE: ErrorInfo("your reference embeddings could not be read or written", 500, False),
    ErrorCode.UNKNOWN_REFERENCE: ErrorInfo("no reference with this id", 404, False),
    ErrorCode.NOT_AN_IMAGE: ErrorInfo("not a supported image (JPEG, PNG, WebP, TIFF, BMP or GIF)", 415, False),
    ErrorCode.UNSUPPORTED_FORMAT: ErrorInfo("this image format is not supported", 415, False),
    ErrorCode.TRUNCATED_IMAGE: ErrorInfo("the image is incomplete (truncated)", 400, False),
    ErrorCode.CORRUPT_IMAGE: ErrorInfo("the image data is damaged", 400, False),
    ErrorCode.ANIMATED_IMAGE: ErrorInfo("only still images can be protected", 415, False),
    ErrorCode.UNSUPPORTED_MODE: ErrorInfo("this pixel format is not supported", 415, False),
    ErrorCode.IMAGE_TOO_COMPLEX: ErrorInfo("the image file has more internal segments than the daemon reads",
                                           415, False),
    ErrorCode.INTERNAL: ErrorInfo("internal error in the daemon", 500, False),
}

# ImageError.code -> protocol error (ally.imaging.errors)
_IMAGE_ERRORS: dict[str, ErrorCode] = {
    "not_an_image": ErrorCode.NOT_AN_IMAGE,
    "unsupported_format": ErrorCode.UNSUPPORTED_FORMAT,
    "truncated": ErrorCode.TRUNCATED_IMAGE,
    "corrupt": ErrorCode.CORRUPT_IMAGE,
    "too_large": ErrorCode.TOO_MANY_PIXELS,
    "animated": ErrorCode.ANIMATED_IMAGE,
    "unsupported_mode": ErrorCode.UNSUPPORTED_MODE,
}


def _shorten(message: str) -> str:
    """Messages quote what was wrong; a long quote (a client's value) is cut, never echoed whole."""
    if len(message) <= MAX_ERROR_MESSAGE_CHARS:
        return message
    return message[:MAX_ERROR_MESSAGE_CHARS - 1] + "…"


class ProtocolError(Exception):
    """An error answered to the client: a table entry, a specific message and optional data."""

    def __init__(self, code: ErrorCode, message: str | None = None, data: dict[str, Any] | None = None):
        self.code = code
        self.message = _shorten(message or ERRORS[code].message)
        self.data = data
        super().__init__(f"{code.wire_name} ({int(code)}): {self.message}")

    def to_wire(self) -> dict[str, Any]:
        """The ``error`` member of a response."""
        error: dict[str, Any] = {"code": int(self.code), "name": self.code.wire_name, "message": self.message}
        if self.data:
            error["data"] = self.data
        return error

    @classmethod
    def from_image_error(cls, exc: ImageError) -> ProtocolError:
        """Map an imaging error (its message names no file: images arrive as bytes)."""
        code = _IMAGE_ERRORS.get(exc.code)
        if code is None:
            return cls(ErrorCode.INTERNAL, f"unexpected image error {exc.code}: {exc.message}")
        return cls(code, exc.message)
