"""``python -m executor --host 127.0.0.1 --port 8100``: serve the reference executor with uvicorn."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from executor.app import ExecutorApp
from executor.config import ConfigError, load
from executor.http import ApiError
from executor.logs import configure_logging

# Streams to the control plane stay open for as long as a run lives; on SIGTERM give them this long to
# finish before the server closes them (the control plane resumes from its last seq elsewhere).
GRACEFUL_SHUTDOWN_S = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m executor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--token", help="Bearer token callers must send (default: $EXECUTOR_TOKEN)")
    parser.add_argument(
        "--admin-token", help="token for /v1/admin/* (default: $EXECUTOR_ADMIN_TOKEN, else --token)"
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
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=config.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
