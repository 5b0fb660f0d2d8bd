"""Writing output safely.

Atomic writes: a reader sees the old file or folder, or the complete new one, never
a half-written one (a crash leaves at most a hidden staging entry next to it).

Output folders: the kit never deletes what it did not write. A folder it writes holds
an owner file naming its kind ("dashboard", "guard", ...); an existing folder is
replaced only when it is empty or the kit's own output of the same kind. A folder
holding other files is refused, or, with `overwrite`, written into with those files
kept. The root, the home folder, the current folder and its parents are always refused.
"""

import contextlib
import os
import shutil
import tempfile

from gemma_kit.errors import GemmaKitError

OWNER_FILE = ".gemma-kit"


def check_output_folder(path, kind, overwrite=False):
    """Raise `GemmaKitError` unless the folder `path` may receive the kit's `kind`
    output (see the module's rules). Called before any work, so that a refusal costs
    nothing."""
    path = os.fspath(path)
    full = os.path.realpath(path)
    here = os.path.realpath(os.getcwd())
    if full == os.path.realpath(os.path.expanduser("~")) or full == os.path.dirname(full):
        raise GemmaKitError(f"{path}: refusing to write output into the home or root folder; name a new folder")
    if full == here or here.startswith(full.rstrip(os.sep) + os.sep):
        raise GemmaKitError(f"{path}: refusing to write output into the current folder or one that holds it; "
                            "name a new folder")
    if os.path.exists(path) and not os.path.isdir(path):
        raise GemmaKitError(f"{path}: exists and is not a folder")
    if not overwrite and _foreign(path, kind):
        raise GemmaKitError(f"{path}: the folder holds files gemma-kit did not write as a {kind}; name a new or "
                            "empty folder, or pass --overwrite (overwrite=True) to write into it and keep them")


def _foreign(path, kind):
    """True if `path` is a folder with entries and is not the kit's own `kind` output."""
    if not os.path.isdir(path) or not os.listdir(path):
        return False
    try:
        with open(os.path.join(path, OWNER_FILE), encoding="utf-8") as f:
            return f.read().strip() != kind
    except (OSError, UnicodeDecodeError):
        return True


def claim_folder(path, kind, overwrite=False):
    """Create the folder `path` for output written into it piece by piece (a training
    run's checkpoints), after `check_output_folder`; mark it as the kit's own unless
    other files are kept there."""
    check_output_folder(path, kind, overwrite)
    foreign = _foreign(path, kind)
    os.makedirs(path, exist_ok=True)
    if not foreign:
        with atomic_file(os.path.join(path, OWNER_FILE)) as staging, open(staging, "w", encoding="utf-8") as f:
            f.write(kind + "\n")
    return os.fspath(path)


@contextlib.contextmanager
def atomic_folder(path, kind, overwrite=False):
    """Yield a staging folder next to `path`; on success its content becomes `path`,
    on any error it is removed. `path` is checked first (`check_output_folder`). A new,
    empty or own folder is replaced whole by a rename; with `overwrite`, a folder holding
    other files receives the staged entries one by one, its other files kept."""
    path = os.fspath(path)
    check_output_folder(path, kind, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}-")
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would outlive the rename
    try:
        yield staging
        if _foreign(path, kind):  # only reached with overwrite
            _move_entries(staging, path)
            return
        with open(os.path.join(staging, OWNER_FILE), "w", encoding="utf-8") as f:
            f.write(kind + "\n")
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _move_entries(staging, path):
    for name in os.listdir(staging):
        target = os.path.join(path, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        os.replace(os.path.join(staging, name), target)
    os.rmdir(staging)


def check_output_file(path):
    """Raise `GemmaKitError` if `path` cannot name a file to write (it is a folder)."""
    if os.path.isdir(path):
        raise GemmaKitError(f"{os.fspath(path)}: is a folder; name the file to write")


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary file name next to `path`, renamed to `path` on success."""
    path = os.fspath(path)
    check_output_file(path)
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
