"""The ``llmroute`` command line: ``llmroute serve`` and friends."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .__about__ import __version__
from .config import ConfigError, GatewayConfig, load_config
from .embedded import TOKEN_FILE, embedded_config

__all__ = ["main"]

DEFAULT_CONFIG = "llmroute.toml"
# How `serve` hands its choice of configuration to worker processes (uvicorn imports the factory).
_ENV_CONFIG = "LLMROUTE_CONFIG"
_ENV_EMBEDDED = "LLMROUTE_EMBEDDED_DATA_DIR"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmroute", description="An LLM gateway built from composable ASGI middlewares."
    )
    parser.add_argument("--version", action="version", version=f"llmroute {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the gateway", description="Run the gateway with uvicorn.")
    serve.add_argument(
        "--config",
        metavar="PATH",
        help=f"TOML config file (default: ./{DEFAULT_CONFIG} if present, else the embedded default)",
    )
    serve.add_argument("--host", help="interface to bind (default: [server] host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: [server] port, 4000)")
    serve.add_argument("--workers", type=int, help="worker processes (default: [server] workers, 1)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def _select_config(args: argparse.Namespace) -> tuple[GatewayConfig, bool]:
    """The config to serve and whether it is the embedded default."""
    path = args.config
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    if path is not None:
        return load_config(path), False
    return embedded_config(Path(".llmroute")), True


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    config, embedded = _select_config(args)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    workers = args.workers if args.workers is not None else config.server.workers
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if embedded:
        _print_banner(config, host, port)
    options = {"host": host, "port": port, "log_level": args.log_level, "access_log": False, "server_header": False}
    if workers == 1:
        from .gateway import build_gateway

        uvicorn.run(build_gateway(config), **options)
        return 0
    # Each worker process builds its own gateway (and its own connection pool) from the same source.
    if embedded:
        os.environ[_ENV_EMBEDDED] = config.server.data_dir
    else:
        os.environ[_ENV_CONFIG] = str(Path(args.config or DEFAULT_CONFIG).resolve())
    uvicorn.run("asgi_llmroute.cli:worker_app", factory=True, workers=workers, **options)
    return 0


def worker_app() -> object:
    """uvicorn factory for worker processes (``--workers N``)."""
    from .gateway import build_gateway

    data_dir = os.environ.get(_ENV_EMBEDDED)
    config = embedded_config(Path(data_dir)) if data_dir else load_config(os.environ[_ENV_CONFIG])
    return build_gateway(config)


def _print_banner(config: GatewayConfig, host: str, port: int) -> None:
    token = config.tokens[0].key
    data_dir = config.server.data_dir
    url = f"http://{host}:{port}"
    body = '{"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}'
    print(
        f"llmroute {__version__}: embedded default (no config file), data in {data_dir}/\n"
        f"  router token (kept in {data_dir}/{TOKEN_FILE}): {token}\n"
        f"  models: demo (OpenAI format), demo-claude (Anthropic format), served by the built-in demo provider\n"
        f"  try:  curl {url}/v1/chat/completions -H 'Authorization: Bearer {token}' "
        f"-H 'content-type: application/json' -d '{body}'",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
    except ConfigError as exc:
        print(f"llmroute: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
