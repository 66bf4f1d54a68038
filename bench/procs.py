"""Process plumbing for the benchmark: start pinned servers in their own process group, wait for them,
stop them, and read their CPU time from the kernel's accounting (`/proc/<pid>/stat`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cmd: Sequence[str], cpu: int | str | None) -> list[str]:
    """`cmd` run under `taskset -c CPU` (children inherit the affinity), or as is if `cpu` is None.

    `cpu` is a core number or a taskset list such as "0,1"."""
    if cpu is None or shutil.which("taskset") is None:
        return list(cmd)
    return ["taskset", "-c", str(cpu), *cmd]


class Server:
    """A server process started in a new session (its own process group), with output to a log file.

    Use as a context manager: leaving it stops the whole process group (SIGTERM, then SIGKILL).
    """

    def __init__(
        self, name: str, cmd: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.log = log
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "server not started"
        return self._proc.pid

    def start(self) -> Server:
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
            )
        return self

    def check_alive(self) -> None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with code {self._proc.returncode}; log:\n{self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while workers of its group linger: make sure the group is empty.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_http(self, url: str, *, timeout: float, headers: Mapping[str, str] | None = None) -> None:
        """Poll `url` with GET until it answers 2xx; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            request = urllib.request.Request(url, headers=dict(headers or {}))
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if 200 <= response.status < 300:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready at {url} after {timeout:.0f}s ({last}); log:\n{self.log_tail()}")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) is parenthesised and may hold spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of the process tree under `root`, as the kernel accounts them.

    Per process: utime + stime (fields 14-15, all its threads, live and exited) + cutime + cstime (fields
    16-17, its waited-for children), so a worker that exits between two readings keeps being counted.
    """
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # After dropping pid and comm, field N of proc(5) is at index N - 3.
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / _CLK_TCK


def core_busy_seconds(cpu: int) -> float:
    """Seconds core `cpu` spent busy (not idle or iowait) since boot, from /proc/stat, for everyone."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(x) for x in line.split()[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _CLK_TCK
    return 0.0


def rss_bytes(root: int) -> int:
    """Resident set size of the process tree under `root` (VmRSS summed: pages shared between the processes
    of a multi-process server count once per process)."""
    total = 0
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def open_sockets(root: int) -> int:
    """Sockets held open by the process tree under `root` (client and upstream connections, listeners)."""
    return len(socket_inodes(root))


def socket_inodes(root: int) -> set[int]:
    """Inodes of the sockets held open by the process tree under `root`."""
    inodes: set[int] = set()
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(int(link[8:-1]))
    return inodes


_TCP_ESTABLISHED = "01"


def connections_to(port: int, root: int) -> int:
    """Established TCP connections from the process tree under `root` to `port` on any address, from
    /proc/net/tcp and tcp6: the upstream connections a gateway really holds open (a gateway that queues
    requests behind a small pool holds fewer than it has clients)."""
    inodes = socket_inodes(root)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
            fields = line.split()
            if len(fields) < 10 or fields[3] != _TCP_ESTABLISHED:
                continue
            if int(fields[2].rsplit(":", 1)[1], 16) == port and int(fields[9]) in inodes:
                count += 1
    return count
