"""Retries and fallbacks: re-run the inner pipeline on another deployment while nothing is committed."""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import RequestContext, get_context
from ..disconnect import run_while_connected
from ..providers.balance import Balancer, DeploymentStats, Key, deployment_key
from ..providers.types import Deployment, Provider, Route
from ..retry_policy import RetryPolicy
from .resolve import RouteResolver

__all__ = ["Backoff", "RetryMiddleware", "parse_retry_after"]

logger = logging.getLogger("asgi_llmroute.retry")

# A retryable response is held back while the next attempt is decided; error bodies are small,
# and one that is not is relayed (committed) rather than buffered further.
_MAX_HELD = 1024 * 1024

_WAIT, _PASS, _HOLD = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between retries of the same route.

    The n-th retry waits a random time between half and all of ``min(max, base * 2**(n-1))``
    seconds, or what the upstream's ``Retry-After`` (``retry-after-ms``) asks when it asks for at
    most ``max_retry_after`` seconds. A longer ``Retry-After`` is not waited for: the request goes
    on to another deployment or fallback, or the client gets the answer (with its ``Retry-After``).
    """

    base: float = 0.5
    max: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, retry: int) -> float:
        cap = min(self.max, self.base * 2.0 ** (retry - 1))
        return cap / 2 + random.random() * cap / 2


def parse_retry_after(headers: list[tuple[bytes, bytes]]) -> float | None:
    """Seconds the response asks to wait (``retry-after-ms``, ``retry-after`` seconds or HTTP date)."""
    seconds: float | None = None
    for name, value in headers:
        try:
            if name == b"retry-after-ms":
                return max(0.0, float(value) / 1000)  # the more precise one wins
            if name == b"retry-after":
                text = value.decode("latin-1").strip()
                if text.replace(".", "", 1).isdigit():
                    seconds = float(text)
                else:
                    when = email.utils.parsedate_to_datetime(text)
                    seconds = max(0.0, when.timestamp() - time.time())
        except (ValueError, TypeError, OverflowError):
            continue
    return seconds if seconds is None or math.isfinite(seconds) else None


class RetryMiddleware:
    """Retry a failed attempt on the route's other deployments, then on its fallbacks.

    Put it after :class:`ProviderResolverMiddleware` (it starts from ``ctx.route`` and
    ``ctx.deployment``) and in front of the layers that depend on the deployment (credential
    stripping, translation, the forwarder), which it re-runs for each attempt with the client's
    original body and headers.

    An attempt whose response status is in the provider's ``retry_on`` is held back (never sent to
    the client) while the next step is decided:

    1. a deployment of the same route not tried yet, at once (cooling ones only when no fallback is left);
    2. up to ``max_retries`` more attempts on the route, after a backoff (:class:`Backoff`);
    3. the route's fallbacks in order (and theirs, each route once), each the same way.

    When nothing is left, the last response is relayed as it is. Any other response is committed
    and passed through untouched: nothing is retried once a byte has gone to the client. Failed
    deployments cool down (``RetryPolicy.cooldown``, at least the upstream's ``Retry-After``)
    so that other deployments take their traffic. The committed response carries
    ``x-llmroute-attempts: <n>``, and ``x-llmroute-deployment: <provider>/<model>`` only with
    ``deployment_header=True`` (it tells clients the provider and upstream model id: a debugging aid,
    off by default). Any ``x-llmroute-*`` header from inside is dropped.

    Scope: reads ``ctx.route``, ``ctx.deployment``, ``ctx.client_body``, ``ctx.last_error``,
    ``ctx.traits``; writes ``ctx.route`` and ``ctx.deployment`` (of the attempt); for each retry
    restores the body, ``scope["headers"]`` and ``ctx.client_api`` as they were and clears
    ``ctx.upstream_path``, ``ctx.first_byte``, ``ctx.usage`` and ``ctx.last_error``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        balancer: Balancer,
        routes: RouteResolver | None = None,
        policies: Mapping[str, RetryPolicy] | None = None,
        default_policy: RetryPolicy | None = None,
        backoff: Backoff | None = None,
        max_attempts: int = 10,
        deployment_header: bool = False,
    ) -> None:
        self._app = app
        self.balancer = balancer
        self.routes = routes
        self._policies = dict(policies or {})
        self._default = default_policy if default_policy is not None else RetryPolicy()
        self.backoff = backoff if backoff is not None else Backoff()
        self.max_attempts = max(1, max_attempts)
        self.deployment_header = deployment_header

    def policy(self, provider: Provider) -> RetryPolicy:
        return self._policies.get(provider.name) or provider.retry or self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = get_context(scope)
        if ctx is None or ctx.route is None or ctx.deployment is None:
            raise RuntimeError(
                "RetryMiddleware needs a resolved route in scope['llmroute']: "
                "put ProviderResolverMiddleware in front of it"
            )
        await _Run(self, scope, receive, send, ctx, ctx.route).run(ctx.deployment)


