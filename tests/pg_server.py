"""Private database servers for tests that must stop and restart a server (or configure it).

The system PostgreSQL and MariaDB are shared with every other test and engineer, so fault tests never
touch them: they start their own instance in a temporary directory, on a free port, and always
remove it again. ``initdb`` and ``mariadbd`` refuse to run as root, so both run as their service user
(``runuser -u postgres`` / ``--user=mysql``) in a directory that user owns.

Missing server binaries skip the tests loudly, or fail them when DASH_STATE_REQUIRE_SERVICES=1.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


from services import free_port, missing

PG_BIN = Path(os.environ.get("STATE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
MARIADB_SERVER = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
MARIADB_INSTALL = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


AS_ROOT = os.geteuid() == 0


def _owned_tempdir(prefix: str, user: str) -> Path:
    """A fresh directory in /tmp owned by ``user`` when we are root (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if AS_ROOT:
        shutil.chown(path, user, user)
    return path


class PostgresServer:
    """``initdb`` once, then ``start``/``stop`` as often as a test likes on one port and data dir."""

    password = "s3cret-Pa55"  # trust auth ignores it; tests check that it never appears in errors

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
            missing(f"PostgreSQL server binaries are not in {PG_BIN} (set STATE_TEST_PG_BIN)")
        self.root = _owned_tempdir("dash-state-pg-", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self.running = False
        try:
            self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync",
                              "-E", "UTF8")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", self.root / "server.log",
                          "-w", "-t", "30", "start")
        self.running = True

    def stop(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop")
        self.running = False

    def cleanup(self) -> None:
        """Stop the server if it runs (killing our own postmaster if pg_ctl cannot) and remove its files."""
        try:
            if (self.data / "postmaster.pid").exists():
                try:
                    self.stop()
                except subprocess.CalledProcessError:
                    pid = int((self.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _as_postgres(self, *argv) -> None:
        command = [*(["runuser", "-u", "postgres", "--"] if AS_ROOT else []), *map(str, argv)]
        subprocess.run(command, check=True, capture_output=True, timeout=60, cwd=self.root)


class MariaDBServer:
    """A throwaway MariaDB with a large ``max_allowed_packet``, for the 50 MB round trip.

    The shared server may keep MariaDB's default limit (16 MB), which cannot be raised per session;
    changing it globally would change a server other people use.
    """

    def __init__(self, max_allowed_packet: str = "256M") -> None:
        if not Path(MARIADB_SERVER).exists() or not Path(MARIADB_INSTALL).exists():
            missing("MariaDB server binaries (mariadbd, mariadb-install-db) are not installed", required=False)
        self.root = _owned_tempdir("dash-state-mariadb-", "mysql")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        try:
            self._start(max_allowed_packet)
        except BaseException:
            self.cleanup()
            raise

    def _start(self, max_allowed_packet: str) -> None:
        subprocess.run([MARIADB_INSTALL, "--no-defaults", f"--datadir={self.root / 'data'}", "--user=mysql",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        with open(self.root / "server.log", "wb") as log:
            self.process = subprocess.Popen(
                [MARIADB_SERVER, "--no-defaults", f"--datadir={self.root / 'data'}", "--user=mysql",
                 f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.root / 'mysqld.sock'}",
                 f"--pid-file={self.root / 'mysqld.pid'}", f"--max-allowed-packet={max_allowed_packet}",
                 "--innodb-log-file-size=256M", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0"],
                stdout=subprocess.DEVNULL, stderr=log)
        self._wait_and_create_database()

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/test"

    def _wait_and_create_database(self) -> None:
        import pymysql

        deadline = time.monotonic() + 30
        while True:
            try:
                connection = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1)
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"private MariaDB did not start:\n{self.log()}") from None
                time.sleep(0.1)
        with connection:
            connection.cursor().execute("CREATE DATABASE test")

    def cleanup(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""
