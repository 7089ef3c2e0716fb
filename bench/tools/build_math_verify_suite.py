#!/usr/bin/env python3
"""Rebuild bench/cases/math_verify_suite.jsonl from math-verify 0.9.0's own tests.

Usage (with the bench venv, which has math-verify installed):

    pip download math-verify==0.9.0 --no-binary :all: --no-deps -d /tmp/mv
    tar xzf /tmp/mv/math_verify-0.9.0.tar.gz -C /tmp/mv
    bench/.venv/bin/python bench/tools/build_math_verify_suite.py /tmp/mv/math_verify-0.9.0 \
        > bench/cases/math_verify_suite.jsonl 2> /tmp/mv/build-report.txt

How rows are selected (the report on stderr lists every decision):

* Every `@pytest.mark.parametrize` row of a test that goes through the tests'
  `compare_strings(gold, pred, ...)` helper, or (test_yujianll) through plain
  `verify(parse(gold), parse(pred))`, is a candidate: (gold, pred, expected).
* Rows whose extra parameters are not math-verify's defaults are skipped:
  `precision != 6` (float_rounding), `strict=False`, `allow_set_relation_comp=True`,
  and every test whose helper call passes a non-default `precision`.
* The helper always parses with non-default extraction targets
  (`LatexExtractionConfig(boxed_match_priority=0)` and/or `ExprExtractionConfig()`,
  sometimes latex-only or expr-only).  The bench runs math-verify with its default
  `parse()` / `verify()`.  A row is skipped when the test's declared expectation is
  reached ONLY with the harness config (harness result == expected != default result);
  otherwise it is kept.  Kept rows where math-verify (harness config) disagrees with the
  declared expectation are the suite's own failures ("xfail") and are listed.
* Tests that do not compare a (gold, pred) pair (string-extraction configs, timeouts,
  raise_on_error, direct parser/sympy_expr_eq calls, config tests) are skipped whole.
"""

import importlib
import json
import sys
import types

# --- a stand-in for pytest that only records parametrize rows -------------------------
fake = types.ModuleType("pytest")


class _Mark:
    def parametrize(self, names, rows, **_kw):
        def deco(fn):
            fn.__dict__.setdefault("_rows", []).append((names, rows))
            return fn

        return deco

    def __getattr__(self, _name):  # e.g. pytest.mark.skip
        return lambda *a, **k: (lambda fn: fn)


fake.mark = _Mark()
fake.raises = None
sys.modules["pytest"] = fake

from math_verify import (  # noqa: E402
    ExprExtractionConfig,
    LatexExtractionConfig,
    parse,
    verify,
)

# test function -> helper call: match_types and fixed kwargs (read from the test sources)
HARNESS = {
    ("test_all", "test_number_extraction"): dict(match_types=["expr"]),
    ("test_all", "test_simple_fraction_notation"): dict(match_types=["latex", "expr"]),
    ("test_all", "test_sets_handling"): dict(match_types=["latex", "expr"]),
    ("test_all", "test_latex_notation"): dict(match_types=["latex"]),
    ("test_all", "test_percent_notation"): dict(match_types=["latex", "expr"]),
    ("test_all", "test_latex_notation_math"): dict(match_types=["latex"]),
    ("test_all", "test_relations_math"): dict(match_types=["latex"]),
    ("test_all", "test_matrix_extraction"): dict(match_types=["latex"]),
    ("test_all", "test_complex_math_expressions"): dict(match_types=["latex", "expr"]),
    ("test_all", "test_math_extraction_edge_cases"): dict(match_types=["latex", "expr"]),
    ("test_all", "test_math_extraction_additional_cases"): dict(match_types=["latex", "expr"]),
    ("test_all", "test_set_rel_assymetry"): dict(match_types=["latex"]),
    ("test_all", "test_float_precision"): dict(match_types=["latex", "expr"], precision=5),
    ("test_all", "test_sqrt_precision"): dict(match_types=["latex", "expr"], precision=5),
    ("test_all", "test_symbols"): dict(match_types=["latex", "expr"], precision=5),
    ("test_boxed", "test_boxed"): dict(match_types=["latex", "expr"]),
    ("test_numina_cases", "test_numina_cases"): dict(match_types=["latex", "expr"]),
    ("test_open_thoughts", "test_open_thoughts"): dict(match_types=["latex", "expr"]),
    ("test_strict", "test_strict_variable_comparison"): dict(match_types=["latex", "expr"]),
    ("test_yujianll", "test_string_extraction"): "default",
}

