"""Real Redis and PostgreSQL servers for tests: Debian's binaries, free loopback ports, temp dirs, stopped by PID.

``./scripts/test`` installs ``redis-server`` and ``postgresql`` where they are missing; a machine
without them skips these tests with a message saying what to install.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cli import free_port


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit code {process.poll()})")
        time.sleep(0.02)


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class RedisServer:
    """One ``redis-server`` (no persistence) on ``port``; :meth:`kill` and :meth:`start` it again at will."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_binary()
        assert binary is not None
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.directory), "--protected-mode", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.process, "redis-server")

    def kill(self) -> None:
        """Stop it abruptly (every connection drops, nothing is saved)."""
        if self.process is not None:
            _stop(self.process, signal.SIGKILL)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    if redis_binary() is None:
        pytest.skip("redis-server is not installed (./scripts/test installs it: apt-get install redis-server)")
    directory = Path(tempfile.mkdtemp(prefix="llmroute-redis-"))
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1:``port`` (user ``postgres``, trust auth)."""

    port: int
    directory: Path
    bindir: Path
    as_user: tuple[int, int] | None  # (uid, gid) to run as: PostgreSQL refuses to run as root
    process: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _popen(self, command: list[str], *, stderr: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        # The server process itself switches user (no runuser/su in between): its PID is the one stopped.
        uid, gid = self.as_user if self.as_user is not None else (None, None)
        groups: list[int] | None = [] if self.as_user is not None else None
        return subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=stderr, user=uid, group=gid, extra_groups=groups
        )

    def init(self) -> None:
        data = self.directory / "data"
        command = [str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]
        command += ["-E", "UTF8"]
        process = self._popen(command, stderr=subprocess.PIPE)
        _, error = process.communicate(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"initdb failed: {error.decode(errors='replace')}")

    def start(self) -> None:
        command = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.directory / "data"),
            "-p",
            str(self.port),
            "-k",
            str(self.directory),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "synchronous_commit=off",
        ]
        self.process = self._popen(command)
        _wait_port(self.port, self.process, "postgres")
        # Accepting TCP is not yet accepting queries: wait until a login works.
        deadline = time.monotonic() + 20
        while True:
            result = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if result.returncode == 0 or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, signal.SIGINT)  # "fast" shutdown: disconnects clients
            self.process = None


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (./scripts/test installs it: apt-get install postgresql)")
    directory = Path(tempfile.mkdtemp(prefix="llmroute-pg-"))
    as_user = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("PostgreSQL refuses to run as root and there is no 'postgres' system user")
        os.chown(directory, account.pw_uid, account.pw_gid)
        as_user = (account.pw_uid, account.pw_gid)
    server = PostgresServer(free_port(), directory, bindir, as_user)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
