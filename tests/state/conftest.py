from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.dbservers import PostgresServer, RedisServer, postgres_server, redis_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py and asyncpg run on asyncio


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server
