"""The embedded default: what ``llmroute serve`` runs with no config file.

A data directory (``./.llmroute/``) holding a router token, an admin token and the provider store's
secret, each generated on first start (owner-only files), the provider store itself, and the
built-in demo provider in both wire formats, so the gateway answers with no keys and no network.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .config import AdminConfig, GatewayConfig, ModelConfig, ProviderConfig, ServerConfig, StoreConfig, TokenConfig
from .demo import DEMO_BASE_URL

__all__ = ["ADMIN_TOKEN_FILE", "STORE_SECRET_FILE", "TOKEN_FILE", "embedded_config", "load_or_create_secret"]

TOKEN_FILE = "router-token"  # noqa: S105 (a file name, not a password)
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105
STORE_SECRET_FILE = "store-secret"  # noqa: S105


def load_or_create_secret(path: Path, prefix: str) -> str:
    """Read the secret kept in ``path``, creating it (owner-only, atomically) on first use."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    if value:
        return value
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = prefix + secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    try:
        # Two workers starting at once: the first link wins and the other reads its token.
        os.link(tmp, path)
    except FileExistsError:
        value = path.read_text(encoding="utf-8").strip()
    finally:
        tmp.unlink()
    return value


def embedded_config(data_dir: Path, *, host: str = "127.0.0.1", port: int = 4000) -> GatewayConfig:
    """The embedded default configuration, with its router token kept in ``data_dir``."""
    token = load_or_create_secret(data_dir / TOKEN_FILE, "sk-llmroute-")
    admin_token = load_or_create_secret(data_dir / ADMIN_TOKEN_FILE, "sk-llmroute-admin-")
    load_or_create_secret(data_dir / STORE_SECRET_FILE, "")
    return GatewayConfig(
        server=ServerConfig(host=host, port=port, data_dir=str(data_dir)),
        tokens=[TokenConfig(name="default", key=token)],
        admin=AdminConfig(tokens=[admin_token]),
        # A reference, so that a rotated secret file is read again by running workers.
        store=StoreConfig(secret=f"file:{(data_dir / STORE_SECRET_FILE).resolve()}"),
        providers=[
            ProviderConfig(name="demo-openai", api="openai", base_url=f"{DEMO_BASE_URL}/v1"),
            ProviderConfig(name="demo-anthropic", api="anthropic", base_url=DEMO_BASE_URL),
        ],
        models=[
            ModelConfig(name="demo", provider="demo-openai", model="demo"),
            ModelConfig(name="demo-claude", provider="demo-anthropic", model="demo-claude"),
        ],
        source="embedded default",
    )
