"""Virtual keys: created at run time, with budgets, limits and spend (docs/keys.md)."""
