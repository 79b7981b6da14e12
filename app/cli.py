"""`vae-serve`: run the service with uvicorn, configured from VAE_* settings (or flags).

    vae-serve                          # http://127.0.0.1:8000, the shipped model
    vae-serve --host 0.0.0.0 --port 8080 --workers 2
    vae-serve --check                  # one request to each route in-process, then exit

Unlike bare `uvicorn app.main:app`, it exits 0 after a graceful SIGTERM drain.
"""

import argparse
import os
import signal
import socket
import sys
import tempfile

import uvicorn

from app import selfcheck
from app.settings import Settings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server(uvicorn.Server):
    """uvicorn drains on SIGTERM or SIGINT, then raises the signal again once it has put back
    the handlers that were there before it ran (the default ones: exit 143 or 130). A drained
    stop is a clean stop, so this server runs with those signals ignored around it: uvicorn's
    own handlers still catch them while it serves, and the process exits 0."""

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
        try:
            super().run(sockets)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default=settings.host, help="default: $VAE_HOST or %(default)s")
    p.add_argument("--port", type=int, default=settings.port, help="default: %(default)s")
    p.add_argument("--workers", type=int, default=settings.workers, help="default: %(default)s")
    p.add_argument(
        "--check",
        action="store_true",
        help="load the model, send one request to each route in-process, exit 0 if all answer",
    )
    args = p.parse_args(argv)
    if args.check:
        sys.exit(selfcheck.run(settings))
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vae-metrics-")
    options = {
        "host": args.host,
        "port": args.port,
        "log_config": None,  # the app configures logging (JSON by default)
        "loop": settings.loop,
        "http": "app.http:NoDelayHttpToolsProtocol",  # TCP_NODELAY whatever the loop
        "access_log": False,  # the app writes its own access log, with request ids
        "timeout_graceful_shutdown": settings.graceful_timeout_s,
    }
    if args.workers > 1:  # uvicorn's process manager; each worker loads its own model
        uvicorn.run("app.main:app", workers=args.workers, **options)
    else:
        Server(uvicorn.Config("app.main:app", **options)).run()


if __name__ == "__main__":
    main()