WHOLE_SKIPS = {
    "test_all.py::test_precision": "direct sympy_expr_eq calls with float_rounding 3/4 and one compare_strings with precision=4",
    "test_string_extraction.py::test_string_extraction": "StringExtractionConfig (multiple-choice letter extraction config), compares parse() output, not verify()",
    "test_configs.py::*": "tests of non-default extraction/normalization configs",
    "test_gamma_func.py::*": "direct latex2sympy parser calls (no gold/pred pair)",
    "test_timeout.py::*": "mocked slow parse/verify to test timeouts",
    "test_raise_on_error.py::*": "raise_on_error behaviour, no gold/pred pair",
}


def harness_result(gold, pred, cfg):
    targets = []
    for m in cfg["match_types"]:
        targets.append(
            LatexExtractionConfig(boxed_match_priority=0) if m == "latex" else ExprExtractionConfig()
        )
    return bool(
        verify(
            parse(gold, targets),
            parse(pred, targets),
            float_rounding=cfg.get("precision", 6),
            strict=cfg.get("strict", True),
            allow_set_relation_comp=cfg.get("allow_set_relation_comp", False),
        )
    )


def default_result(gold, pred):
    return bool(verify(parse(gold), parse(pred)))


def main():
    root = sys.argv[1]
    sys.path.insert(0, root)
    out, report = [], []
    skipped = {}
    xfail = []

    def skip(reason, src, row):
        skipped.setdefault(reason, []).append((src, row))

    n = 0
    for (modname, fname), cfg in HARNESS.items():
        mod = importlib.import_module(f"tests.{modname}")
        fn = getattr(mod, fname)
        src = f"math-verify tests/{modname}.py::{fname}"
        for names, rows in fn.__dict__.get("_rows", []):
            names = [s.strip() for s in names.split(",")]
            for row in rows:
                r = dict(zip(names, row))
                gold, pred = r["gold"], r["pred"]
                expected = bool(r.get("expected", r.get("result")))
                if cfg == "default":
                    rcfg = None
                else:
                    rcfg = dict(cfg)
                    for k in ("precision", "strict", "allow_set_relation_comp"):
                        if k in r:
                            rcfg[k] = r[k]
                    if rcfg.get("precision", 6) != 6:
                        skip(f"precision={rcfg['precision']} (float_rounding != default 6)", src, row)
                        continue
                    if rcfg.get("strict", True) is not True:
                        skip("strict=False", src, row)
                        continue
                    if rcfg.get("allow_set_relation_comp", False):
                        skip("allow_set_relation_comp=True", src, row)
                        continue
                d = default_result(gold, pred)
                h = d if rcfg is None else harness_result(gold, pred, rcfg)
                if h == expected and d != expected:
                    skip(
                        "expectation reached only with the harness extraction config "
                        f"(match_types={rcfg['match_types']}, boxed_match_priority=0); default parse() disagrees",
                        src,
                        row,
                    )
                    continue
                n += 1
                case = {
                    "id": f"mv-{n:04d}",
                    "source": src,
                    "domain": "math",
                    "gold": gold,
                    "response": pred,
                    "expected": expected,
                    "extract": "lenient",
                }
                if h != expected:
                    xfail.append((case["id"], src, gold, pred, expected, h))
                out.append(case)

    for c in out:
        sys.stdout.write(json.dumps(c, ensure_ascii=False) + "\n")

    p = report.append
    p(f"kept {len(out)} cases")
    total_skipped = sum(len(v) for v in skipped.values())
    p(f"skipped {total_skipped} parametrized rows:")
    for reason, rows in skipped.items():
        p(f"  {len(rows):4d}  {reason}")
        for src, row in rows:
            p(f"        {src}  {row!r}")
    p("whole tests skipped (not parametrized gold/pred rows):")
    for k, v in WHOLE_SKIPS.items():
        p(f"  {k}: {v}")
    p(f"xfail: {len(xfail)} kept rows where math-verify 0.9.0 disagrees with its own test expectation:")
    for x in xfail:
        p(f"  {x[0]}  {x[1]}  gold={x[2]!r} pred={x[3]!r} expected={x[4]} got={x[5]}")
    sys.stderr.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
