"""The configuration file: its schema (pydantic models), loading (TOML or ``.lenv``) and validation.

One cohesive thing over 400 lines: the configuration's public schema, kept in one file so that it reads as a whole.

The schema is a public contract (see docs/configuration.md). Every problem is reported as a
:class:`ConfigError` naming the file, the key and what is wrong, never with a traceback or a secret.
Turning a configuration into runtime objects (token entries, providers, routes, timeouts, retry
policies) is the assembly's job: see ``assemble.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .context import DEFAULT_MAX_BODY_BYTES
from .fields import check_base_url, check_header_name, check_header_value
from .lenv import LenvError, read_tree, to_data
from .providers.kinds import KindError, ProviderKind, check_options, get_kind
from .providers.records import ProviderFields
from .secret import Secret, SecretReferenceError, resolve_reference

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "AdminConfig",
    "ConfigError",
    "GatewayConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ModelConfig",
    "ProviderConfig",
    "RoutingConfig",
    "ServerConfig",
    "StateConfig",
    "StoreConfig",
    "TokenConfig",
    "TranslationConfig",
    "UsageConfig",
    "load_config",
]


class ConfigError(Exception):
    """Invalid configuration. ``str(error)`` is a message fit for an operator."""


class _Model(BaseModel):
    # Strict: a TOML string is not a number (port = "4000" is an error, not 4000), a bool not an int.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=256)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    data_dir: str = ".llmroute"
    #: The request line and headers together: larger heads get 431 (docs/configuration.md).
    max_head_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: Seconds for a request head to arrive in full (slowloris): then 408 and the connection is closed.
    head_timeout: float = Field(default=10.0, gt=0, le=3600)
    #: Seconds a request body may go without a byte while it is read: then 408 and the connection is closed.
    body_timeout: float = Field(default=60.0, gt=0, le=3600)
    #: Seconds open requests get on shutdown (SIGTERM) before streams are ended with an error event.
    shutdown_timeout: float = Field(default=30.0, gt=0, le=3600)


class TokenConfig(_Model):
    """A router token: ``key`` (literal, ``env:NAME`` or ``file:PATH``) or its ``key_sha256``."""

    name: str = Field(min_length=1)
    key: str | None = None
    key_sha256: str | None = None
    models: list[str] = Field(default_factory=lambda: ["*"])
    #: Rate limits (docs/observability.md): requests and tokens per minute, unlimited when unset.
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    #: Requests in flight at once with this token (docs/routing.md); unlimited when unset.
    max_in_flight: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_key(self) -> TokenConfig:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of 'key' or 'key_sha256'")
        if self.key_sha256 is not None:
            try:
                raw = bytes.fromhex(self.key_sha256)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError("'key_sha256' must be 64 hex digits (a SHA-256 digest)")
        return self


class AdminConfig(_Model):
    tokens: list[str] = Field(default_factory=list)


class StoreConfig(_Model):
    """The encrypted provider store (docs/providers.md): where it lives and its secret's reference."""

    secret: str = Field(min_length=1)
    #: Default: ``<data_dir>/providers.db``; relative paths are taken from the config file's folder.
    path: str | None = None
    #: How often (milliseconds) each worker checks the store for changes; 0 checks on every request.
    refresh_ms: int = Field(default=20, ge=0, le=60_000)
    #: ``"sqlite"`` (the file at ``path``) or ``"postgres"`` (the database at ``dsn``; docs/scaling.md).
    backend: Literal["sqlite", "postgres"] = "sqlite"
    #: ``postgresql://user:password@host:5432/db`` (or an ``env:``/``file:`` reference to it).
    dsn: str | None = None

    @field_validator("secret")
    @classmethod
    def _reference(cls, value: str) -> str:
        # A literal would put the store's secret next to the store it protects.
        if not value.startswith(("env:", "file:")):
            raise ValueError("must be a reference, 'env:NAME' or 'file:PATH', not the secret itself")
        return value

    @model_validator(mode="after")
    def _backend(self) -> StoreConfig:
        if self.backend == "postgres" and not self.dsn:
            raise ValueError('backend = "postgres" needs a dsn (postgresql://...)')
        if self.backend == "sqlite" and self.dsn is not None:
            raise ValueError('dsn is only used with backend = "postgres"')
        if self.dsn and not self.dsn.startswith(("env:", "file:", "postgresql://", "postgres://")):
            raise ValueError("dsn: must start with postgresql:// (or be an env:/file: reference)")
        return self


