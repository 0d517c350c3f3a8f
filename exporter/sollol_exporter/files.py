"""Reading the files the exporter is pointed at: the config file, the web config, TLS files, API key files.

One reader for all of them: a regular file of bounded size, or an OSError saying why not. A FIFO would block the
reading thread until some writer appears (a scrape `hung` for ever, a SIGTERM that never exits), a device such as
/dev/zero never ends, a directory is not a file: each is refused before a byte is read. The file is opened with
O_NONBLOCK, so that opening a FIFO cannot block either, and checked again on the open descriptor, so that a file
swapped between the two checks is refused too.
"""

from __future__ import annotations

import errno
import os
import stat

# A config file, a web config, a certificate chain, a key or a CA bundle: none needs more, so more is the wrong file.
MAX_FILE_BYTES = 1 << 20

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """The path names something other than a regular file; `strerror` says what."""


class FileTooLarge(OSError):
    """The file holds more than the limit; `strerror` says so."""


def kind(mode: int) -> str:
    """What a non-regular file is, for a message: "a FIFO", "a directory"..."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _refuse_unless_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotRegularFile(errno.EINVAL, f"not a regular file ({kind(mode)})")


def read_bytes(path: str, limit: int) -> bytes:
    """The whole content of the regular file `path`, at most `limit` bytes.

    Raises NotRegularFile, FileTooLarge, or the OSError of opening or reading it (missing, no permission...).
    """
    _refuse_unless_regular(os.stat(path).st_mode)  # a device is not even opened: opening some has effects
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _refuse_unless_regular(os.fstat(fd).st_mode)
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileTooLarge(errno.EFBIG, f"larger than {limit} bytes")
    return b"".join(chunks)


def reason(err: OSError) -> str:
    """Why a file could not be read, for a message: never its content."""
    return err.strerror or type(err).__name__
