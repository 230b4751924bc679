"""A throwaway real PostgreSQL server for tests (reusable from any test directory).

``PgServer().start()`` runs ``initdb`` into a temporary directory and ``pg_ctl start`` on a
free loopback port (``listen_addresses='127.0.0.1'``, the Unix socket inside the temporary
directory, ``fsync=off`` for speed, trust authentication for the ``corecall`` role);
``stop()`` stops it and deletes the directory.

``initdb`` refuses to run as root. Under uid 0 the server commands run as the ``postgres``
system user (``runuser -u postgres -- ...``, it owns the temporary directory); when that
user does not exist a dedicated system user ``corecall-pg`` is created with
``useradd --system`` (no login shell, no home directory) and used instead.

Binaries are found with ``pg_config --bindir`` or ``/usr/lib/postgresql/*/bin`` (highest
version first), or ``$CORECALL_PG_BINDIR``. :func:`pg_server_or_skip` turns "not installed"
into a skip, or a failure when ``$CI`` is set (CI must run the PostgreSQL tests).
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SUPERUSER = "corecall"
_FALLBACK_OS_USER = "corecall-pg"


def find_bindir() -> Path | None:
    """Directory holding initdb/pg_ctl, or None when PostgreSQL is not installed."""
    candidates: list[Path] = []
    if os.environ.get("CORECALL_PG_BINDIR"):
        candidates.append(Path(os.environ["CORECALL_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    globbed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates.extend(sorted(globbed, key=version, reverse=True))
    for path in candidates:
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _os_user_for_root() -> str:
    """The unprivileged OS user that runs the server when we are root."""
    for name in ("postgres", _FALLBACK_OS_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
         _FALLBACK_OS_USER],
        check=True, capture_output=True,
    )  # fmt: skip
    return _FALLBACK_OS_USER


class PgServer:
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1."""

    def __init__(self, bindir: Path | None = None):
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.tmpdir: Path | None = None
        self.port: int | None = None
        self.os_user: str | None = None
        self._counter = itertools.count(1)
        self._databases: set[str] = set()

    # ---- running commands as the right user
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.os_user:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.tmpdir)
        if check and proc.returncode != 0:
            log = self.log_tail()
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}{log}"
            )
        return proc

    def log_tail(self, lines: int = 30) -> str:
        log = self.tmpdir / "server.log" if self.tmpdir else None
        if not log or not log.exists():
            return ""
        return "\n--- server.log ---\n" + "\n".join(log.read_text().splitlines()[-lines:])

    # ---- lifecycle
    def start(self) -> PgServer:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="corecall-pg-"))
        if os.geteuid() == 0:
            self.os_user = _os_user_for_root()
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.tmpdir, entry.pw_uid, entry.pw_gid)
        data = str(self.tmpdir / "data")
        self._run(
            "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        for attempt in range(3):
            self.port = _free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.tmpdir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            log = str(self.tmpdir / "server.log")
            proc = self._run("pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "30",
                             "start", check=attempt == 2)  # fmt: skip
            if proc.returncode == 0:
                return self
        return self  # unreachable: the last attempt raises

    def stop(self) -> None:
        if self.tmpdir is None:
            return
        if (self.tmpdir / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.tmpdir / "data"), "-m", "immediate", "-w",
                      "stop", check=False)  # fmt: skip
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir = None

    # ---- databases
    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE work)."""
        import psycopg2

        conn = psycopg2.connect(self.dsn(dbname))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh name unless given); return its DSN.

        Takes ~50-250 ms; :meth:`create_schema` is the fast way to isolate tests."""
        name = name or f"t{os.getpid()}_{next(self._counter)}_{int(time.time() * 1000) % 10**6}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits, _")
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)

    def create_schema(self, dbname: str = "corecall_test") -> str:
        """A fresh empty schema in ``dbname`` (created once); return a DSN whose
        ``search_path`` is that schema. Much faster than a database per test (~5 ms)."""
        if dbname not in self._databases:
            self.create_database(dbname)
            self._databases.add(dbname)
        name = f"s{next(self._counter)}"
        self.execute(f'CREATE SCHEMA "{name}"', dbname)
        return f"{self.dsn(dbname)}?options=-csearch_path%3D{name}"

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_server_or_skip() -> PgServer:
    """Start a server; when PostgreSQL is not installed skip loudly, or fail under ``$CI``."""
    if find_bindir() is None:
        why = (
            "PostgreSQL server binaries not found (no pg_config --bindir, nothing in "
            "/usr/lib/postgresql/*/bin): the PostgreSQL store tests DID NOT RUN. "
            "Install them with: apt-get install postgresql"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {why}", pytrace=False)
        pytest.skip(f"!!! {why}")
    return PgServer().start()
