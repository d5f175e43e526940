"""Where the local backend keeps its store, and whether that place is memory (tmpfs) or a disk.

The default directory is ``/dev/shm/dash-state-<app id>`` where ``/dev/shm`` exists (Linux), else
``<temp dir>/dash-state-<app id>``. The app id is a digest of a key derived from ``SECRET_KEY`` and of
``STATE_KEY_PREFIX``: every worker of one app (gunicorn workers, Celery or Diskcache worker processes
of the same app, which must share the SECRET_KEY anyway) finds the same directory, and two apps on one
host with different secrets or prefixes never share one. A new SECRET_KEY therefore starts a new,
empty store; set ``STATE_LOCAL_PATH`` to keep values across a rotation.

The directory is made with mode 0700 and must belong to this user: on a world-writable parent such as
``/dev/shm`` another local user could otherwise prepare it in advance.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
import tempfile
from typing import TYPE_CHECKING

from ...errors import ConfigError

if TYPE_CHECKING:
    from ...seal import Seal

SHM = "/dev/shm"
_MEMORY_FILESYSTEMS = {"tmpfs", "ramfs"}


def app_id(seal: "Seal | None", prefix: str) -> str:
    """16 hex digits naming this app's store: from SECRET_KEY (through the seal's derived key, never
    the secret itself) and STATE_KEY_PREFIX."""
    # The seal's current HMAC key is derived from SECRET_KEY for values; an HMAC under it names the
    # store without revealing anything about that key.
    secret = seal._macs[0] if seal is not None else b"dash-state local"  # (from_config requires a seal)
    digest = hmac.new(secret, b"dash-state local store\0" + prefix.encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def default_path(seal: "Seal | None", prefix: str) -> str:
    base = SHM if os.path.isdir(SHM) and os.access(SHM, os.W_OK) else tempfile.gettempdir()
    return os.path.join(base, f"dash-state-{app_id(seal, prefix)}")


def prepare(path: str, setting: str) -> str:
    """Make the directory (mode 0700) or check an existing one; returns its absolute path."""
    path = os.path.abspath(path)
    try:
        try:
            os.makedirs(path, mode=0o700)
        except FileExistsError:
            pass  # checked below: a directory of ours, or an error naming what it is
        info = os.lstat(path)
    except OSError as exc:
        raise ConfigError(f"{setting} = {path!r}: cannot make the local backend's directory: {exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{setting} = {path!r} is not a directory (a symlink or a file)")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(f"{setting} = {path!r} belongs to user id {info.st_uid}, not to this process "
                          f"({os.getuid()}): another user could read or plant values there")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours: nobody else may read values or the LMDB lock table
    return path


def in_memory(path: str) -> bool:
    """Whether ``path`` is on a memory filesystem (tmpfs/ramfs), by the longest matching mount point
    in /proc/mounts. Anywhere else, or when that cannot be told, it counts as persistent."""
    real = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        return False
    return kind in _MEMORY_FILESYSTEMS
