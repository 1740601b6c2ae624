"""The header check of an uploaded image, off the event loop and bounded in time and work.

Pillow reads an image's structure in Python, one piece at a time: PNG chunks, JPEG markers (and junk bytes
between them, byte by byte), GIF blocks and sub-blocks, TIFF directory entries. A 31 MiB PNG of a 1x1 header
and 2.7 M empty ancillary chunks costs 5 s of that, and a job's decode would pay it again. So before Pillow
sees a file, :func:`count_segments` walks the same structure with an early stop at a budget
(``limits.MAX_IMAGE_SEGMENTS``) and the file is refused (506) past it; real photos have tens of segments, or a
few thousand IDAT chunks in a large PNG. Our own walker because no library offers a bounded one: Pillow has
no such limit (only its pixel limit), and the walk is a few lines per format. WebP (libwebp) and BMP are
parsed in C or have a fixed header, so they are not walked.

The check runs in a small thread pool of its own (never the device lanes, which may be busy for minutes) under
``limits.IMAGE_CHECK_TIMEOUT_S``: a check that takes longer is answered 506 and its thread, bounded by the
walk, ends on its own.
"""

from __future__ import annotations

import asyncio
import re
import struct
from concurrent.futures import ThreadPoolExecutor

from ..imaging.errors import ImageError
from ..imaging.io import image_size
from .errors import ErrorCode, ProtocolError

# Two checks at once: enough for a few clients uploading together, few enough that checks never crowd the
# event loop's thread for the GIL.
CHECK_THREADS = 2
_FILL = re.compile(rb"\xff+")


class TooComplex(Exception):
    """More segments than the budget."""


def count_segments(data: bytes, budget: int) -> int:
    """Walk the structure Pillow would parse in Python; the number of pieces, or raise :class:`TooComplex`
    once past ``budget``. Data that is not one of the walked formats, or is malformed, counts what was walked:
    Pillow then gives the precise error."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(data, budget)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data, budget)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(data, budget)
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _tiff(data, budget)
    return 0


def _over(n: int, budget: int) -> int:
    if n > budget:
        raise TooComplex
    return n


def _png(data: bytes, budget: int) -> int:
    pos, n, size = 8, 0, len(data)
    while pos + 8 <= size:
        length, kind = struct.unpack_from(">I4s", data, pos)
        n = _over(n + 1, budget)
        if kind == b"IEND":
            break
        pos += 12 + length
    return n


def _jpeg(data: bytes, budget: int) -> int:
    """Markers up to the first scan (SOS), where Pillow hands over to libjpeg; junk and fill bytes between
    markers count one each (Pillow reads them one at a time)."""
    pos, n, size = 2, 0, len(data)
    while pos + 1 < size:
        if data[pos] != 0xFF:  # junk
            following = data.find(b"\xff", pos)
            if following < 0:
                break
            n, pos = _over(n + following - pos, budget), following
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill bytes before a marker
            end = _FILL.match(data, pos).end()  # type: ignore[union-attr]
            n, pos = _over(n + end - 1 - pos, budget), end - 1
            continue
        n = _over(n + 1, budget)
        if marker in (0xDA, 0xD9):  # start of scan (libjpeg's from here), end of image
            break
        if marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD8:  # no length
            pos += 2
            continue
        if pos + 4 > size:
            break
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return n


def _gif(data: bytes, budget: int) -> int:
    """Every block and sub-block: Pillow reads extension sub-blocks, and skips a frame's image data one
    sub-block at a time when it counts frames. Image data gets the allowance of full (255-byte) sub-blocks."""
    size = len(data)
    budget += size // 255
    if size < 13:
        return 0
    flags = data[10]
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    n = 0

    def sub_blocks(at: int, count: int) -> tuple[int, int]:
        while at < size:
            length = data[at]
            count = _over(count + 1, budget)
            at += 1 + length
            if length == 0:
                break
        return at, count

    while pos < size:
        block = data[pos]
        n = _over(n + 1, budget)
        if block == 0x21 and pos + 1 < size:  # extension: label, sub-blocks
            pos, n = sub_blocks(pos + 2, n)
        elif block == 0x2C and pos + 10 <= size:  # image descriptor, local colour table, LZW size, data
            local = data[pos + 9]
            pos += 10 + (3 * (2 << (local & 7)) if local & 0x80 else 0) + 1
            pos, n = sub_blocks(pos, n)
        else:  # 0x3B trailer, or something Pillow will refuse
            break
    return n


def _tiff(data: bytes, budget: int) -> int:
    """Image file directories and their entries (Pillow reads each entry, and follows the chain of IFDs to
    count frames)."""
    big = data[2:4] in (b"+\x00", b"\x00+")
    order = "<" if data[:2] == b"II" else ">"
    size = len(data)
    if big:
        if size < 16:
            return 0
        offset = struct.unpack_from(order + "Q", data, 8)[0]
        count_fmt, entry_size, next_fmt = order + "Q", 20, order + "Q"
    else:
        if size < 8:
            return 0
        offset = struct.unpack_from(order + "I", data, 4)[0]
        count_fmt, entry_size, next_fmt = order + "H", 12, order + "I"
    count_size, next_size = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
    n, seen = 0, set()
    while 0 < offset and offset + count_size <= size and offset not in seen:
        seen.add(offset)
        entries = struct.unpack_from(count_fmt, data, offset)[0]
        n = _over(n + 1 + entries, budget)
        at = offset + count_size + entries * entry_size
        if at + next_size > size:
            break
        offset = struct.unpack_from(next_fmt, data, at)[0]
    return n


def _check(data: bytes, budget: int) -> tuple[int, int]:
    try:
        count_segments(data, budget)
    except TooComplex:
        raise ProtocolError(ErrorCode.IMAGE_TOO_COMPLEX, f"the file has more than {budget} chunks, markers or "
                                                         "blocks; save it again with an ordinary program") from None
    try:
        return image_size(data)
    except ImageError as e:
        raise ProtocolError.from_image_error(e) from None


class HeaderChecks:
    """The daemon's pool for header checks."""

    def __init__(self, threads: int = CHECK_THREADS):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ally-check")
        self._slots = asyncio.Semaphore(threads)

    async def size(self, data: bytes, budget: int, timeout_s: float) -> tuple[int, int]:
        """(width, height) from the header, after the segment walk; raises ProtocolError (5xx) otherwise."""
        async with self._slots:
            future = asyncio.get_running_loop().run_in_executor(self._pool, _check, data, budget)
            try:
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                raise ProtocolError(ErrorCode.IMAGE_TOO_COMPLEX, f"reading the image's header took more than "
                                                                 f"{timeout_s:g} s") from None

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