class _Run:
    """One request's attempts: the send wrapper that holds retryable responses, and the plan."""

    __slots__ = (
        "_attempt",
        "_client_api",
        "_ctx",
        "_headers",
        "_held",
        "_held_size",
        "_mode",
        "_mw",
        "_policy",
        "_queue",
        "_receive",
        "_retries",
        "_route",
        "_scope",
        "_send",
        "_status",
        "_tried",
        "_visited",
    )
    _tried: set[Key]
    _visited: set[str]

    def __init__(
        self, mw: RetryMiddleware, scope: Scope, receive: Receive, send: Send, ctx: RequestContext, route: Route
    ) -> None:
        self._mw = mw
        self._scope = scope
        self._receive = receive
        self._send = send
        self._ctx = ctx
        self._route = route
        # Inner layers replace (or edit) the request headers; each attempt starts from these.
        self._headers = tuple(scope["headers"])
        self._client_api = ctx.client_api  # the Responses layer may switch it to chat
        self._attempt = 0
        self._mode = _WAIT
        self._status = 0
        self._held: list[Message] = []
        self._held_size = 0
        self._policy = mw._default
        self._retries = 0
        # Filled on the first failure, with `_tried` and `_visited` (two empty sets held by every stream otherwise).
        self._queue: deque[str] | None = None  # fallback names still to try

    async def run(self, deployment: Deployment) -> None:
        mw, ctx = self._mw, self._ctx
        balancer = mw.balancer
        if ctx.client_body is None and ctx.body_read:
            ctx.client_body = ctx.body  # used alone, without the resolver keeping it
        if self._route.fallbacks and balancer.cooling(deployment):
            # Every deployment of the model is cooling down: start on a healthy fallback if any.
            switched = self._enter_fallback(healthy_only=True)
            if switched is not None:
                deployment = switched
                self._prepare(deployment)
        while True:
            self._attempt += 1
            self._mode = _WAIT
            self._policy = mw.policy(deployment.provider)
            stats = balancer.stats(deployment)
            begin = time.perf_counter()
            stats.in_flight += 1
            try:
                await mw._app(self._scope, self._receive, self.send)
            finally:
                stats.in_flight -= 1
            if self._mode != _HOLD:
                if self._mode == _PASS and self._status < 400:
                    self._succeeded(stats, deployment, begin)
                return  # committed, or nothing sent (the client left)
            step = self._next(deployment, stats)
            if step is None:
                await self._flush()
                return
            delay, deployment = step
            logger.info(
                "retrying model %r on %s/%s after %s (attempt %d, in %.2fs)",
                ctx.model,
                deployment.provider.name,
                deployment.model,
                ctx.last_error or self._status,
                self._attempt + 1,
                delay,
            )
            if delay > 0 and not await self._pause(delay):
                ctx.last_error = "disconnect"
                return  # the client left while we waited: nobody to answer
            self._prepare(deployment)

    async def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; False if the client disconnected meanwhile."""
        connected, _ = await run_while_connected(self._receive, lambda: anyio.sleep(delay))
        return connected

    # -- the send wrapper ------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        mode = self._mode
        if mode == _PASS:
            await self._send(message)
        elif mode == _HOLD:
            self._held.append(message)
            self._held_size += len(message.get("body", b""))
            if self._held_size > _MAX_HELD:
                await self._flush()  # too big to hold: relay it, this attempt is final
        elif message["type"] == "http.response.start":
            self._status = status = message["status"]
            if status in self._policy.retry_on and self._attempt < self._mw.max_attempts:
                self._mode = _HOLD
                self._held = [message]
                self._held_size = 0
            else:
                self._mode = _PASS
                await self._send(self._stamp(message))
        else:
            await self._send(message)

    def _stamp(self, start: Message) -> Message:
        d = self._ctx.deployment
        assert d is not None
        headers = [(k, v) for k, v in start["headers"] if not k.startswith(b"x-llmroute-")]
        if self._mw.deployment_header:
            value = f"{d.provider.name}/{d.model}"
            # The upstream model may come from the client (a "<provider>/*" route): only printable ASCII goes out.
            if value.isascii() and value.isprintable():
                headers.append((b"x-llmroute-deployment", value.encode("ascii")))
        headers.append((b"x-llmroute-attempts", str(self._attempt).encode()))
        if self._ctx.warning is not None:  # the gateway's own, not an upstream's (those are dropped above)
            headers.append((b"x-llmroute-warning", self._ctx.warning.encode()))
        return {**start, "headers": headers}

    async def _flush(self) -> None:
        held, self._held = self._held, []
        self._mode = _PASS
        await self._send(self._stamp(held[0]))
        for message in held[1:]:
            await self._send(message)

    # -- the plan --------------------------------------------------------------------------------

    def _succeeded(self, stats: DeploymentStats, deployment: Deployment, begin: float) -> None:
        ctx, balancer = self._ctx, self._mw.balancer
        first = ctx.first_byte
        balancer.succeeded(stats, (first if first is not None else time.perf_counter()) - begin)
        session = ctx.traits.session_id
        if session is not None and len(self._route.deployments) > 1:
            balancer.remember(self._route, session, deployment)

    def _next(self, failed: Deployment, stats: DeploymentStats) -> tuple[float, Deployment] | None:
        """What to try after ``failed`` failed: (delay, deployment), or None to give up."""
        mw, ctx = self._mw, self._ctx
        balancer, backoff, policy = mw.balancer, mw.backoff, self._policy
        retry_after = parse_retry_after(self._held[0]["headers"])
        limited = ctx.last_error == "limited"  # our own limit, not the deployment's health
        if not limited:
            cooldown = policy.cooldown if self._status != 409 else 0.0
            if cooldown > 0 and retry_after is not None:
                cooldown = max(cooldown, min(retry_after, backoff.max_retry_after))
            balancer.failed(stats, cooldown)
        if self._attempt >= mw.max_attempts:
            return None
        if self._queue is None:
            self._queue, self._tried, self._visited = deque(self._route.fallbacks), set(), {self._route.name}
        last_route = not self._queue
        self._tried.add(deployment_key(failed))
        # 1. Another deployment of this route.
        nxt = balancer.choose(self._route, exclude=self._tried, allow_cooling=last_route)
        if nxt is not None:
            return 0.0, nxt
        # 2. Another go on this route, after a pause.
        patient = retry_after is None or retry_after <= backoff.max_retry_after
        if not limited and patient and self._retries < policy.max_retries:
            nxt = balancer.choose(self._route, allow_cooling=last_route)
            if nxt is not None:
                self._retries += 1
                return (retry_after if retry_after is not None else backoff.delay(self._retries)), nxt
        # 3. The fallbacks.
        nxt = self._enter_fallback(healthy_only=False)
        return (0.0, nxt) if nxt is not None else None

    def _enter_fallback(self, *, healthy_only: bool) -> Deployment | None:
        """Move to the first fallback route with a healthy deployment (else, unless
        ``healthy_only``, the first that resolves); its own fallbacks join the queue."""
        resolver = self._mw.routes
        if resolver is None:
            return None
        if self._queue is None:
            self._queue, self._tried, self._visited = deque(self._route.fallbacks), set(), {self._route.name}
        balancer = self._mw.balancer
        session = self._ctx.traits.session_id
        principal = self._ctx.principal
        saved = (deque(self._queue), set(self._visited)) if healthy_only else None
        first: tuple[Route, Deployment] | None = None
        while self._queue:
            name = self._queue.popleft()
            if name in self._visited:
                continue  # a cycle, or listed twice
            self._visited.add(name)
            route = resolver.resolve(name)
            if route is None or not route.deployments:
                continue
            self._queue.extend(route.fallbacks)
            if principal is not None and not principal.allows(name):
                # A fallback must not reach what the token could not ask for (LiteLLM got this wrong).
                logger.info("skipping fallback %r: router token %r may not use it", name, principal.name)
                continue
            nxt = balancer.choose(route, session=session, allow_cooling=False)
            if nxt is not None:
                self._switch(route)
                return nxt
            if first is None:
                first = (route, balancer.choose(route, session=session) or route.deployments[0])
        if saved is not None:
            self._queue, self._visited = saved  # nothing healthy: leave the fallbacks for later
            return None
        if first is None:
            return None
        self._switch(first[0])
        return first[1]

    def _switch(self, route: Route) -> None:
        self._route = route
        self._tried = set()
        self._retries = 0

    def _prepare(self, deployment: Deployment) -> None:
        """Reset what the previous attempt's inner layers changed, for ``deployment``."""
        ctx = self._ctx
        self._scope["headers"] = list(self._headers)
        if ctx.client_body is not None:
            ctx.body = ctx.client_body
            if ctx.model is not None and deployment.model != ctx.model:
                ctx.set_model(deployment.model)
        ctx.client_api = self._client_api
        ctx.route = self._route
        ctx.deployment = deployment
        ctx.upstream_path = None
        ctx.first_byte = None
        ctx.last_error = None
        ctx.warning = None  # each attempt's translation says its own
        ctx.usage.clear()
