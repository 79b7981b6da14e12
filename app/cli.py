"""`vae-serve`: run the service with uvicorn, configured from VAE_* settings (or flags).

    vae-serve                          # http://127.0.0.1:8000, the shipped model
    vae-serve --host 0.0.0.0 --port 8080 --workers 2

Unlike bare `uvicorn app.main:app`, it exits 0 after a graceful SIGTERM drain.
"""

import argparse
import os
import tempfile

import uvicorn

from app.settings import Settings


class Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM after draining (exit 143); a drained stop is a clean
    stop, so this server exits 0."""

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default=settings.host, help="default: $VAE_HOST or %(default)s")
    p.add_argument("--port", type=int, default=settings.port, help="default: %(default)s")
    p.add_argument("--workers", type=int, default=settings.workers, help="default: %(default)s")
    args = p.parse_args(argv)
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
