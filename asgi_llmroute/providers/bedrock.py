"""AWS Bedrock: the ``bedrock`` kind and its wire format.

Every Bedrock model through Converse / ConverseStream, and Claude through InvokeModel /
InvokeModelWithResponseStream with its own Anthropic body. Which API serves which client is the
provider's choice (``anthropic_api``, ``openai_api``); by default Anthropic clients use InvokeModel
for Claude models (so betas, ``cache_control`` and citations keep working) and Converse for other
models, OpenAI clients (and Responses clients, through Chat) use Converse.

Requests are signed with SigV4 (:mod:`.bedrock_auth`, botocore imported on first use) or carry a
Bedrock API key. docs/providers.md, "AWS Bedrock", has every setting.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..formats.errors import anthropic_error_body, openai_error_body
from .bedrock_auth import AwsSettings, BedrockApiKey, BedrockSigner
from .kinds import CHAT, KindError, ProviderKind, UrlBuilder, WireFormat, register_kind, register_wire

if TYPE_CHECKING:
    from starlette.types import Message

    from ..formats.bedrock import BedrockAPI, BedrockTranslator
    from ..formats.stream_base import StreamTranslator
    from ..formats.types import TranslationOptions
    from .auth import Authenticator
    from .types import Deployment, Provider

__all__ = ["BEDROCK", "BedrockExchange", "DEFAULT_BASE_URL"]

logger = logging.getLogger("asgi_llmroute.bedrock")

#: ``{region}`` is filled in from the provider's ``region``.
DEFAULT_BASE_URL = "https://bedrock-runtime.{region}.amazonaws.com"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_APIS = ("converse", "invoke")
_AUTH_MODES = ("sigv4", "api-key")
# Failures of the credentials themselves (the AWS front door's and Bedrock's): the gateway's fault.
_CREDENTIAL_ERRORS = frozenset(
    {
        "unrecognizedclientexception",
        "invalidsignatureexception",
        "expiredtokenexception",
        "missingauthenticationtokenexception",
        "accessdeniedexception",
        "incompletesignatureexception",
    }
)
#: Seconds a client (and the retry layer) is told to wait after Bedrock throttled: it sends no hint.
THROTTLE_RETRY_AFTER = "1"
_BODY_CT = b"content-type"


def _option_value(value: str | None) -> str | None:
    """An option, or the variable it names (``env:NAME``), so secrets can stay out of config files."""
    if value is not None and value.startswith("env:"):
        return os.environ.get(value[4:]) or None
    return value


def _region(options: Mapping[str, str]) -> str | None:
    return options.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def _auth_mode(options: Mapping[str, str], has_key: bool) -> str:
    mode = options.get("auth")
    if mode is not None:
        return mode
    # A key without an access key id is a Bedrock API key; with one, it is the secret access key.
    return "api-key" if has_key and "aws_access_key_id" not in options else "sigv4"


def _check(options: Mapping[str, str], has_key: bool) -> None:
    region = _region(options)
    if region is None:
        raise KindError("region: required (e.g. us-east-1), or set AWS_REGION")
    if not _REGION.match(region):
        raise KindError(f"region: {region!r} is not an AWS region name (e.g. us-east-1)")
    mode = _auth_mode(options, has_key)
    if mode not in _AUTH_MODES:
        raise KindError(f"auth: must be one of {', '.join(_AUTH_MODES)}")
    if mode == "api-key" and not has_key:
        raise KindError("auth = 'api-key' needs the Bedrock API key as api_key")
    if "aws_access_key_id" in options and not has_key:
        raise KindError("aws_access_key_id needs the secret access key as api_key")
    role = options.get("aws_role_name")
    if role is not None and not _ROLE.match(role):
        raise KindError("aws_role_name: must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    for name in ("anthropic_api", "openai_api"):
        value = options.get(name)
        if value is not None and value not in _APIS:
            raise KindError(f"{name}: must be 'converse' or 'invoke'")
    sts = options.get("sts_endpoint_url")
    if sts is not None and not sts.startswith(("https://", "http://")):
        raise KindError("sts_endpoint_url: must be an http:// or https:// URL")


def _key_env(options: Mapping[str, str]) -> str | None:
    """boto3's variable for a Bedrock API key, unless the provider signs (then the secret access key
    is configured next to its key id, or comes from AWS's own chain)."""
    if options.get("auth") == "sigv4" or "aws_access_key_id" in options:
        return None
    return "AWS_BEARER_TOKEN_BEDROCK"


