"""A path under a root, refused before the disk is touched, then opened without following a symlink.

``parse`` takes the path as the client gave it (already percent-decoded once by Django: a double-encoded
``%252e%252e`` stays the literal name ``%2e%2e``, which is looked up and not found) and refuses NUL and
control characters, backslashes, absolute paths and drive letters, empty, ``.`` and ``..`` components and
over-long paths. ``Opened`` walks from the root's descriptor one component at a time with ``openat``
(``dir_fd``) and ``O_NOFOLLOW``, so no symlink is followed anywhere on the way, whatever is swapped in
between a check and an open; the open descriptor is then ``fstat``-ed and its path read back from
``/proc/self/fd`` to require it inside the root (a directory moved out of the root while it is walked).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass

from django.utils.translation import gettext_lazy

from core.errors import DomainError

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255

# C0 and C1 controls and DEL; a filename may hold them, a request path may not.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"[A-Za-z]:")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
_ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)


class Refusal(DomainError):
    """A refused access: its HTTP answer, plus the audit's outcome and a machine reason."""

    outcome = "error"

    def __init__(self, reason: str, *, detail: object = None) -> None:
        super().__init__(detail=detail)
        self.reason = reason


class InvalidPath(Refusal):
    status = 400
    code = "invalid_path"
    message = gettext_lazy("This path is not allowed.")
    outcome = "invalid"

    def __init__(self, reason: str) -> None:
        super().__init__(reason, detail={"path": [reason]})


class EntryNotFound(Refusal):
    """Missing, a symlink, or not the kind of entry asked for: all answered as the same 404."""

    status = 404
    code = "not_found"
    message = gettext_lazy("Not found.")
    outcome = "not_found"


class DiskError(Refusal):
    status = 503
    code = "file_unavailable"
    message = gettext_lazy("The file cannot be read now.")


def parse(raw: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    """The components of a relative path under a root; ``""`` is the root itself when ``allow_empty``."""
    if raw == "":
        if allow_empty:
            return ()
        raise InvalidPath("empty")
    if _CONTROL.search(raw):
        raise InvalidPath("control_character")
    if "\\" in raw:
        raise InvalidPath("backslash")
    if raw.startswith("/"):
        raise InvalidPath("absolute")
    try:
        encoded = raw.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        raise InvalidPath("not_utf8") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidPath("too_long")
    parts = tuple(raw.split("/"))
    if _DRIVE.match(parts[0]):  # C:, C:foo (a Windows path; POSIX would take it as a name)
        raise InvalidPath("drive_letter")
    for part in parts:
        if part == "":
            raise InvalidPath("empty_component")
        if part in (".", ".."):
            raise InvalidPath("dot_component")
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidPath("name_too_long")
    return parts


def is_listable_name(name: str) -> bool:
    """Whether a directory entry's name could be asked for again (``parse`` would take it)."""
    if _CONTROL.search(name) or "\\" in name or name in (".", ".."):
        return False
    try:
        return len(name.encode("utf-8")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:  # not UTF-8 on disk: os.fsdecode left surrogates
        return False


@dataclass
class Opened:
    """An open descriptor of an entry under a root, its ``fstat`` and its path on disk."""

    fd: int
    stat: os.stat_result
    resolved: str

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_directory(root: str, parts: tuple[str, ...]) -> Opened:
    """The directory at ``parts`` under ``root`` (the root itself for ``()``)."""
    root = os.path.realpath(root)
    fd = _walk(root, parts)
    return _checked(root, fd)


def open_entry(root: str, parts: tuple[str, ...]) -> Opened:
    """Whatever is at ``parts`` (not a symlink: those are refused, never followed)."""
    if not parts:
        return open_directory(root, parts)
    root = os.path.realpath(root)
    parent = _walk(root, parts[:-1])
    try:
        fd = os.open(parts[-1], _ENTRY_FLAGS, dir_fd=parent)
    except OSError as error:
        raise _refusal(error) from None
    finally:
        os.close(parent)
    return _checked(root, fd)


def open_regular_file(root: str, parts: tuple[str, ...]) -> Opened:
    """A regular file: FIFOs, sockets, devices and directories are not found."""
    if not parts:
        raise EntryNotFound("not_a_file")
    opened = open_entry(root, parts)
    if not stat.S_ISREG(opened.stat.st_mode):
        opened.close()
        raise EntryNotFound("not_a_file")
    os.set_blocking(opened.fd, True)
    return opened


def lstat_entry(root: str, parts: tuple[str, ...]) -> tuple[os.stat_result, str]:
    """The entry's own ``lstat`` (a symlink is described, not followed) and its path on disk."""
    if not parts:
        with open_directory(root, parts) as opened:
            return opened.stat, opened.resolved
    root = os.path.realpath(root)
    parent = _checked(root, _walk(root, parts[:-1]))
    try:
        return os.stat(parts[-1], dir_fd=parent.fd, follow_symlinks=False), _join(parent.resolved, parts[-1])
    except OSError as error:
        raise _refusal(error) from None
    finally:
        parent.close()


def _walk(root: str, parts: tuple[str, ...]) -> int:
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise DiskError(f"root_unavailable:{errno.errorcode.get(error.errno or 0, error.errno)}") from None
    for part in parts:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as error:
            raise _refusal(error, part, fd) from None
        finally:
            os.close(fd)
        fd = child
    return fd


def _checked(root: str, fd: int) -> Opened:
    try:
        info = os.fstat(fd)
        resolved = _path_of(fd)
    except OSError as error:
        os.close(fd)
        raise DiskError(errno.errorcode.get(error.errno or 0, str(error.errno))) from None
    if resolved is not None and not is_inside(resolved, root):
        os.close(fd)
        raise EntryNotFound("outside_root")
    return Opened(fd, info, resolved or "")


def _path_of(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:  # no /proc (not Linux): the walk alone holds it under the root
        return None


def is_inside(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it, by whole components (``/srv/data2`` is not in ``/srv/data``);
    both are real paths."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def _join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}" if directory else ""


def _refusal(error: OSError, name: str = "", dir_fd: int = -1) -> DomainError:
    if error.errno == errno.ENOTDIR and name and _is_symlink(name, dir_fd):
        return EntryNotFound("symlink")  # O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR
    if error.errno == errno.ENOENT:
        return EntryNotFound("no_such_entry")
    if error.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a symlink (FreeBSD says EMLINK)
        return EntryNotFound("symlink")
    if error.errno == errno.ENOTDIR:
        return EntryNotFound("not_a_directory")
    if error.errno in (errno.EACCES, errno.EPERM):
        return EntryNotFound("permission_denied_on_disk")
    if error.errno in (errno.ENXIO, errno.ENODEV):  # a socket, a device without a driver
        return EntryNotFound("not_a_file")
    return DiskError(errno.errorcode.get(error.errno or 0, str(error.errno)))


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
