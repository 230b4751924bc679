"""Writing the rendered Asterisk files (``corecall asterisk render --output-dir DIR``).

``manager.conf`` carries the AMI secret, so every file is written the way a secret must be:
into a new file created with mode 0640 (owner read/write, group read: Asterisk's group), made
exactly 0640 before a byte is written (a stricter umask would otherwise leave Asterisk unable
to read it), then renamed over the old file. The old file's mode never matters (an existing
``manager.conf`` readable by everyone is replaced, not rewritten in place) and a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from corecall.errors import ConfigError
from corecall.fields import show_path

#: Mode of every written file: owner read/write, group read (Asterisk's group), others none.
FILE_MODE = 0o640
#: Mode of a per-server subdirectory created under the output directory.
DIR_MODE = 0o750


def check_output_dir(text: str) -> Path:
    """The ``--output-dir`` argument as a directory this process may write into.

    Raises ConfigError saying what is wrong and what to do: the directory does not exist
    (it is not created: a typo must not scatter secrets into a new directory), is not a
    directory, or is not writable by this user.
    """
    path = Path(text).expanduser()
    if not path.exists():
        raise ConfigError(
            f"--output-dir {show_path(text)}: no such directory; create it first, e.g. "
            f"`install -d -g asterisk -m 2750 {text}` (the files are written with mode 0640)"
        )
    if not path.is_dir():
        raise ConfigError(f"--output-dir {show_path(text)}: not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--output-dir {show_path(text)}: not writable by this user; run as a user who may "
            "write there (e.g. root) or choose another directory"
        )
    return path


def server_dir(base: Path, server: str, *, several: bool) -> Path:
    """Where one server's files go: ``base`` itself, or ``base/<server>`` (created with
    mode 0750) when the routes use several Asterisk servers."""
    if not several:
        return base
    path = base / server
    if not path.is_dir():
        try:
            path.mkdir(mode=DIR_MODE)
        except OSError as exc:
            raise ConfigError(f"cannot create {show_path(path)}: {exc.strerror}") from None
    return path


def write_all_private(files: list[tuple[Path, str]], *, mode: int = FILE_MODE) -> None:
    """Write every ``(path, text)`` through a new file of mode ``mode`` renamed over it,
    all or nothing: each text goes to its own new temporary file first, and only when all of
    them are written are they renamed over the old files. A failure (read-only, disk full)
    leaves every old file as it was, never a mix of a new pjsip.conf and an old
    manager.conf. Raises ConfigError naming the file that could not be written."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, text in files:
            try:
                temps.append((_write_temp(path, text, mode), path))
            except OSError as exc:
                raise ConfigError(
                    f"cannot write {show_path(path)}: {exc.strerror or exc}; no file was changed"
                ) from None
        for temp, path in temps:
            os.replace(temp, path)
    finally:
        for temp, _path in temps:
            with contextlib.suppress(OSError):
                temp.unlink()  # only those not renamed are still there


def _write_temp(path: Path, text: str, mode: int) -> Path:
    """``text`` in a new file of mode ``mode`` beside ``path``; its path."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask only narrows the mode; set it while still empty
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            fd = -1
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp
