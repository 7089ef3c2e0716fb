#!/usr/bin/env python3
"""Runs Hugging Face math-verify on a bench cases file; prints one JSON object.

    bench/.venv/bin/python bench/math_verify_run.py bench/cases/math_verify_suite.jsonl

For every case: `verify(parse(gold), parse(response))` with math-verify's DEFAULT
configuration (LaTeX + expression extraction, float_rounding=6, strict=True, its
signal-based 5 s timeouts), single-threaded, in this process. The per-case fields
`domain`, `extract` and `tolerance` are not expressible in math-verify and are ignored.
An exception counts as got=false.

Timing: one untimed pass records the verdicts (and warms up imports and compiled
regexes); then whole passes over the set are timed until at least --min-seconds
(default 3) have elapsed. Before each pass math-verify's small LRU caches of parse
results are cleared so that no pass re-uses the previous pass's parses.
verifications_per_sec = cases * timed passes / timed seconds.
"""

import argparse
import json
import sys
import time

import math_verify
from math_verify import parse, verify
from math_verify import parser as mv_parser

try:
    from importlib.metadata import version as _dist_version

    VERSION = _dist_version("math-verify")
except Exception:  # noqa: BLE001
    VERSION = getattr(math_verify, "__version__", None)


def clear_parse_caches():
    for name in ("parse_latex_cached", "parse_expr_cached", "extract_latex"):
        fn = getattr(mv_parser, name, None)
        if fn is not None and hasattr(fn, "cache_clear"):
            fn.cache_clear()


def run_one(case):
    try:
        return bool(verify(parse(case["gold"]), parse(case["response"])))
    except Exception:  # noqa: BLE001 - any failure counts as "not verified"
        return False


def source_key(source):
    """by_source key: the source up to `::` (e.g. `math-verify tests/test_all.py`)."""
    return source.split("::", 1)[0]


def load(path):
    cases = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                cases.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: bad JSON: {e}")
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", help="JSONL cases file")
    ap.add_argument("--min-seconds", type=float, default=3.0)
    args = ap.parse_args()

    cases = load(args.cases)
    if not cases:
        sys.exit(f"{args.cases}: no cases")

    # Verdict pass (untimed).
    clear_parse_caches()
    got = [run_one(c) for c in cases]

    # Timed passes.
    passes, elapsed = 0, 0.0
    while elapsed < args.min_seconds:
        clear_parse_caches()
        t0 = time.perf_counter()
        for c in cases:
            run_one(c)
        elapsed += time.perf_counter() - t0
        passes += 1

    by_source = {}
    failures = []
    correct = 0
    for c, g in zip(cases, got):
        ok = g == bool(c["expected"])
        correct += ok
        s = by_source.setdefault(source_key(c.get("source", "")), {"cases": 0, "correct": 0})
        s["cases"] += 1
        s["correct"] += ok
        if not ok:
            failures.append({"id": c["id"], "expected": bool(c["expected"]), "got": g})

    n = len(cases)
    out = {
        "tool": "math-verify",
        "version": VERSION or "unknown",
        "cases": n,
        "correct": correct,
        "accuracy": correct / n,
        "verifications_per_sec": n * passes / elapsed,
        "seconds": elapsed,
        "passes": passes,
        "threads": 1,
        "by_source": by_source,
        "failures": failures,
    }
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
