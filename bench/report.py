"""The tables and verdicts of a finished run again, from its `--json` file (for the docs, or after the fact):

    python -m bench.report bench/results/all.json

Prints what `bench/run.py` prints at the end of a run: the side-by-side summary (CPU per request, req/s, p50
added to the upstream direct, the paced streams per event), the special scenarios' tables and the issue's
targets, all from the medians stored in the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/report.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import SPECIAL, Measurement, Special, special_table, special_verdicts, summary, table, verdicts
from bench.targets import SCENARIOS


def report(payload: dict[str, object], *, full: bool = False) -> str:
    medians = [Measurement(**m) for m in payload.get("medians", [])]  # type: ignore[attr-defined]
    specials = [Special(**sp) for sp in payload.get("special_medians", [])]  # type: ignore[attr-defined]
    med = {m.key: m for m in medians}
    special_med = {(sp.scenario, sp.target): sp for sp in specials}
    targets = list(dict.fromkeys(m.target for m in medians))
    scenarios = [s for s in SCENARIOS if any(m.scenario == s.name for m in medians)]
    concurrency = sorted({m.concurrency for m in medians})
    blocks = []
    if scenarios:
        if full:
            blocks.append(table(med, scenarios, targets, concurrency))
        blocks.append(summary(med, scenarios, targets, concurrency))
    for name in SPECIAL:
        if any(sp.scenario == name for sp in specials):
            blocks.append(f"{name}\n\n{special_table(special_med, name)}")
    lines = (verdicts(med) if medians else []) + special_verdicts(special_med)
    if lines:
        blocks.append("Targets:\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, help="a file written by bench/run.py --json")
    parser.add_argument("--full", action="store_true", help="also the full table (every target's columns)")
    args = parser.parse_args(argv)
    print(report(json.loads(args.json.read_text()), full=args.full))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
