"""Atomic file and directory writes and output-path safety.

Everything the tool writes (checkpoints, predictions, caches, reports) goes
through these helpers so a crash at any moment leaves either the previous
complete file or the new complete file, never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from egopressdiff.errors import EgoPressDiffError

_UMASK = os.umask(0)
os.umask(_UMASK)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


def check_safe_name(name: str, what: str = "name") -> str:
    """Refuse names that could escape an output directory (``../x``, ``/abs``, ``a/b``)."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or name in (".", "..") or ".." in name.split("."):
        raise EgoPressDiffError(f"unsafe {what} {name!r}: only letters, digits, '.', '_' and '-' are allowed")
    return name


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path (best effort: some filesystems refuse directories)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(path: str | os.PathLike) -> None:
    """fsync every file, then every directory, under ``path`` (before a rename publishes it)."""
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            fsync_path(Path(dirpath) / f)
    for dirpath, _dirs, _files in os.walk(path):
        fsync_path(Path(dirpath))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The temporary name keeps the extension (``suffix``, default ``path``'s) so
    libraries that look at it (``np.savez``, PIL) behave.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        with contextlib.suppress(OSError):
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary directory; on success it is renamed to ``path``.

    A directory only ever appears under its final name complete. With
    ``overwrite`` an existing directory is replaced (old one removed after the
    new one is in place).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise EgoPressDiffError(f"output {path} already exists (use --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_path(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_output_dir(path: str | os.PathLike, what: str = "output") -> Path:
    """Create ``path`` as a directory; a clear error if it is an existing file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EgoPressDiffError(f"{what} path {path} is a file, not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path
