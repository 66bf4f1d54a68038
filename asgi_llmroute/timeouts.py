"""Upstream timeouts: a value type the configuration produces and the forwarder applies."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["UpstreamTimeouts"]


class UpstreamTimeouts(NamedTuple):
    """One provider's upstream timeouts, in seconds.

    ``connect``: to open a connection; ``first_byte``: from sending the request to the first body
    byte (time to first token), None for no limit of its own; ``idle``: between two reads; ``total``:
    the whole exchange of a non-stream response (and of a stream until its first byte);
    ``stream_total``: the whole of an event stream, None (the default) for no total deadline, so that
    a long stream is cut only when it stalls for ``idle`` seconds.
    """

    connect: float = 30.0
    first_byte: float | None = None
    idle: float = 600.0
    total: float = 600.0
    stream_total: float | None = None

    @classmethod
    def from_total(cls, total: float) -> UpstreamTimeouts:
        return cls(connect=min(total, 30.0), idle=total, total=total)
