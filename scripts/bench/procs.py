"""Server processes: start (optionally pinned with taskset), wait until ready, measure, stop.

RSS and CPU time are read from /proc for the whole process tree (uvicorn workers,
TorchServe's JVM and its Python backend), so Linux only.
"""

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from scripts import readiness
from scripts.readiness import free_port  # noqa: F401 (procs.free_port for the benchmark)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


def pinned(command: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def usage(root: int) -> dict:
    """CPU seconds (user + system) and RSS of the tree: total and largest process (MiB)."""
    cpu, rss = 0.0, []
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        rss.append(pages * PAGE_BYTES / MIB)
    return {
        "cpu_s": cpu,
        "rss_mib": round(sum(rss), 1),
        "max_process_rss_mib": round(max(rss, default=0.0), 1),
    }


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    log: Path
    started: float  # perf_counter() just before the process was spawned

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM to the server's process group, SIGKILL past `grace_s`; returns once every
        process of the group and of the tree has gone (TorchServe's JVM outlives its launcher
        otherwise, and BentoML's and Ray's workers run in process groups of their own)."""
        tree = set(process_tree(self.process.pid))
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            signal_all(self.process.pid, tree, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                self.process.poll()  # reaps the group leader
                if not group_alive(self.process.pid) and not any(map(pid_alive, tree)):
                    return
                time.sleep(0.05)
        self.process.poll()


def signal_all(group: int, pids: set[int], sig: signal.Signals) -> None:
    """`sig` to the process group, and to the processes of `pids` outside it."""
    for kill, target in ((os.killpg, group), *((os.kill, pid) for pid in pids - {group})):
        with contextlib.suppress(ProcessLookupError):
            kill(target, sig)


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a zombie child of ours is reaped by its parent or by poll)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def start(
    command: list[str], env: dict[str, str], base_url: str, log: Path, cwd: Path | None = None
) -> Server:
    """Start a server in a new process group, its output to `log`."""
    started = time.perf_counter()
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(process, base_url, log, started)


def wait_ready(
    server: Server, probe: str, timeout_s: float, headers: dict[str, str] | None = None
) -> float:
    """Cold start: seconds from spawn until GET `probe` answers 200 (RuntimeError if it dies)."""
    readiness.wait_ready(
        server.base_url,
        server.process,
        timeout_s - (time.perf_counter() - server.started),
        output=lambda: server.log.read_text(errors="replace")[-2000:],
        probe=probe,
        headers=headers,
        interval=0.02,  # cold starts are reported to the 0.1 s
    )
    return time.perf_counter() - server.started
