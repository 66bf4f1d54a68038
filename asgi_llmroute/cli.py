"""The ``llmroute`` command line: ``llmroute serve`` and friends."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import cli_keys, cli_providers
from .__about__ import __version__
from .config import ConfigError, GatewayConfig, load_config
from .deferred import MissingExtraError, require
from .embedded import ADMIN_TOKEN_FILE, TOKEN_FILE, embedded_config

__all__ = ["main"]

DEFAULT_CONFIG = "llmroute.toml"
EMBEDDED_DATA_DIR = ".llmroute"
# The config file when no --config is given (every command); also how `serve` hands its choice of
# configuration to worker processes (uvicorn imports the factory).
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
        help=(
            "TOML config file (or the same in Links notation, .lenv), or a LiteLLM proxy config.yaml "
            f"(default: ${_ENV_CONFIG}, else ./{DEFAULT_CONFIG} if present, else the embedded default)"
        ),
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        help="a LiteLLM config entry whose provider type is not supported is an error, not a warning",
    )
    serve.add_argument("--host", help="interface to bind (default: [server] host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: [server] port, 4000)")
    serve.add_argument("--workers", type=int, help="worker processes (default: [server] workers, 1)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    config_help = (
        f"TOML config file (default: ${_ENV_CONFIG}, else ./{DEFAULT_CONFIG} if present, else the embedded default)"
    )
    cli_providers.add_commands(commands, config_help=config_help)
    cli_keys.add_commands(commands, config_help=config_help)
    return parser


def _config_path(args: argparse.Namespace) -> str | None:
    """``--config``, else ``$LLMROUTE_CONFIG``, else ``./llmroute.toml`` if present; None: the embedded default."""
    if args.config is not None:
        return str(args.config)
    path = os.environ.get(_ENV_CONFIG, "").strip()
    if path:
        if not Path(path).is_file():
            raise ConfigError(f"{path} (from {_ENV_CONFIG}): no such file")
        return path
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


def _select_config(args: argparse.Namespace) -> tuple[GatewayConfig, bool]:
    """The config to serve and whether it is the embedded default."""
    path = _config_path(args)
    if path is not None:
        return _load(path, strict=getattr(args, "strict", False)), False
    return embedded_config(Path(EMBEDDED_DATA_DIR)), True


def _load(path: str | Path, *, report: bool = True, strict: bool = False) -> GatewayConfig:
    """Our TOML file, or a LiteLLM ``config.yaml`` (whose ignored keys are listed on stderr)."""
    from .importers.litellm_config import is_litellm_config, load_litellm_config  # with the importers

    if not is_litellm_config(path):
        return load_config(path)
    config, ignored = load_litellm_config(path, strict=strict)
    if report and ignored:
        print(f"llmroute: {path}: LiteLLM keys not used by llmroute:", file=sys.stderr)
        for key in ignored:
            print(f"  - {key}", file=sys.stderr)
    return config


def _serve(args: argparse.Namespace) -> int:
    require("uvicorn", "server", what="llmroute serve")  # serving.py builds on it
    from .serving import GracefulShutdown, ServeConfig, serve

    # The router token is shown only when this start creates it: start-up output ends up in logs.
    path = _config_path(args)
    new_token = path is None and not (Path(EMBEDDED_DATA_DIR) / TOKEN_FILE).exists()
    config, embedded = _select_config(args)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    workers = args.workers if args.workers is not None else config.server.workers
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, not {port}")
    if embedded:
        _print_banner(config, host, port, show_token=new_token)
    # No uvicorn access log (the gateway logs its own lines) and no X-Forwarded-* rewriting: it parses
    # IP addresses on every request and the gateway does not use the client address.
    options = {
        "host": host,
        "port": port,
        "log_level": args.log_level,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "max_head_bytes": config.server.max_head_bytes,
        "head_timeout": config.server.head_timeout,
        "body_timeout": config.server.body_timeout,
        "shutdown_timeout": config.server.shutdown_timeout,
    }
    _preflight(config, workers)
    if config.logging.format == "json":  # uvicorn's own lines in the gateway's format too
        from .logs import uvicorn_log_config

        options["log_config"] = uvicorn_log_config("json")
    if not config.tokens:  # after the checks: a start that fails says only why
        print(
            f"llmroute: warning: {config.source}: no [[tokens]]: every request to the model routes will get 401",
            file=sys.stderr,
            flush=True,
        )
    if workers == 1:
        from .gateway import build_gateway

        _configure_logging(config)
        return serve(ServeConfig(GracefulShutdown(build_gateway(config)), **options))
    # Each worker process builds its own gateway (and its own connection pool) from the same source.
    if embedded:
        os.environ[_ENV_EMBEDDED] = config.server.data_dir
    else:
        os.environ[_ENV_CONFIG] = str(Path(path or DEFAULT_CONFIG).resolve())
    return serve(ServeConfig("asgi_llmroute.cli:worker_app", factory=True, workers=workers, **options))


def _preflight(config: GatewayConfig, workers: int) -> None:
    """Fail before serving, with one line, if ``[state]``'s Redis or the store cannot be reached.

    With several workers, also give them one Prometheus multiprocess directory (unless the operator
    set ``PROMETHEUS_MULTIPROC_DIR``), so that ``/metrics`` from any worker counts them all.
    """
    if config.state_url() is not None and config.state.on_error == "fail":
        import asyncio

        from .assemble import state_backend
        from .state import StateUnavailable

        async def check() -> None:
            state = state_backend(config)
            await state.start()
            await state.aclose()

        try:
            asyncio.run(check())
        except StateUnavailable as exc:
            raise ConfigError(f"{config.source}: [state]: {exc}") from None
    if workers > 1 and config.store is not None:
        from .providers.store import StoreError
        from .store_setup import open_store

        try:
            open_store(config).close()
        except StoreError as exc:
            raise ConfigError(f"{config.source}: [store]: {exc}") from None
    if workers > 1 and config.metrics.enabled and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import atexit
        import shutil
        import tempfile

        directory = tempfile.mkdtemp(prefix="llmroute-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def worker_app() -> object:
    """uvicorn factory for worker processes (``--workers N``)."""
    from .gateway import build_gateway
    from .serving import GracefulShutdown

    data_dir = os.environ.get(_ENV_EMBEDDED)
    config = embedded_config(Path(data_dir)) if data_dir else _load(os.environ[_ENV_CONFIG], report=False)
    _configure_logging(config)
    return GracefulShutdown(build_gateway(config))


def _configure_logging(config: GatewayConfig) -> None:
    from .logs import configure_logging

    configure_logging(config.logging.format, config.logging.level)


def _print_banner(config: GatewayConfig, host: str, port: int, *, show_token: bool) -> None:
    data_dir = config.server.data_dir
    token_file = f"{data_dir}/{TOKEN_FILE}"
    url = f"http://{host}:{port}"
    body = '{"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}'
    if show_token:
        token = config.tokens[0].key
        token_line = f"  router token (created now, shown only this once; kept in {token_file}): {token}\n"
    else:
        token_line = f"  router token: in {token_file}\n"
    print(
        f"llmroute {__version__}: embedded default (no config file), data in {data_dir}/\n"
        f"{token_line}"
        f"  admin token for /api/providers: in {data_dir}/{ADMIN_TOKEN_FILE}\n"
        f"  models: demo (OpenAI format), demo-claude (Anthropic format), served by the built-in demo provider\n"
        f'  try:  curl {url}/v1/chat/completions -H "Authorization: Bearer $(cat {token_file})" '
        f"-H 'content-type: application/json' -d '{body}'",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command in ("providers", "store"):
            return cli_providers.run(args, _select_config(args)[0])
        if args.command == "keys":
            return cli_keys.run(args, _select_config(args)[0])
    except (ConfigError, MissingExtraError) as exc:
        for line in str(exc).splitlines() or [""]:
            print(f"llmroute: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
