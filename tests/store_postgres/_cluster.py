"""A throw-away PostgreSQL cluster for tests that stop the server (never the machine's shared one).

``initdb`` into a fresh temporary folder, start on a free port, ``pg_ctl stop -m immediate``
(a crash: no checkpoint, in-flight transactions cut off), start again (crash recovery).
The server binaries come from ``TICKVAULT_TEST_PG_BIN``, else ``pg_config --bindir``, else
the newest ``/usr/lib/postgresql/*/bin``; their absence fails the test. PostgreSQL refuses
to run as root, so as root the cluster is owned by and run as the ``postgres`` OS user.

``recovery_init_sync_method=syncfs`` keeps restarts after a crash well under a second
(the default fsyncs every file of the cluster first); ``fsync`` stays on, as in production.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN_ENV = os.environ.get("TICKVAULT_TEST_PG_BIN")


def _bindir() -> Path:
    candidates: list[Path] = []
    if PG_BIN_ENV:
        candidates.append(Path(PG_BIN_ENV))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; set TICKVAULT_TEST_PG_BIN")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One throw-away cluster; use as a context manager (removed on exit)."""

    def __init__(self) -> None:
        self.bin = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="tickvault-pgcrash-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        """Connection string of the cluster's ``postgres`` database."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=5"

    def _run(self, tool: str, *args: str) -> None:
        out = subprocess.run([*self._as, str(self.bin / tool), *args], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({out.returncode}): {out.stderr.strip()}\n{tail}")

    def start(self) -> None:
        """Start and wait until it accepts connections (after crash recovery if needed)."""
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on "
                "-c synchronous_commit=on -c recovery_init_sync_method=syncfs -c shared_buffers=32MB "
                "-c max_connections=30")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "120", "-o", opts,
                  "start")

    def crash(self) -> None:
        """Immediate shutdown: the server dies without a checkpoint, like a power cut for PostgreSQL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        """Clean shutdown (ignores a server that is already down)."""
        subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, check=False)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
