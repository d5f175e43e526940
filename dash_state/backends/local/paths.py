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
import time
from typing import TYPE_CHECKING

from dash_state.errors import ConfigError

if TYPE_CHECKING:
    from dash_state.core.seal import Seal

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


def host_secret(app_root: str, prefix: str) -> bytes:
    """A random secret shared by every process of one app on this host, for apps without a SECRET_KEY
    whose backends all live on this host (``memory``, ``local``): ``python app.py`` and ``gunicorn -w 4
    app:server`` then work with no setting, every worker signing and reading the same references.

    It lives in ``<shm or temp dir>/dash-state-<digest of the app's folder, user and prefix>.key``
    (mode 0600, this user's), made once by whichever process comes first. On tmpfs it ends with the
    host's memory, like the values it protects. Two apps in one folder share it: give them a
    SECRET_KEY (or STATE_KEY_PREFIX) of their own."""
    base = SHM if os.path.isdir(SHM) and os.access(SHM, os.W_OK) else tempfile.gettempdir()
    who = f"{os.path.realpath(app_root)}\0{os.getuid() if hasattr(os, 'getuid') else ''}\0{prefix}"
    path = os.path.join(base, f"dash-state-{hashlib.sha256(who.encode()).hexdigest()[:16]}.key")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise ConfigError(f"no SECRET_KEY, and no host secret could be made at {path!r}: {exc}; "
                          "set app.server.config['SECRET_KEY']") from None
    secret = os.urandom(32)
    with os.fdopen(descriptor, "wb") as out:  # written whole before anyone can read a short file
        out.write(secret)
        out.flush()
        os.fsync(out.fileno())
    return secret


def _read_secret(path: str) -> bytes:
    """Another process's secret: this user's file of 32 bytes (it may still be being written)."""
    for _ in range(50):
        info = os.lstat(path)
        if hasattr(os, "getuid") and (info.st_uid != os.getuid() or not stat.S_ISREG(info.st_mode)):
            raise ConfigError(f"{path!r} (dash-state's host secret) is not a file of this user's: "
                              "set app.server.config['SECRET_KEY']")
        with open(path, "rb") as source:
            secret = source.read()
        if len(secret) == 32:
            return secret
        time.sleep(0.01)
    raise ConfigError(f"{path!r} (dash-state's host secret) is not 32 bytes: delete it, or set SECRET_KEY")
