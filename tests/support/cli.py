"""``llmroute serve`` as a user runs it: a subprocess on a free port, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

LLMROUTE = [sys.executable, "-m", "asgi_llmroute.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    pid: int = 0
    lines: list[str] = field(default_factory=list)  # what it printed so far (read by a thread)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 90) -> None:
        """Wait until ``text`` has been printed ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} was not printed {count} times:\n{self.output}"
            time.sleep(0.05)


@contextmanager
def llmroute_serve(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, wait: float = 120
) -> Iterator[Served]:
    """Start ``llmroute serve ARGS --port <free>``, wait for ``/health``, and stop it (SIGINT) on exit.

    The wait ends as soon as the server answers or the process exits; ``wait`` only bounds a start that
    hangs. It is long because a start (imports, the store, N workers) on a loaded 2-core machine can take
    twenty seconds and more, and such a start is slow, not broken.
    """
    port = free_port()
    process = subprocess.Popen(
        [*LLMROUTE, "serve", *args, "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    served = Served(f"http://127.0.0.1:{port}", process.pid)
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: served.lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                if httpx.get(f"{served.url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            exited = process.poll()
            assert exited is None, f"llmroute serve exited with status {exited}:\n{served.output}"
            assert time.monotonic() < deadline, f"llmroute serve did not come up in {wait:g} s:\n{served.output}"
            time.sleep(0.1)
        yield served
    finally:
        os.killpg(process.pid, signal.SIGINT)  # like Ctrl-C in a terminal: the whole process group
        process.wait(timeout=30)
        reader.join(10)
        process.stdout.close()
