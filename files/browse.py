"""Directory pages and entry descriptions under a root, shown only as far as the user's grants reach."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime

from files.paths import is_listable_name, lstat_entry, open_directory
from files.selectors import Grants, Parts

LIST_LIMIT_MAX = 1000


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def _moment(info: os.stat_result) -> str:
    return datetime.fromtimestamp(info.st_mtime, tz=UTC).isoformat().replace("+00:00", "Z")


def describe(parts: Parts, info: os.stat_result, grants: Grants) -> dict:
    kind = _kind(info.st_mode)
    return {
        "name": parts[-1] if parts else "",
        "path": "/".join(parts),
        "type": kind,
        "size": info.st_size if kind == "file" else None,
        "mtime": _moment(info),
        "readable": kind == "file" and grants.can_read(parts),
    }


def page(root_path: str, parts: Parts, grants: Grants, *, after: str, limit: int) -> tuple[dict, str]:
    """Entries of the directory after the name ``after``, by name (code point order), at most ``limit``;
    symlinks are described, never followed. Returns the page and the directory's path on disk."""
    with open_directory(root_path, parts) as directory:
        with os.scandir(directory.fd) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        chosen: list[os.DirEntry] = []
        skipped, more = 0, False
        for entry in entries:
            if entry.name <= after and after:
                continue
            if not is_listable_name(entry.name):
                skipped += 1
                continue
            if not grants.can_reach((*parts, entry.name)):
                continue
            if len(chosen) == limit:
                more = True
                break
            chosen.append(entry)
        described = []
        for entry in chosen:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed since the directory was read
                continue
            described.append(describe((*parts, entry.name), info, grants))
        result = {
            "path": "/".join(parts),
            "entries": described,
            "next": chosen[-1].name if more and chosen else None,
            "skipped": skipped,
        }
        return result, directory.resolved


def entry(root_path: str, parts: Parts, grants: Grants) -> tuple[dict, str]:
    info, resolved = lstat_entry(root_path, parts)
    return describe(parts, info, grants), resolved
