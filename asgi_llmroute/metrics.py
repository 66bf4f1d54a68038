"""Prometheus metrics of one gateway, in a registry of its own, and the ``/metrics`` endpoint.

Two gateways in one process never share a series: every :class:`GatewayMetrics` owns a
``CollectorRegistry`` (nothing is registered in ``prometheus_client``'s global default registry).

Label values are bounded: ``model`` is the client-facing name only when it is a configured model
(``other`` otherwise, ``none`` before resolution), ``deployment`` is ``<provider>/<upstream model>``
(``<provider>/other`` for unconfigured models), ``token`` is the router token's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from starlette.types import Receive, Scope, Send

from .context import RequestContext
from .deferred import require
from .errors import GatewayError, send_error
from .secret import Secret
from .tokens import AdminTokens, presented_tokens

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics", "MetricsEndpoint", "upstream_error_kind"]

_M = TypeVar("_M", "Counter", "Histogram", "Gauge")

# LLM requests take from milliseconds (errors, cached answers) to minutes (long generations).
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

# One table from an upstream error status to the kind counted; anything else 4xx/5xx falls back.
_ERROR_KINDS = {
    401: "auth",
    403: "auth",
    408: "timeout",
    429: "rate_limited",
    502: "unavailable",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}


def upstream_error_kind(status: int, failure: str | None = None) -> str | None:
    """The ``kind`` label of a failed attempt: the forwarder's ``ctx.last_error`` (``connect``,
    ``timeout``, ``protocol``, ``transport``) if any, else by upstream status; None if it did not fail."""
    # "disconnect" (the client left, or the server's end-of-response message) says nothing of the upstream.
    if failure is not None and failure != "disconnect":
        return failure
    if status < 400:
        return None
    return _ERROR_KINDS.get(status) or ("server_error" if status >= 500 else "client_error")


class GatewayMetrics:
    """The gateway's Prometheus series; :meth:`record` is called once per finished request.

    ``is_known(model)`` (e.g. "is it in the live route table") decides which model names are used as
    label values; the others are counted as ``other``.
    """

    requests: Counter
    duration: Histogram
    ttft: Histogram
    in_flight: Gauge
    input_tokens: Counter
    output_tokens: Counter
    upstream_errors: Counter

    def __init__(
        self, *, is_known: Callable[[str], bool] = lambda model: False, registry: CollectorRegistry | None = None
    ) -> None:
        prometheus = require("prometheus_client", "metrics", what="Gateway metrics")
        Counter, Gauge, Histogram = prometheus.Counter, prometheus.Gauge, prometheus.Histogram
        self._prometheus = prometheus
        self.registry = registry if registry is not None else prometheus.CollectorRegistry(auto_describe=True)
        self._known = is_known
        r = self.registry
        self.requests = Counter(
            "llmroute_requests",
            "Requests answered, by model, deployment and status.",
            ["model", "deployment", "status"],
            registry=r,
        )

        def per_deployment(name: str, doc: str, buckets: tuple[float, ...]) -> Any:  # a prometheus_client Histogram
            return Histogram(name, doc, ["model", "deployment"], buckets=buckets, registry=r)

        self.duration = per_deployment(
            "llmroute_request_duration_seconds",
            "Total time from request to the end of the response.",
            _DURATION_BUCKETS,
        )
        self.ttft = per_deployment(
            "llmroute_time_to_first_token_seconds",
            "Time from request to the first response byte of a successful event stream.",
            _TTFT_BUCKETS,
        )
        self.in_flight = Gauge(
            "llmroute_requests_in_flight",
            "Requests being handled, by client API.",
            ["api"],
            registry=r,
            multiprocess_mode="livesum",  # with several workers: the sum over the live ones
        )
        self.input_tokens = Counter(
            "llmroute_input_tokens", "Input tokens (cache reads and writes included).", ["model", "token"], registry=r
        )
        self.output_tokens = Counter("llmroute_output_tokens", "Output tokens.", ["model", "token"], registry=r)
        self.spend = Counter(
            "llmroute_spend_usd", "Spend of virtual keys in USD (priced usage).", ["key", "team", "model"], registry=r
        )
        self.upstream_errors = Counter(
            "llmroute_upstream_errors",
            "Upstream error responses and failures, by kind.",
            ["deployment", "kind"],
            registry=r,
        )
        # prometheus_client validates and locks on every labels() call; children are cached here.
        self._children: dict[tuple[Any, ...], Any] = {}

    def in_flight_for(self, api: str) -> Gauge:
        """The in-flight gauge of client API ``api`` (an ``ClientAPI`` value)."""
        return self._child(self.in_flight, api)

    def model_label(self, ctx: RequestContext) -> str:
        model = ctx.model
        if model is None:
            return "none"
        return model if self._known(model) else "other"

    def record(self, ctx: RequestContext, status: int, duration: float, ttfb: float | None, stream: bool) -> None:
        """Account one finished request (``ttfb`` in seconds, None if no body byte was sent)."""
        model = self.model_label(ctx)
        deployment = ctx.deployment
        if deployment is None:
            dep = "none"
        else:
            dep = f"{deployment.provider.name}/{deployment.model if model != 'other' else 'other'}"
        self._child(self.requests, model, dep, str(status)).inc()
        if deployment is None:
            return
        self._child(self.duration, model, dep).observe(duration)
        if stream and ttfb is not None and status < 300:
            self._child(self.ttft, model, dep).observe(ttfb)
        usage = ctx.usage
        if usage:
            token = ctx.principal.name if ctx.principal is not None else "none"
            self._child(self.input_tokens, model, token).inc(usage.get("input_tokens", 0))
            self._child(self.output_tokens, model, token).inc(usage.get("output_tokens", 0))

    def upstream_error(self, ctx: RequestContext, kind: str) -> None:
        """Count one failed upstream attempt on ``ctx.deployment``."""
        deployment = ctx.deployment
        if deployment is None:
            return
        model = deployment.model if self.model_label(ctx) != "other" else "other"
        self._child(self.upstream_errors, f"{deployment.provider.name}/{model}", kind).inc()

    def _child(self, metric: _M, *labels: str) -> _M:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return cast("_M", child)

    @property
    def content_type(self) -> str:
        """The media type of :meth:`render`'s output."""
        return cast(str, self._prometheus.CONTENT_TYPE_LATEST)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format.

        Under ``PROMETHEUS_MULTIPROC_DIR`` (``llmroute serve --workers N`` sets one), the series of
        every worker process of this instance, summed (docs/scaling.md).
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = self._prometheus.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return cast(bytes, self._prometheus.generate_latest(registry))
        return cast(bytes, self._prometheus.generate_latest(self.registry))


class MetricsEndpoint:
    """ASGI app answering ``GET`` with the metrics; an admin token is required unless ``open``.

    The token is read from ``Authorization: Bearer`` or ``x-api-key`` and compared, by SHA-256
    digest, with every admin token in constant time.
    """

    def __init__(self, metrics: GatewayMetrics, *, admin_tokens: Iterable[Secret] = (), open: bool = False) -> None:
        self._metrics = metrics
        self._admin = AdminTokens(admin_tokens)
        self._open = open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_error(send, "openai", GatewayError(405, "Method not allowed on the metrics endpoint."))
            return
        if not self._open and not self._admin.admits(presented_tokens(scope["headers"])):
            await send_error(
                send,
                "openai",
                GatewayError(
                    401, "The metrics endpoint needs an admin token.", headers=(("www-authenticate", "Bearer"),)
                ),
            )
            return
        body = self._metrics.render()
        content_type = self._metrics.content_type.encode()
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
