"""Where the control socket and its lock live, and how to reach a socket whose path is too long.

Default: `<journal dir>/run/<profile name>.sock`; the instance lock is `<journal>.lock`, beside the
journal (`lock_path`). The run directory is private (0700): the socket's own 0600 mode is the
second line, SO_PEERCRED the third.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ..profile import Profile, journal_path

# sun_path is 108 bytes on Linux, including the terminating NUL.
SUN_PATH_MAX = 107


class ControlPathError(Exception):
    """The run directory or socket path is unsafe or unusable; the message says why."""


def current_uid() -> int:
    """The user every control path must belong to (the effective uid). One place, so the client,
    the server and the tests agree on who "this user" is."""
    return os.geteuid()


def socket_path(profile: Profile) -> Path:
    if profile.control.socket_path:
        return Path(profile.control.socket_path).expanduser()
    return journal_path(profile).parent / "run" / f"{profile.name}.sock"


def lock_path(profile: Profile) -> Path:
    """The instance lock: `<journal>.lock`, beside the journal. One engine per journal, whatever
    profile names it (two profiles on one journal would interleave two sessions), and wherever the
    control socket is (a socket path that cannot be made must not leave an engine unlocked)."""
    j = journal_path(profile)
    return j.with_name(j.name + ".lock")


def default_run_dir(profile: Profile) -> Path:
    return journal_path(profile).parent / "run"


def ensure_run_dir(run_dir: Path, *, ours: bool) -> None:
    """Create the run directory 0700, or check an existing one is private and ours.

    `ours` (the default run dir, which only tradeconsole uses) lets us tighten a loose mode; a
    directory the user chose (control.socket_path) is never chmod-ed behind their back."""
    uid = current_uid()
    try:
        st = os.lstat(run_dir)
    except FileNotFoundError:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(run_dir, 0o700)
        except FileExistsError:
            pass  # another process made it between our lstat and mkdir: check it below
        st = os.lstat(run_dir)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ControlPathError(f"{run_dir}: not a directory (a symlink or file is in the way)")
    if st.st_uid != uid:
        raise ControlPathError(f"{run_dir}: owned by uid {st.st_uid}, not by this user ({uid})")
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if loose:
        if not ours:
            raise ControlPathError(
                f"{run_dir}: mode {stat.S_IMODE(st.st_mode):04o} lets other users in; use a private (0700) directory")
        os.chmod(run_dir, 0o700)
    # mkdir's mode is filtered by the umask: make sure the owner can actually use it.
    if stat.S_IMODE(os.lstat(run_dir).st_mode) & 0o700 != 0o700:
        os.chmod(run_dir, 0o700)


def untrusted_reason(path: Path) -> str | None:
    """Why a client must not talk to the socket at `path`, or None if only this user could have
    put it there: its folder a real directory (not a symlink) owned by this user and writable by
    nobody else, the socket itself a socket (not a symlink) owned by this user, mode 0600 as the
    engine makes it. Raises FileNotFoundError / NotADirectoryError when nothing is there."""
    uid = current_uid()
    folder = path.parent
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode):
        return f"{folder} is a symlink; the engine never serves from one"
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(folder))
    if st.st_uid != uid:
        return f"{folder} is owned by uid {st.st_uid}, not by this user ({uid})"
    if stat.S_IMODE(st.st_mode) & 0o022:
        return f"{folder} has mode {stat.S_IMODE(st.st_mode):04o}: other users can put a socket there"
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symlink; the engine never serves through one"
    if not stat.S_ISSOCK(st.st_mode):
        return None  # not a socket: connect() says nothing listens there
    if st.st_uid != uid:
        return f"{path} is owned by uid {st.st_uid}, not by this user ({uid})"
    if stat.S_IMODE(st.st_mode) & 0o077:
        return f"{path} has mode {stat.S_IMODE(st.st_mode):04o}, not the engine's 0600"
    return None


@contextlib.contextmanager
def sun_address(path: Path) -> Iterator[str]:
    """An address for bind()/connect() that fits sun_path.

    A deep data dir (pytest's tmp, a long $HOME) can exceed 107 bytes; then we go through
    /proc/self/fd/<dir fd>/<name>, which the kernel resolves like the real path (Linux only)."""
    text = os.fspath(path)
    if len(os.fsencode(text)) <= SUN_PATH_MAX:
        yield text
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ControlPathError(f"{path.parent}: {exc.strerror}") from None
    try:
        short = f"/proc/self/fd/{fd}/{path.name}"
        if len(os.fsencode(short)) > SUN_PATH_MAX or not os.path.isdir(f"/proc/self/fd/{fd}"):
            raise ControlPathError(f"{path}: socket path longer than {SUN_PATH_MAX} bytes; set control.socket_path")
        yield short
    finally:
        os.close(fd)


class InstanceLock:
    """An flock on `<name>.lock` held for the life of an engine: who holds it is *the* engine of
    this profile. The pid inside is for messages only; the kernel drops the lock on any exit,
    kill -9 included, so a crash never leaves a stale lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    async def acquire(self, wait: float) -> bool:
        """Take the lock, waiting up to `wait` seconds for its holder: a CLI latching a halt holds
        it for milliseconds, an engine for its whole run. False if it is still held then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not self.try_acquire():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def release(self) -> None:
        if self._fd is not None:
            # The file stays: unlinking a lock file lets two processes lock two different inodes.
            os.close(self._fd)
            self._fd = None


def lock_holder(path: Path) -> int | None:
    """The pid written in a lock file that someone holds now, or None if nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            data = os.read(fd, 32)
            try:
                return int(data.decode().strip() or "0") or -1
            except ValueError:
                return -1  # held, pid unknown
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
