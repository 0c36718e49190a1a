"""Checking, before any work, that the files and folders a command is to write can be written.

A run that decodes and tracks a whole video, or predicts a thousand photos, and only then finds its output
folder read-only loses all that work; so every verb checks its outputs first, in a fraction of a second, and
stops with one line (`OutputError`, an `OSError`) naming the output and why.

The check creates, and removes at once, an empty hidden file in the folder the output goes into, or, when that
folder does not exist yet, in its nearest existing parent (where it will be created): permission bits, a
read-only file system, access-control lists and a file standing where a folder is to be are all found the one
way that is certain, and root, whom permission bits do not stop, is not refused where it can write.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


class OutputError(OSError):
    """An output that cannot be written; the message names it and says why, in one line."""

    def __str__(self) -> str:
        return self.args[0] if self.args else "output cannot be written"


def check_writable_file(path: str | os.PathLike, *, in_place: bool = False) -> None:
    """Raise OutputError unless the file `path` can be created or replaced (its folder may not exist yet).

    `in_place`: the file is opened and written where it is (`predict --json`, `label --out`), not written
    under a temporary name beside it and renamed: an existing one then needs only to be writable itself."""
    target = Path(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:  # ENOTDIR: a file stands where one of its folders should be; ELOOP, EACCES, ...
        _probe_folder(target, target.parent)  # says which part is wrong when it can
        raise OutputError(f"cannot write {target}: {_reason(e)}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {target}: is a folder")
        return  # a device or FIFO (/dev/null, a pipe): opened as it is, never replaced
    if st is None or not in_place:  # made in its folder (and renamed into place when not in_place)
        _probe_folder(target, target.parent)
    else:
        try:
            with open(target, "ab"):  # appending nothing changes neither content nor modification time
                pass
        except OSError as e:
            raise OutputError(f"cannot write {target}: {_reason(e)}") from None


def check_writable_folder(path: str | os.PathLike) -> None:
    """Raise OutputError unless files can be written into folder `path` (made when it does not exist)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write into {folder}: is a file, not a folder")
    _probe_folder(folder, folder, into=True)


def _probe_folder(target: Path, folder: Path, into: bool = False) -> None:
    """Raise OutputError unless a file can be made in `folder`, or in the nearest existing folder above it."""
    what = f"into {target}" if into else str(target)
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: making the folder would fail
            raise OutputError(f"cannot write {what}: {_shown(existing, folder)} is a broken link")
        existing = existing.parent
    shown = _shown(existing, folder)
    if not existing.is_dir():
        raise OutputError(f"cannot write {what}: {shown} is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".facemark-write-check-", dir=existing)
    except OSError as e:
        where = "the folder" if into and existing == Path(os.path.abspath(folder)) else f"folder {shown}"
        raise OutputError(f"cannot write {what}: {where} is not writable ({_reason(e)})") from None
    os.close(handle)
    os.unlink(probe)


def _shown(path: Path, asked: Path) -> str:
    """`path` as the user would recognise it: relative when the path asked for was."""
    if asked.is_absolute():
        return str(path)
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def _reason(e: OSError) -> str:
    return e.strerror or str(e)