class StateConfig(_Model):
    """Where runtime state lives (docs/scaling.md): this process, or a Redis shared by every instance."""

    backend: Literal["memory", "redis"] = "memory"
    #: ``redis://[:password@]host:6379/0``, ``rediss://`` for TLS (or an ``env:``/``file:`` reference).
    url: str | None = None
    #: Put before every key and the pub/sub channel, so that several gateways can share one Redis.
    prefix: str = Field(default="llmroute:", pattern=r"^[A-Za-z0-9_.:{}-]*$")
    #: Redis unreachable at start: ``"fail"`` (a one-line error) or ``"local"`` (start, connect later).
    on_error: Literal["fail", "local"] = "fail"
    #: Limits while Redis is unreachable: ``"local"`` (count in each process), ``"open"``, ``"closed"`` (503).
    when_down: Literal["local", "open", "closed"] = "local"
    #: Seconds a concurrency slot outlives an instance that died holding it.
    lease_ttl: float = Field(default=15.0, ge=1.0, le=3600.0)
    #: Milliseconds a Redis call may take before Redis counts as down.
    timeout_ms: int = Field(default=500, ge=10, le=60_000)

    @model_validator(mode="after")
    def _url(self) -> StateConfig:
        if self.backend == "redis" and not self.url:
            raise ValueError('backend = "redis" needs a url (redis://host:6379/0)')
        if self.url and not self.url.startswith(("env:", "file:", "redis://", "rediss://", "unix://")):
            raise ValueError("url: must start with redis://, rediss:// or unix:// (or be an env:/file: reference)")
        return self


class ProviderConfig(_Model, ProviderFields):
    """One ``[[providers]]`` entry: ``kind = "groq"`` (docs/providers.md) or ``api = "openai" | "anthropic"``.

    With a ``kind``, ``base_url`` and ``api_key`` default to the kind's (the key read from the kind's
    variable at start), and the kind's own settings (Azure's ``api_version``, ...) are accepted as
    keys of the entry. ``api`` alone is any server of that wire format: ``base_url`` is required and
    there is no default key.
    """

    # Kind-specific settings are extra keys, checked against the kind (``_kind``).
    model_config = ConfigDict(extra="allow", frozen=True)

    # The shared fields and checks are ProviderFields' (providers/records.py); these are the entry's own.
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    max_retries: int = Field(default=2, ge=0, le=10)
    cooldown: float = Field(default=5.0, ge=0, allow_inf_nan=False)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value, schemes=("http", "https", "builtin"))

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            check_header_value(header_value, f"the value of {check_header_name(name)!r}")
        return value

    @model_validator(mode="after")
    def _kind(self) -> ProviderConfig:
        kind = self.provider_kind()
        if self.kind is None and self.base_url is None:
            raise ValueError("base_url: required with api = ... (or give a kind with a default base URL)")
        if self.kind is not None and self.api is not None and kind.wire != self.api:
            raise ValueError(f"kind {kind.name!r} speaks the {kind.wire!r} API, not {self.api!r}: leave 'api' out")
        if self.base_url is None and kind.default_base_url is None and kind.base_url_env is None:
            raise ValueError(f"base_url: kind {kind.name!r} has no default base URL: give one")
        extra = dict(self.model_extra or {})
        if extra and self.kind is None:
            raise ValueError(f"unknown key(s): {', '.join(sorted(extra))}")
        try:
            check_options(kind, extra, self.api_key is not None)
        except KindError as exc:
            raise ValueError(str(exc)) from None
        if self.responses_api and kind.wire != "openai":
            raise ValueError("'responses_api' is only valid for OpenAI-format providers")
        return self

    def provider_kind(self) -> ProviderKind:
        """The entry's kind (``api = "openai"`` providers: the ``openai`` kind)."""
        if self.kind is not None:
            try:
                return get_kind(self.kind)
            except KindError as exc:
                raise ValueError(f"kind: {exc}") from None
        if self.api is None:
            raise ValueError('give kind = "..." (docs/providers.md) or api = "openai" | "anthropic"')
        return get_kind(self.api)

    def options(self) -> dict[str, str]:
        """The kind-specific settings, as given."""
        return {k: str(v).strip() for k, v in (self.model_extra or {}).items()}

    def key_variable(self) -> str | None:
        """The variable the key is read from when ``api_key`` is not given (kinds only)."""
        if self.api_key is not None or self.kind is None:
            return None
        return self.provider_kind().default_key_env(self.options())


