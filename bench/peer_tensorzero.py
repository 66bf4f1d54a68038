"""Run TensorZero's gateway from its PyPI wheel as a local HTTP server, for the benchmark.

    python bench/peer_tensorzero.py --config tensorzero.toml --url-file FILE

The wheel ships the Rust gateway as a Python extension: `tensorzero._start_http_gateway` (what the package's
`patch_openai_client` uses) runs the gateway's HTTP server on its own tokio runtime, in this process, on
127.0.0.1 and a free port of its choosing. This script starts it, writes its root URL to FILE (the harness
waits for it) and sleeps until SIGTERM. The Python side does nothing per request; the CPU measured for this
process is the gateway's.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import tensorzero  # type: ignore[import-not-found,unused-ignore]  # only in its own venv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="tensorzero.toml")
    parser.add_argument("--url-file", type=Path, required=True, help="where to write the gateway's root URL")
    args = parser.parse_args(argv)
    gateway = tensorzero._start_http_gateway(
        config_file=args.config, clickhouse_url=None, postgres_url=None, valkey_url=None, async_setup=False
    )
    root = str(gateway.base_url).removesuffix("/").removesuffix("/openai/v1")
    tmp = args.url_file.with_suffix(".tmp")
    tmp.write_text(root + "\n")
    tmp.replace(args.url_file)
    print(f"tensorzero {tensorzero.__version__} gateway at {root}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
