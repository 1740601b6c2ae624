"""Every limit the daemon enforces, each a named constant with the reason for its value.

``Limits`` bundles them so that tests can run a server with smaller ones; the daemon runs with the defaults.
The extension learns the values in force from the ``hello`` result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..imaging.io import MAX_PIXELS

# -- sizes ------------------------------------------------------------------------------------------------

# A 50-megapixel JPEG at quality 95 is about 25 MB; uploads sites accept are smaller still. Bounding one
# image bounds what a single frame can make the daemon hold.
MAX_IMAGE_BYTES = 32 * 1024 * 1024
# Decompression bombs: checked from the image header before any pixel is decoded. The same bound as the
# imaging layer's (50 MP, every current phone and camera; see ally.imaging.io.MAX_PIXELS).
MAX_IMAGE_PIXELS = MAX_PIXELS
# A long post or a few pages. Text protection cost grows with length and a post box holds far less.
MAX_TEXT_CHARS = 50_000
# A JSON (text) frame: the largest legitimate one is protect.text with MAX_TEXT_CHARS characters of up to
# 4 UTF-8 bytes each, plus the envelope.
MAX_JSON_BYTES = 4 * MAX_TEXT_CHARS + 16 * 1024
# Frames above this are refused by the websocket reader from the frame header, before the payload is read
# (connection closed with 4104). An image frame is its payload plus a header of at most 69 bytes.
BINARY_HEADER_MAX = 69
# Request ids are echoed in every answer and binary frame; short keeps frames and logs small.
MAX_ID_CHARS = 64
# Nesting of a JSON message: the deepest legitimate request is 3 levels ({"params": {"image": {...}}}); deeper
# structures only cost recursion (Python's json and jsonschema recurse per level and fail near 1 000).
MAX_JSON_DEPTH = 16
# Error messages quote what was wrong (a schema path, a value); past this they are cut, so that an error
# answer never echoes a large request back (a client could otherwise make the daemon hold copies of it).
MAX_ERROR_MESSAGE_CHARS = 300
# The header check reads an image's structure before any pixel is decoded; Pillow parses chunks (PNG),
# markers (JPEG), blocks (GIF) and directory entries (TIFF) one by one in Python. A 32 MiB PNG of empty chunks
# is 2.7 M of them (5 s of parsing); real files have tens, or a few thousand IDAT chunks in a large PNG.
MAX_IMAGE_SEGMENTS = 16_384
# The header check runs in a thread; past this it is abandoned and the image refused (506).
IMAGE_CHECK_TIMEOUT_S = 5.0

# -- connections ------------------------------------------------------------------------------------------

# A few per browser profile (service worker, popup, options page) across several browsers and profiles,
# plus CLI tools. Each connection costs a task and buffers up to one frame.
MAX_CONNECTIONS = 64
# Pairing sessions are unauthenticated (no token yet): keep them scarce and short-lived.
MAX_PAIRING_CONNECTIONS = 2
PAIRING_SESSION_TTL_S = 300.0
# A pairing code shown in the extension must be confirmed in a terminal soon after.
PAIRING_CODE_TTL_S = 120.0
# The first message must be ``hello``; a silent connection is dropped rather than held.
HELLO_DEADLINE_S = 10.0
# A TCP connection must complete its HTTP request header within this time (a half-open or trickling
# connection is closed), and counts toward MAX_CONNECTIONS meanwhile.
HEADER_TIMEOUT_S = 10.0
# TCP connections beyond MAX_CONNECTIONS still get an HTTP answer (206) up to this many more; past that they
# are closed as soon as they are accepted.
MAX_EXTRA_CONNECTIONS = 16
# What the daemon holds for one client that does not read its answers. Past OUTBOX_PAUSE_BYTES of queued
# answers the daemon stops reading that client's requests (so it cannot make more); a message that cannot be
# written for WRITE_STALL_S closes the connection (4305). Job results in flight are bounded by the jobs per
# connection; progress notifications are dropped while the client is behind.
OUTBOX_PAUSE_BYTES = 1024 * 1024
WRITE_STALL_S = 30.0
# A close that cannot be written within this time (the client does not read) aborts the connection.
CLOSE_TIMEOUT_S = 2.0

# -- jobs -------------------------------------------------------------------------------------------------

# One extension connection uploads a handful of photos at once (a multi-photo post); more would only wait in
# the device queue, and this keeps one client from filling it for everyone.
MAX_JOBS_PER_CONNECTION = 8
# Per device. A real protection takes seconds to minutes, so 32 waiting jobs are already minutes of work;
# beyond that the client is told ``busy`` with a retry hint instead of waiting blindly.
MAX_QUEUED_JOBS = 32
# Encoded images waiting in all queues together: MAX_QUEUED_JOBS * MAX_IMAGE_BYTES would be 1 GiB.
MAX_PENDING_BYTES = 256 * 1024 * 1024
# After a request that announces an image, its binary frame must arrive within this time.
PAYLOAD_DEADLINE_S = 30.0
# HIGH on a CPU with several faces takes minutes; past this something is wrong (a stuck device).
JOB_TIMEOUT_S = 600.0
# A text on the posts' lane (at most LONG_TEXT_CHARS) takes seconds on a CPU; past this it is stopped (401) so
# that the lane keeps moving.
TEXT_JOB_TIMEOUT_S = 60.0
# Texts run on their own lanes, beside the images, so that a post is not queued behind photos; texts longer
# than this (a few screens; a post box holds far less) go to a lane of their own, so that one 50 000-character
# text (minutes on a CPU) does not hold up the short ones.
LONG_TEXT_CHARS = 5_000
# The busy hint's estimate of a job's duration before a lane has finished one (seconds, per kind).
JOB_DURATION_PRIOR_S = {"image": 15.0, "text": 1.0, "text-long": 60.0}
# On shutdown, running jobs get this long to finish before they are cancelled.
SHUTDOWN_GRACE_S = 10.0
# Progress notifications: at most one per job per interval (the engine reports every optimisation step).
PROGRESS_INTERVAL_S = 0.1
# Bounds of the ``retry_after_ms`` hint that comes with ``busy``.
RETRY_AFTER_MIN_MS = 50
RETRY_AFTER_MAX_MS = 300_000


@dataclass(frozen=True)
class Limits:
    """The limits in force; the defaults are the constants above."""

    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_text_chars: int = MAX_TEXT_CHARS
    max_json_bytes: int = MAX_JSON_BYTES
    max_connections: int = MAX_CONNECTIONS
    max_pairing_connections: int = MAX_PAIRING_CONNECTIONS
    pairing_session_ttl_s: float = PAIRING_SESSION_TTL_S
    pairing_code_ttl_s: float = PAIRING_CODE_TTL_S
    hello_deadline_s: float = HELLO_DEADLINE_S
    header_timeout_s: float = HEADER_TIMEOUT_S
    max_extra_connections: int = MAX_EXTRA_CONNECTIONS
    outbox_pause_bytes: int = OUTBOX_PAUSE_BYTES
    write_stall_s: float = WRITE_STALL_S
    close_timeout_s: float = CLOSE_TIMEOUT_S
    max_json_depth: int = MAX_JSON_DEPTH
    max_image_segments: int = MAX_IMAGE_SEGMENTS
    image_check_timeout_s: float = IMAGE_CHECK_TIMEOUT_S
    long_text_chars: int = LONG_TEXT_CHARS
    text_job_timeout_s: float = TEXT_JOB_TIMEOUT_S
    max_jobs_per_connection: int = MAX_JOBS_PER_CONNECTION
    max_queued_jobs: int = MAX_QUEUED_JOBS
    max_pending_bytes: int = MAX_PENDING_BYTES
    payload_deadline_s: float = PAYLOAD_DEADLINE_S
    job_timeout_s: float = JOB_TIMEOUT_S
    shutdown_grace_s: float = SHUTDOWN_GRACE_S
    progress_interval_s: float = PROGRESS_INTERVAL_S

    @property
    def max_frame_bytes(self) -> int:
        """The websocket reader's hard limit: the larger of a JSON frame and an image frame."""
        return max(self.max_json_bytes, self.max_image_bytes + BINARY_HEADER_MAX)

    def public(self) -> dict[str, int | float]:
        """The limits a client needs to know, as sent in the ``hello`` result."""
        d = asdict(self)
        keep = ("max_image_bytes", "max_image_pixels", "max_text_chars", "max_json_bytes",
                "max_jobs_per_connection", "job_timeout_s")
        return {k: d[k] for k in keep}