class ModelConfig(_Model):
    name: str = Field(min_length=1)
    provider: str
    model: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    #: Models tried in order when every deployment of this one failed (docs/routing.md).
    fallbacks: list[str] | None = None
    #: This deployment's requests and tokens per minute (LiteLLM's deployment rpm/tpm); over them the
    #: request goes to another deployment, or gets 429.
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    #: The ``model`` answers carry: ``"client"``, the name asked for, or ``"upstream"``, the upstream's own
    #: id; unset follows ``[translation] response_model`` (docs/translation.md, "The model name").
    response_model: Literal["client", "upstream"] | None = None
    #: What the upstream model accepts; translated requests are made to fit it.
    capabilities: CapabilitiesConfig | None = None


class CapabilitiesConfig(_Model):
    """What a model accepts (docs/translation.md, "Model capabilities"); unset: its family's default."""

    reasoning: bool | None = None
    max_output_tokens: int | None = Field(default=None, gt=0)
    images: bool | None = None
    pdfs: bool | None = None
    tools: bool | None = None


class RoutingConfig(_Model):
    """Load balancing, retries and concurrency limits (docs/routing.md)."""

    strategy: Literal["weighted", "least_in_flight", "lowest_latency"] = "weighted"
    #: Seconds a request over a concurrency limit waits for a slot before its 429.
    max_wait: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    backoff_base: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    backoff_max: float = Field(default=8.0, ge=0, allow_inf_nan=False)
    #: The longest upstream Retry-After the gateway waits for; longer ones are not retried in place.
    max_retry_after: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    #: Upstream attempts per request, fallbacks included.
    max_attempts: int = Field(default=10, ge=1, le=100)
    #: Tell clients which deployment answered (``x-llmroute-deployment: <provider>/<model>``): for debugging.
    deployment_header: bool = False


class UpstreamConfig(_Model):
    """The gateway's connections to the upstreams (one pool shared by every provider)."""

    #: Open connections to one scheme/host/port at most; requests beyond them wait for a free one.
    max_connections_per_origin: int = Field(default=256, ge=1, le=65536)
    #: Seconds an idle keep-alive connection is kept open for reuse.
    keepalive_timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)


class LoggingConfig(_Model):
    """The gateway's own log lines (docs/observability.md)."""

    format: Literal["kv", "json"] = "kv"
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    #: One access log line per request (logger ``asgi_llmroute.access``).
    access: bool = True


class MetricsConfig(_Model):
    """The Prometheus endpoint: admin tokens required unless ``open``."""

    enabled: bool = True
    path: str = Field(default="/metrics", pattern=r"^/[A-Za-z0-9._~/-]*$")
    open: bool = False


class UsageConfig(_Model):
    #: Ask OpenAI-format upstreams for stream usage when the client did not (the extra chunk is removed).
    stream_usage: bool = True


class TranslationConfig(_Model):
    default_max_tokens: int = Field(default=4096, gt=0)
    reasoning_content: bool = True
    #: Drop the request fields a provider's kind refuses (with a warning header) instead of a 400.
    drop_params: bool = False
    #: The ``model`` in every answer: the name the client asked for, or the upstream's own id.
    response_model: Literal["client", "upstream"] = "client"


class KeysConfig(_Model):
    """Virtual keys (docs/keys.md): kept in the provider store, so they need a ``[store]``."""

    enabled: bool = True
    #: Seconds within which a key changed by another process takes effect here.
    refresh: float = Field(default=2.0, gt=0, le=3600)
    #: Seconds between writes of recorded spend (and reads of every process's totals).
    flush: float = Field(default=1.0, gt=0, le=3600)


