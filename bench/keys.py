"""What virtual keys add per request: the key lookup and the spend record, and the flush that prices it.

    python bench/keys.py [--keys 1000] [--requests 20000]

In process, on a store in a temporary folder: authenticates ``--requests`` requests with virtual-key
secrets drawn from ``--keys`` keys (``KeyManager.principal``), checks their budgets (``refusal``) and
records their usage (``record``), which is what a request pays; then times one ``flush`` of that batch
(priced with a config price and written in one transaction, off the request path). Also the same lookup
for a config token (``TokenTable``) for comparison. Reports microseconds per request, medians of 5 rounds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from asgi_llmroute.keys.manager import KeyManager
from asgi_llmroute.keys.pricing import ModelPrice, PriceTable
from asgi_llmroute.keys.store import KeyStore
from asgi_llmroute.middleware.auth import TokenTable
from asgi_llmroute.providers.store import ProviderStore
from asgi_llmroute.tokens import TokenEntry

SECRET = "bench-store-secret-" + "0123456789abcdef" * 3
USAGE = {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 0, "cache_write_tokens": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = ProviderStore(Path(folder) / "providers.db", SECRET)
        keys = KeyStore(store)
        now = datetime.now(timezone.utc)
        secrets = [keys.create({"name": f"k{i}", "budget": 1e6}, now)[1] for i in range(args.keys)]
        manager = KeyManager(keys, PriceTable({"m": ModelPrice(2.0, 10.0)}, use_catalog=False), refresh=3600)
        manager.principal(secrets[0])  # the first lookup reads the table
        drawn = [random.choice(secrets) for _ in range(args.requests)]
        tokens = TokenTable([TokenEntry.from_key(f"t{i}", f"sk-config-{i:06d}-token") for i in range(args.keys)])
        config = [f"sk-config-{random.randrange(args.keys):06d}-token" for _ in range(args.requests)]
        request, flush, baseline = [], [], []
        for _ in range(5):
            started = time.perf_counter()
            for secret in drawn:
                principal = manager.principal(secret)
                assert principal is not None
                manager.refusal(principal)
                manager.record(principal, "m", USAGE)
            request.append((time.perf_counter() - started) / args.requests * 1e6)
            started = time.perf_counter()
            manager.flush()
            flush.append((time.perf_counter() - started) / args.requests * 1e6)
            started = time.perf_counter()
            for token in config:
                tokens.lookup(token)
            baseline.append((time.perf_counter() - started) / args.requests * 1e6)
        store.close()
    print(f"{args.keys} keys, {args.requests} requests a round, medians of 5 rounds (µs per request):")
    print(f"  virtual key: lookup + budget check + spend record  {statistics.median(request):7.2f}")
    print(f"  config token lookup (TokenTable), for comparison    {statistics.median(baseline):7.2f}")
    print(f"  flush (pricing + one write), off the request path   {statistics.median(flush):7.2f}")


if __name__ == "__main__":
    main()
