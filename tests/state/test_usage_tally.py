"""UsageTally: the one home of counting usage in this process (MemoryState's record, RedisState's pending adds)."""

from __future__ import annotations

from asgi_llmroute.state import UsageRow
from asgi_llmroute.state.memory import UsageTally, utc_day


def test_counts_take_and_restore() -> None:
    tally = UsageTally()
    tally.add("t", "m", {"input_tokens": 3, "output_tokens": 4})
    tally.add("t", "m", {"input_tokens": 1})
    tally.add("a", "m", {})
    today = utc_day()
    assert tally.rows(today) == [UsageRow(today, "a", "m", 1, 0, 0), UsageRow(today, "t", "m", 2, 4, 4)]
    assert tally.rows("1999-01-01") == []
    taken = tally.take()
    assert tally.rows(today) == [] and taken[(today, "t", "m")] == [2, 4, 4]
    tally.add("t", "m", {"output_tokens": 1})
    tally.restore(taken)  # a failed write: the counts are added to what came since
    assert tally.rows(today) == [UsageRow(today, "a", "m", 1, 0, 0), UsageRow(today, "t", "m", 3, 4, 5)]