class TeamConfig(_Model):
    """A team's budget: keys with ``team = name`` share it."""

    name: str = Field(min_length=1, max_length=128)
    budget: float = Field(ge=0, le=1e9, allow_inf_nan=False)
    budget_period: Literal["daily", "weekly", "monthly"] | None = "monthly"


class PriceConfig(_Model):
    """A model's price in USD per million tokens (wins over the genai-prices catalog); ``web_search`` in USD
    per 1,000 server-side web searches."""

    input: float = Field(ge=0, allow_inf_nan=False)
    output: float = Field(ge=0, allow_inf_nan=False)
    cache_read: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    cache_write: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    web_search: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class GatewayConfig(_Model):
    """The whole gateway configuration; ``build_gateway(config)`` turns it into an ASGI app."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    tokens: list[TokenConfig] = Field(default_factory=list)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    translation: TranslationConfig = Field(default_factory=TranslationConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    usage: UsageConfig = Field(default_factory=UsageConfig)
    store: StoreConfig | None = None
    state: StateConfig = Field(default_factory=StateConfig)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    teams: list[TeamConfig] = Field(default_factory=list)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    #: Folder that relative ``file:`` references are read from (the config file's folder).
    base_dir: str | None = None
    #: Where the configuration came from, for messages.
    source: str = "<config>"

    @model_validator(mode="after")
    def _cross_references(self) -> GatewayConfig:
        _unique("providers", (p.name for p in self.providers))
        _unique("tokens", (t.name for t in self.tokens))
        names = {p.name for p in self.providers}
        for i, model in enumerate(self.models):
            if model.provider not in names:
                raise ValueError(f"models[{i}].provider: no provider named {model.provider!r}")
        _check_fallbacks(self.models, names)
        return self

    # -- secret references ----------------------------------------------------------------------

    def resolve(self, key: str, value: str) -> str:
        """Resolve the reference ``value`` found at ``key``; a failure is a :class:`ConfigError` naming ``key``."""
        try:
            return resolve_reference(value, base_dir=Path(self.base_dir) if self.base_dir else None)
        except SecretReferenceError as exc:
            raise ConfigError(f"{self.source}: {key}: {exc}") from None

    def store_path(self) -> Path | None:
        """The provider store's file, or None when there is no ``[store]`` section."""
        if self.store is None:
            return None
        base = Path(self.base_dir) if self.base_dir else Path.cwd()
        path = Path(self.store.path) if self.store.path else Path(self.server.data_dir) / "providers.db"
        return base / path.expanduser()

    def store_dsn(self) -> str | None:
        """The PostgreSQL store's DSN, resolved (None without ``[store] backend = "postgres"``)."""
        if self.store is None or self.store.dsn is None:
            return None
        dsn = self.store.dsn
        return self.resolve("store.dsn", dsn) if dsn.startswith(("env:", "file:")) else dsn

    def state_url(self) -> str | None:
        """The Redis URL of ``[state]``, resolved (None for the in-memory state)."""
        url = self.state.url
        if self.state.backend != "redis" or url is None:
            return None
        return self.resolve("state.url", url).strip() if url.startswith(("env:", "file:")) else url

    def store_secret(self) -> Secret:
        """The store's secret, read now (a rotated ``file:`` secret is seen without a restart)."""
        if self.store is None:
            raise ConfigError(f"{self.source}: there is no [store] section")
        return Secret(self.resolve("store.secret", self.store.secret))

    def check(self) -> None:
        """Resolve every reference now, so a missing variable or file fails at start."""
        for i, token in enumerate(self.tokens):
            if token.key is not None and not self.resolve(f"tokens[{i}].key", token.key).strip():
                raise ConfigError(f"{self.source}: tokens[{i}].key: the key is empty")
        for i, ref in enumerate(self.admin.tokens):
            self.resolve(f"admin.tokens[{i}]", ref)
        for i, provider in enumerate(self.providers):
            if provider.api_key is not None:
                self.resolve(f"providers[{i}].api_key", provider.api_key)
            else:
                self.provider_key(i)
            self.provider_base_url(i)
        if self.store is not None:
            self.store_secret()
            self.store_dsn()
        self.state_url()

    def provider_key(self, index: int) -> str | None:
        """The key of ``providers[index]``: its ``api_key`` resolved, else its kind's variable (read now)."""
        provider = self.providers[index]
        where = f"providers[{index}] ({provider.name})"
        if provider.api_key is not None:
            return self.resolve(f"providers[{index}].api_key", provider.api_key).strip() or None
        variable = provider.key_variable()
        if variable is None:
            return None
        value = os.environ.get(variable, "").strip()
        if not value and provider.provider_kind().key_required:
            raise ConfigError(
                f"{self.source}: {where}: kind {provider.kind!r} needs an API key: "
                f"set the environment variable {variable} or give api_key"
            )
        return value or None

    def provider_base_url(self, index: int) -> str:
        """The base URL of ``providers[index]``: as given, else its kind's default or variable."""
        provider = self.providers[index]
        if provider.base_url is not None:
            return provider.base_url
        kind = provider.provider_kind()
        if kind.default_base_url is not None:
            return kind.default_base_url
        assert kind.base_url_env is not None  # the schema checked that there is a way
        value = os.environ.get(kind.base_url_env, "").strip()
        try:
            if not value:
                raise ValueError("it is not set")
            return check_base_url(value)
        except ValueError as exc:
            raise ConfigError(
                f"{self.source}: providers[{index}] ({provider.name}): kind {kind.name!r} needs a base_url: "
                f"give one, or set the environment variable {kind.base_url_env} ({exc})"
            ) from None


