"""Nothing secret or user-provided in the daemon's log.

Our own log lines hold session numbers, origins (checked against the extension-origin pattern), error names,
exception types and timings only (PROTOCOL.md, Privacy). Libraries are another matter: aiohttp logs a
malformed HTTP request at ERROR with the offending header line in the exception's message, so a
``Sec-WebSocket-Protocol: ally,ally.token.<token>\\x00`` header put the token into the log. :class:`Redact`
therefore rewrites every record of the daemon's loggers and of aiohttp's before any handler sees it:

- an exception attached to a record is reduced to its type (a message or traceback can quote the request);
- aiohttp's reports of malformed requests drop to INFO (a client's mistake, not the daemon's);
- anything shaped like a token (``ally.token.…``, or a run of 43 URL-safe base64 characters, the size of our
  256-bit tokens) is replaced by ``[redacted]``.

A logging filter rather than a replacement of aiohttp's logger, because aiohttp logs from several places
(the HTTP protocol, the websocket reader, the access logger) and a filter covers them all.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_TOKENISH = re.compile(r"ally\.token\.[^\s,;'\"]*|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
# The loggers that see client input: aiohttp's, asyncio's (unretrieved task exceptions), ours.
LOGGERS = ("aiohttp", "aiohttp.server", "aiohttp.web", "aiohttp.access", "aiohttp.websocket", "aiohttp.internal",
           "aiohttp.client", "asyncio", "ally")


def redact(text: str) -> str:
    return _TOKENISH.sub(REDACTED, text)


class Redact(logging.Filter):
    """Rewrites a record so that it holds no token and no client-provided text (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "ally_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit its format: keep only the format
            message = str(record.msg)
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            message = f"{message} ({type(exc).__name__})"
            record.exc_info, record.exc_text = None, None
            if record.name.startswith("aiohttp.server") and record.levelno > logging.INFO:
                record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.stack_info = None
        record.msg, record.args = redact(message), None
        record.ally_redacted = True
        return True


_FILTER = Redact()


def install() -> None:
    """Put the filter on the loggers that may carry client input, on every ``ally.*`` logger there is, and on
    the root logger's handlers (which see what propagates from loggers created later). Idempotent."""
    names = [*LOGGERS, *(n for n in logging.root.manager.loggerDict if n.startswith(("ally.", "aiohttp.")))]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
