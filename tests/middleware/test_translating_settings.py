"""TranslatingMiddleware: the one home of the settings TranslationMiddleware and ResponsesMiddleware share."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from asgi_llmroute.formats import TranslationOptions
from asgi_llmroute.formats.capabilities import ModelCapabilities
from asgi_llmroute.middleware.responses import ResponsesMiddleware
from asgi_llmroute.middleware.translate import TranslatingMiddleware, TranslationMiddleware, upstream_defaults
from asgi_llmroute.providers.types import Deployment


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


def _caps(deployment: Deployment) -> ModelCapabilities:
    return upstream_defaults(deployment)


def test_defaults_and_given_settings() -> None:
    options = TranslationOptions(default_max_tokens=77)
    for cls in (TranslationMiddleware, ResponsesMiddleware):
        assert issubclass(cls, TranslatingMiddleware)
        plain = cls(_app)
        assert plain._app is _app
        assert plain._options == TranslationOptions() and plain._capabilities is upstream_defaults
        given = cls(_app, options=options, capabilities=_caps)
        assert given._options is options and given._capabilities is _caps
