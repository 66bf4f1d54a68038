"""AWS credentials for Bedrock upstreams: SigV4 request signing with botocore, or a Bedrock API key.

botocore (the ``bedrock`` extra) is imported the first time a Bedrock provider signs a request,
never for users without one. Credentials come from botocore's own chain, in this order:

1. static keys configured on the provider (``aws_access_key_id`` / ``aws_secret_access_key``,
   optionally ``aws_session_token``; the secret can live in the encrypted store like any key);
2. otherwise the chain of a botocore session for ``aws_profile_name`` (if given): environment
   variables, shared ``~/.aws/credentials`` and ``~/.aws/config`` profiles (including SSO and
   ``credential_process``), container and instance metadata;
3. and, with ``aws_role_name`` (a role ARN), an STS AssumeRole on top of those, refreshed before
   the temporary credentials expire.

Resolving and refreshing can block (STS, SSO, metadata calls): that happens in a worker thread,
once at a time, never on the event loop. Signing itself is a few HMACs over the final request and
runs inline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ..deferred import MissingExtraError, require
from .auth import AuthError

if TYPE_CHECKING:
    import httpx

__all__ = ["BedrockApiKey", "BedrockCredentialsError", "BedrockSigner", "SIGNING_NAME"]

logger = logging.getLogger("asgi_llmroute.bedrock")

#: SigV4 signing name of the Bedrock runtime (its endpoint is ``bedrock-runtime.{region}``).
SIGNING_NAME = "bedrock"
# Only these request headers are signed (boto3 signs the same set): anything a proxy or the
# transport may add or change later cannot break the signature.
_SIGNED = ("host", "content-type")


class BedrockCredentialsError(AuthError):
    """AWS credentials could not be found or refreshed; the message never holds a secret.

    An :class:`~asgi_llmroute.providers.auth.AuthError`: the forwarder answers 502 ``upstream_auth``
    naming the provider."""


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """Where a Bedrock provider's AWS credentials come from (see the module docstring)."""

    region: str
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    role_session_name: str = "asgi-llmroute"
    #: STS endpoint for AssumeRole (tests point it at a local server).
    sts_endpoint_url: str | None = None


class BedrockSigner:
    """Signs upstream requests with SigV4 (service ``bedrock``) using botocore's signer and chain.

    ``await signer.authorize(request)`` sets ``Authorization``, ``X-Amz-Date`` and, for temporary
    credentials, ``X-Amz-Security-Token`` on an ``httpx.Request`` whose body is final.
    """

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        self._credentials: Any = None  # botocore Credentials (maybe refreshable), resolved lazily
        self._lock: anyio.Lock | None = None
        self._auth_cls: Any = None
        self._request_cls: Any = None
        self._clients: dict[str, Any] = {}  # botocore clients for refreshing (STS)

    def close(self) -> None:
        """Close the connections of the clients used to refresh credentials (STS)."""
        while self._clients:
            _, client = self._clients.popitem()
            client.close()

    # -- credentials ---------------------------------------------------------------------------
    def _resolve_blocking(self) -> Any:
        try:
            session_module = require("botocore.session", "bedrock", what="kind = 'bedrock' (SigV4 signing)")
        except MissingExtraError as exc:  # pragma: no cover - depends on the installation
            raise BedrockCredentialsError(str(exc)) from None
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

        self._auth_cls, self._request_cls = SigV4Auth, AWSRequest
        s = self.settings
        try:
            session = session_module.Session(profile=s.profile) if s.profile else session_module.Session()
            if s.access_key_id and s.secret_access_key:
                session.set_credentials(s.access_key_id, s.secret_access_key, s.session_token)
            credentials = session.get_credentials()
            if credentials is None:
                raise BedrockCredentialsError(
                    "no AWS credentials found (static keys, environment, profile or instance role)"
                )
            if s.role_arn:
                sts_endpoint = s.sts_endpoint_url
                clients = self._clients

                def client_creator(service: str, **kwargs: Any) -> Any:
                    # One STS client for every refresh (botocore would make one per refresh).
                    if service not in clients:
                        if sts_endpoint:
                            kwargs.setdefault("endpoint_url", sts_endpoint)
                        kwargs.setdefault("region_name", s.region)
                        clients[service] = session.create_client(service, **kwargs)
                    return clients[service]

                fetcher = AssumeRoleCredentialFetcher(
                    client_creator=client_creator,
                    source_credentials=credentials,
                    role_arn=s.role_arn,
                    extra_args={"RoleSessionName": s.role_session_name},
                )
                credentials = DeferredRefreshableCredentials(
                    refresh_using=fetcher.fetch_credentials, method="assume-role"
                )
        except BedrockCredentialsError:
            raise
        except Exception as exc:  # botocore's many error types; their text names no secret
            raise BedrockCredentialsError(f"could not load AWS credentials: {type(exc).__name__}: {exc}") from None
        return credentials

    @staticmethod
    def _frozen_blocking(credentials: Any) -> Any:
        try:
            return credentials.get_frozen_credentials()
        except Exception as exc:
            raise BedrockCredentialsError(f"could not refresh AWS credentials: {type(exc).__name__}: {exc}") from None

    async def frozen_credentials(self) -> Any:
        """The current credentials (access key, secret, token), refreshed in a thread when due."""
        credentials = self._credentials
        if credentials is not None and not _refresh_due(credentials):
            return credentials.get_frozen_credentials()  # in memory: no I/O
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._credentials is not None and not _refresh_due(self._credentials):
                return self._credentials.get_frozen_credentials()  # refreshed while this one waited
            return await anyio.to_thread.run_sync(self._load_blocking)

    def _load_blocking(self) -> Any:
        if self._credentials is None:
            self._credentials = self._resolve_blocking()
        return self._frozen_blocking(self._credentials)

    def invalidate(self) -> None:
        """Forget resolved credentials (the upstream rejected them): the next request resolves anew."""
        self._credentials = None

    # -- signing -------------------------------------------------------------------------------
    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes, frozen: Any) -> dict[str, str]:
        """The SigV4 headers for one request with ``frozen`` credentials."""
        to_sign = {name: headers[name] for name in _SIGNED if name in headers}
        request = self._request_cls(method=method, url=url, data=body, headers=to_sign)
        # The payload hash is computed once here instead of by botocore's streaming path.
        request.context["payload_signing_enabled"] = True
        self._auth_cls(frozen, SIGNING_NAME, self.settings.region).add_auth(request)
        out = {"authorization": request.headers["Authorization"], "x-amz-date": request.headers["X-Amz-Date"]}
        token = request.headers.get("X-Amz-Security-Token")
        if token:
            out["x-amz-security-token"] = token
        return out

    async def authorize(self, request: httpx.Request) -> None:
        frozen = await self.frozen_credentials()
        signed = self.sign(request.method, str(request.url), request.headers, request.content, frozen)
        for name, value in signed.items():
            request.headers[name] = value


def _refresh_due(credentials: Any) -> bool:
    """Whether botocore would refresh (and so block) on the next read of these credentials."""
    needed = getattr(credentials, "refresh_needed", None)
    if needed is None:
        return False  # static credentials
    try:
        return bool(needed())
    except Exception:  # pragma: no cover - defensive: let the locked path deal with it
        return True


class BedrockApiKey:
    """A Bedrock API key: ``Authorization: Bearer <key>`` instead of SigV4."""

    def __init__(self, key: str) -> None:
        self._header = "Bearer " + key

    def __repr__(self) -> str:
        return "BedrockApiKey(***)"

    async def authorize(self, request: httpx.Request) -> None:
        request.headers["authorization"] = self._header