def _endpoint(provider: Provider) -> UrlBuilder:
    region = _region(dict(provider.options)) or "us-east-1"
    base = provider.base_url.replace("{region}", region)

    def url(path: str, model: str) -> str:
        return base + path  # the translator built /model/{id}/{operation}

    return url


def _credentials(provider: Provider) -> list[tuple[str, str]]:
    return []  # always the authenticator: SigV4 signs, or a Bedrock API key is set as Bearer


def settings_for(provider: Provider) -> AwsSettings:
    options = dict(provider.options)
    key_id = options.get("aws_access_key_id")
    return AwsSettings(
        region=_region(options) or "us-east-1",
        access_key_id=key_id,
        secret_access_key=provider.api_key.reveal() if key_id and provider.api_key is not None else None,
        session_token=_option_value(options.get("aws_session_token")),
        profile=options.get("aws_profile_name"),
        role_arn=options.get("aws_role_name"),
        role_session_name=options.get("aws_session_name", "asgi-llmroute"),
        sts_endpoint_url=options.get("sts_endpoint_url"),
    )


def _authenticator(provider: Provider) -> Authenticator | None:
    options = dict(provider.options)
    if _auth_mode(options, provider.api_key is not None) == "api-key":
        assert provider.api_key is not None  # checked by _check
        return BedrockApiKey(provider.api_key.reveal())
    return BedrockSigner(settings_for(provider))


def _client_api(client: str, provider: Provider, model: str) -> BedrockAPI:
    if client == "anthropic":
        choice = provider.option("anthropic_api")
        if choice is None:
            from ..formats.converse_request import is_anthropic_model

            return "invoke" if is_anthropic_model(model) else "converse"
    else:
        choice = provider.option("openai_api", "converse")
    return "invoke" if choice == "invoke" else "converse"