def _check_fallbacks(models: Sequence[ModelConfig], providers: set[str]) -> None:
    # Cycles (a -> b -> a) are allowed: each request tries every model once at most.
    names = {m.name for m in models}
    given: dict[str, list[str]] = {}
    for i, model in enumerate(models):
        if model.fallbacks is None:
            continue
        if given.setdefault(model.name, model.fallbacks) != model.fallbacks:
            raise ValueError(f"models[{i}].fallbacks: differs from another [[models]] entry named {model.name!r}")
        for j, name in enumerate(model.fallbacks):
            provider, sep, upstream = name.partition("/")
            if name == model.name:
                raise ValueError(f"models[{i}].fallbacks[{j}]: a model cannot be its own fallback")
            if name not in names and not (sep and upstream and provider in providers):
                raise ValueError(
                    f"models[{i}].fallbacks[{j}]: no model named {name!r} (nor a '<provider>/<model>' form)"
                )


def _unique(section: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{section}: the name {name!r} is used twice")
        seen.add(name)


def parse_config(data: Mapping[str, Any], *, source: str = "<config>", base_dir: Path | None = None) -> GatewayConfig:
    """Validate a configuration mapping (as read from TOML); raise :class:`ConfigError` if invalid."""
    return _validate(data, source=source, base_dir=base_dir)


def _validate(
    data: Mapping[str, Any], *, source: str, base_dir: Path | None, lines: Mapping[tuple[Any, ...], int] | None = None
) -> GatewayConfig:
    extra = {"source": source, "base_dir": str(base_dir) if base_dir is not None else None}
    if "source" in data or "base_dir" in data:
        raise ConfigError(f"{source}: unknown top-level key")
    try:
        config = GatewayConfig.model_validate({**data, **extra})
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc, lines or {})) from None
    config.check()
    return config


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a configuration file: TOML, or the same schema in Links notation (``.lenv``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix.lower() == ".lenv":
        lines: dict[tuple[Any, ...], int] = {}
        try:
            data = to_data(read_tree(text), GatewayConfig, lines=lines)
        except LenvError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return _validate(data, source=str(path), base_dir=path.resolve().parent, lines=lines)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, source=str(path), base_dir=path.resolve().parent)


def _describe(source: str, exc: ValidationError, lines: Mapping[tuple[Any, ...], int]) -> str:
    out = []
    for error in exc.errors(include_url=False, include_input=False):
        key = _key(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        loc = tuple(error["loc"])
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        where = f"{source}: line {line}" if line is not None else source
        out.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")
    return "\n".join(out)


def _key(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
