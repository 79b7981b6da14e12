"""Starting a server, for the scripts and the tests alike: a free port, and waiting until the
server answers. Standard library only: the benchmark's peers import it from their own virtual
environments (scripts/bench/peers/ray_serve_app.py).
"""

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now (the OS picks it, so parallel runs do not collide)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 2, headers: dict[str, str] | None = None) -> int | None:
    """The status of GET url, or None when nothing answers."""
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_ready(
    url: str,
    process: subprocess.Popen | None = None,
    timeout: float = 60,
    output: Callable[[], str] | None = None,
    probe: str = "/readyz",
    headers: dict[str, str] | None = None,
    interval: float = 0.05,
) -> float:
    """Seconds until GET url + probe answers 200. RuntimeError at once if `process` exits,
    with `output()` (default: its stderr, when piped), or after `timeout` seconds."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process is not None and process.poll() is not None:
            shown = output() if output else process.communicate()[1] if process.stderr else ""
            raise RuntimeError(f"the server exited with {process.returncode}:\n{shown}")
        if http_status(url + probe, headers=headers) == 200:
            return time.perf_counter() - started
        time.sleep(interval)
    raise RuntimeError(f"{url}{probe} did not answer 200 within {timeout:.0f} s")
