"""``python -m executor --host 127.0.0.1 --port 8100``: serve the reference executor with uvicorn."""

from __future__ import annotations

import argparse
import sys
from types import FrameType

import uvicorn

from executor.app import ExecutorApp
from executor.config import ConfigError, load
from executor.http import ApiError
from executor.logs import configure_logging

# A backstop: on SIGTERM every run is forgotten at once, which ends the event streams; requests still in
# flight get this long before the server closes their connections.
GRACEFUL_SHUTDOWN_S = 3


class ExecutorServer(uvicorn.Server):
    """uvicorn, telling the app when a shutdown signal arrives (uvicorn would otherwise wait for the
    open event streams, which last as long as their runs)."""

    def __init__(self, config: uvicorn.Config, app: ExecutorApp):
        super().__init__(config)
        self.executor_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.executor_app.begin_shutdown()
        super().handle_exit(sig, frame)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m executor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--token", help="Bearer token callers must send (default: $EXECUTOR_TOKEN)")
    parser.add_argument(
        "--admin-token", help="token for /v1/admin/* (default: $EXECUTOR_ADMIN_TOKEN; unset: that API is off)"
    )
    parser.add_argument(
        "--keepalive-s", type=float, help="seconds between keep-alives on a quiet stream (default 10)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load(args)
        app = ExecutorApp(config)
    except ConfigError as exc:
        print(f"executor: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"executor: EXECUTOR_FAULTS: {exc.message} {exc.detail}", file=sys.stderr)
        return 2
    configure_logging(log_format=config.log_format, level=config.log_level)
    server_config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=config.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    ExecutorServer(server_config, app).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
