"""Atomic writes: a reader sees the old file or folder, or the complete new one, never
a half-written one (a crash leaves at most a hidden staging entry next to it)."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_folder(path, replace=True):
    """Yield a staging folder next to `path`; on success it is renamed to `path`
    (replacing an existing one if `replace`), on any error it is removed."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}-")
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would outlive the rename
    try:
        yield staging
        if replace and os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary file name next to `path`, renamed to `path` on success."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=parent, prefix=f".{os.path.basename(path)}-")
    os.close(fd)
    try:
        yield staging
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        raise
