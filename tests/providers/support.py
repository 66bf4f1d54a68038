"""Shared helpers for the provider store tests: secrets and keys to grep for, configs, records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asgi_llmroute.config import GatewayConfig, parse_config
from asgi_llmroute.providers.records import ProviderRecord, ProviderSpec

SECRET = "store-secret-for-tests-0123456789abcdefABCDEF"
OTHER_SECRET = "another-store-secret-0123456789abcdefABCDEF"
KEY_A = "sk-stored-AAAA-SECRET-0123456789"
KEY_B = "sk-stored-BBBB-SECRET-0123456789"
ADMIN_TOKEN = "sk-admin-test-0123456789abcdef"
ROUTER_TOKEN = "sk-router-test-0123456789abcdef"


def record(
    name: str, key: str | None = KEY_A, *, base_url: str = "https://api.example.com/v1", **extra: Any
) -> ProviderRecord:
    data: dict[str, Any] = {"name": name, "api": "openai", "base_url": base_url, "api_key": key, **extra}
    return ProviderSpec.model_validate(data).record()


def store_config(tmp_path: Path, *, secret: str = SECRET, **overrides: Any) -> GatewayConfig:
    """A config whose [store] lives in ``tmp_path`` (secret in a file), with router and admin tokens."""
    secret_file = tmp_path / "store-secret"
    if not secret_file.exists():
        secret_file.write_text(secret + "\n")
        secret_file.chmod(0o600)
    data: dict[str, Any] = {
        "server": {"data_dir": "data"},
        "tokens": [{"name": "alice", "key": ROUTER_TOKEN}],
        "admin": {"tokens": [ADMIN_TOKEN]},
        "store": {"secret": "file:store-secret", "refresh_ms": 0},
    }
    data.update(overrides)
    return parse_config(data, source=str(tmp_path / "llmroute.toml"), base_dir=tmp_path)


def write_config(tmp_path: Path, extra: str = "") -> Path:
    """The same configuration as a TOML file (for the CLI)."""
    secret_file = tmp_path / "store-secret"
    if not secret_file.exists():
        secret_file.write_text(SECRET + "\n")
        secret_file.chmod(0o600)
    path = tmp_path / "llmroute.toml"
    path.write_text(
        f"""
[server]
data_dir = "data"

[[tokens]]
name = "alice"
key = "{ROUTER_TOKEN}"

[admin]
tokens = ["{ADMIN_TOKEN}"]

[store]
secret = "file:store-secret"
refresh_ms = 0
{extra}
"""
    )
    return path


def store_bytes(path: Path) -> bytes:
    """Everything SQLite keeps for the store (the file and its WAL), to grep for secrets."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