class BedrockExchange:
    """One request to a Bedrock provider: picks the API, builds path and body, reads the answer.

    What the translation layer needs of a translator, plus ``bind`` (the deployment and the client's
    headers, before ``request``), ``upstream_path`` (after it) and ``response_start`` (the upstream's
    response head: request id logged, exception name read, ``Retry-After`` added to throttling).
    """

    __slots__ = ("_client", "_options", "_tr", "_provider", "_status", "_error_type", "_credentials_failed")

    def __init__(self, client: str, options: TranslationOptions) -> None:
        self._client = client
        self._options = options
        self._tr: BedrockTranslator | None = None
        self._provider = "bedrock"
        self._status = 0
        self._error_type: str | None = None
        self._credentials_failed = False

    def bind(self, deployment: Deployment, headers: Iterable[tuple[bytes, bytes]]) -> None:
        # The Bedrock translation is imported with the first Bedrock request, not with the kind's registration.
        from ..formats.bedrock import BEDROCK_ANTHROPIC_VERSION, BedrockTranslator, split_betas

        provider = deployment.provider
        self._provider = provider.name
        betas = [v.decode("latin-1") for k, v in headers if k == b"anthropic-beta"]
        api = _client_api(self._client, provider, deployment.model)
        version = provider.option("anthropic_version", BEDROCK_ANTHROPIC_VERSION) or BEDROCK_ANTHROPIC_VERSION
        self._tr = BedrockTranslator(
            self._client,  # type: ignore[arg-type]
            api,
            deployment.model,
            self._options,
            betas=split_betas(betas),
            anthropic_version=version,
        )

    @property
    def translator(self) -> BedrockTranslator:
        if self._tr is None:
            raise RuntimeError("BedrockExchange.bind() must be called before the request is translated")
        return self._tr

    @property
    def usage(self) -> dict[str, int] | None:
        return self._tr.usage if self._tr is not None else None

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        tr = self.translator
        out = tr.request(body)
        for warning in tr.warnings:
            logger.info("provider %s: %s", self._provider, warning)
        return out

    def upstream_path(self) -> str:
        return self.translator.path()

    def response_start(self, message: Message) -> Message:
        headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
        status: int = message["status"]
        self._status = status
        request_id = _header(headers, b"x-amzn-requestid")
        if status >= 400:
            from ..formats.converse_response import error_type_name

            name = error_type_name(_header(headers, b"x-amzn-errortype"))
            self._error_type = name
            self.translator.error_type = name
            self._credentials_failed = status in (401, 403) and (name or "").lower() in _CREDENTIAL_ERRORS
            logger.warning(
                "provider %s: Bedrock answered %s %s (request id %s)", self._provider, status, name or "", request_id
            )
            if status == 429 and not any(k in (b"retry-after", b"retry-after-ms") for k, _ in headers):
                headers.append((b"retry-after", THROTTLE_RETRY_AFTER.encode()))
        elif request_id:
            logger.debug("provider %s: Bedrock request id %s", self._provider, request_id)
        return {**message, "headers": headers}

    def response(self, body: bytes) -> bytes:
        return self.translator.response(body)

    def error(self, status: int, body: bytes) -> bytes:
        if self._credentials_failed:
            name = self._error_type or "AccessDeniedException"
            who = f"Provider {self._provider!r} (AWS Bedrock)"
            if name.lower() == "accessdeniedexception":
                message = f"{who} denied the gateway's credentials access to this model ({name})"
            else:
                message = f"{who} rejected the gateway's credentials ({name})"
            type_ = "permission_error" if status == 403 else "authentication_error"
            if self._client == "anthropic":
                return anthropic_error_body(message, type_)
            return openai_error_body(message, type_, code=name)
        from ..formats.converse_response import bedrock_error

        return bedrock_error(self._client, status, body, self._error_type)

    def stream(self) -> StreamTranslator:
        return self.translator.stream()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _translator(client: str, options: TranslationOptions) -> Any:
    return BedrockExchange(client, options)


#: Content type of Bedrock's streamed answers (binary AWS event stream, not SSE).
EVENT_STREAM_TYPE = b"application/vnd.amazon.eventstream"

BEDROCK_WIRE = register_wire(WireFormat("bedrock", lambda stream: "/model", _translator, b"anthropic-"))

BEDROCK = register_kind(
    ProviderKind(
        "bedrock",
        "bedrock",
        title="AWS Bedrock",
        aliases=("aws_bedrock", "bedrock_converse"),
        default_base_url=DEFAULT_BASE_URL,
        key_env="AWS_BEARER_TOKEN_BEDROCK",  # a Bedrock API key, as boto3 reads it; SigV4 needs none
        key_required=False,
        capabilities=frozenset({CHAT}),
        options=frozenset(
            {
                "region",
                "auth",
                "aws_access_key_id",
                "aws_session_token",
                "aws_profile_name",
                "aws_role_name",
                "aws_session_name",
                "sts_endpoint_url",
                "anthropic_api",
                "openai_api",
                "anthropic_version",
            }
        ),
        endpoint=_endpoint,
        credentials=_credentials,
        authenticator=_authenticator,
        check=_check,
        key_env_for=_key_env,
        notes="Converse for every model, InvokeModel for Claude; SigV4 (botocore) or a Bedrock API key",
    )
)

__all__ += ["BEDROCK_WIRE", "EVENT_STREAM_TYPE", "settings_for"]
