#!/usr/bin/env python3
"""Writes bench/cases/rlcs_cases.jsonl: our grading conventions as bench cases.

    python3 bench/tools/make_rlcs_cases.py > bench/cases/rlcs_cases.jsonl

Each row is (domain, gold, boxed answer, expected[, extra fields]). The response is
`The answer is \\boxed{<answer>}.` so both rlcs (extract=boxed) and math-verify (its
default LaTeX extraction prefers the last \\boxed{}) see the same final answer.
Math and physics golds other than plain numbers are written as `$<gold>$`: math-verify only parses LaTeX golds
inside math delimiters (or \\boxed{}), and our normaliser strips them.
Expectations are OUR conventions; math-verify is expected to disagree on some of them.
"""

import json
import re
import sys

T, F = True, False

# (group, domain, gold, answer, expected, extra)
ROWS = [
    # --- fractions, decimals, percent --------------------------------------------------
    ("fractions", "math", r"\frac{1}{3}", r"0.333", F, None),
    ("fractions", "math", r"1/3", r"0.333", T, {"tolerance": {"rel": 0.01}}),
    ("fractions", "math", r"1/3", r"0.3", F, {"tolerance": {"rel": 0.01}}),
    ("fractions", "math", r"\frac{1}{3}", r"\frac{1}{4}", F, None),
    ("fractions", "math", r"0.25", r"25\%", T, None),
    ("fractions", "math", r"\frac12", r"50\%", T, None),
    ("fractions", "math", r"0.25", r"2.5\%", F, None),
    ("fractions", "math", r"5/2", r"2\frac12", T, None),
    ("fractions", "math", r"5/2", r"2\frac{1}{2}", T, None),
    ("fractions", "math", r"5/2", r"2.5", T, None),
    ("fractions", "math", r"\frac34", r"\frac{6}{8}", T, None),
    ("fractions", "math", r"0.75", r"\frac{6}{8}", T, None),
    ("fractions", "math", r"\frac34", r"\frac{6}{9}", F, None),
    ("fractions", "math", r"-\frac{3}{4}", r"-0.75", T, None),
    ("fractions", "math", r"-\frac{3}{4}", r"0.75", F, None),
    ("fractions", "math", r"0.5", r".5", T, None),
    ("fractions", "math", r"1/2", r"\dfrac{1}{2}", T, None),
    ("fractions", "math", r"7", r"7.0", T, None),
    ("fractions", "math", r"7", r"7.01", F, None),
    ("fractions", "math", r"100", r"99.99", F, None),
    ("fractions", "math", r"-5", r"5", F, None),
    # --- thousands separators, scientific notation, products ---------------------------
    ("numbers", "math", r"1000", r"1{,}000", T, None),
    ("numbers", "math", r"1000", r"1,000", T, None),
    ("numbers", "math", r"1000000", r"1{,}000{,}000", T, None),
    ("numbers", "math", r"1000", r"1{,}001", F, None),
    ("numbers", "math", r"6.02e23", r"6.02\times10^{23}", T, None),
    ("numbers", "math", r"6.02e23", r"6.02 \cdot 10^{23}", T, None),
    ("numbers", "math", r"6.02e23", r"6.02\times10^{22}", F, None),
    ("numbers", "math", r"9.1e-30", r"9.1e-31", F, None),
    ("numbers", "math", r"9.1e-31", r"9.1e-30", F, None),
    ("numbers", "math", r"9.1e-31", r"9.1\times10^{-31}", T, None),
    ("numbers", "math", r"12", r"3\cdot4", T, None),
    ("numbers", "math", r"12", r"3\times 4", T, None),
    ("numbers", "math", r"12", r"3\cdot5", F, None),
    ("numbers", "math", r"1024", r"2^{10}", T, None),
    # --- radicals, constants -------------------------------------------------------------
    ("radicals", "math", r"2\sqrt2", r"\sqrt{8}", T, None),
    ("radicals", "math", r"2\sqrt{2}", r"\sqrt{6}", F, None),
    ("radicals", "math", r"\frac{\sqrt{2}}{2}", r"\sqrt{2}/2", T, None),
    ("radicals", "math", r"\frac{\sqrt{3}}{2}", r"\frac{1}{2}\sqrt{3}", T, None),
    ("radicals", "math", r"\pi", r"3.14", F, None),
    ("radicals", "math", r"\frac{\pi}{2}", r"\pi/2", T, None),
    ("radicals", "math", r"2\pi", r"2 \pi", T, None),
    ("radicals", "math", r"2\pi", r"\pi", F, None),
    # --- intervals, sets, tuples ---------------------------------------------------------
    ("sets", "math", r"(2,\infty)", r"x>2", T, None),
    ("sets", "math", r"(2,\infty)", r"x\geq 2", F, None),
    ("sets", "math", r"(2,\infty)", r"[2,\infty)", F, None),
    ("sets", "math", r"(2,\infty)", r"(-\infty,2)", F, None),
    ("sets", "math", r"\{2,1\}", r"\{1,2\}", T, None),
    ("sets", "math", r"\{1,2\}", r"\{1,2,3\}", F, None),
    ("sets", "math", r"(2,1)", r"(1,2)", F, None),
    ("sets", "math", r"(1,2)", r"(1, 2)", T, None),
    # --- equations, expressions ----------------------------------------------------------
    ("equations", "math", r"x+y=2", r"2x+2y=4", T, None),
    ("equations", "math", r"x+y=2", r"2x+2y=5", F, None),
    ("equations", "math", r"3", r"x=3", T, None),
    ("equations", "math", r"3", r"x=4", F, None),
    ("equations", "math", r"(x+1)^2", r"x^2+2x+1", T, None),
    ("equations", "math", r"(x+1)^2", r"x^2+x+1", F, None),
    # --- physics: units ------------------------------------------------------------------
    ("units", "physics", r"5 m", r"5 cm", F, None),
    ("units", "physics", r"5 cm", r"0.05 m", T, None),
    ("units", "physics", r"5 m", r"500 cm", T, None),
    ("units", "physics", r"2 kg", r"2000 g", T, None),
    ("units", "physics", r"2 kg", r"2 g", F, None),
    ("units", "physics", r"1.5 km", r"1500 m", T, None),
    ("units", "physics", r"1.5 km", r"1500 cm", F, None),
    ("units", "physics", r"100 J", r"0.1 kJ", T, None),
    ("units", "physics", r"10 s", r"10 ms", F, None),
    ("units", "physics", r"20 N", r"20\,\mathrm{N}", T, None),
    ("units", "physics", r"9.1e-30", r"9.1e-31", F, None),
    ("units", "physics", r"9.1\times10^{-31}\,\text{kg}", r"9.1e-31 kg", T, None),
    ("units", "physics", r"9.1\times10^{-31}\,\text{kg}", r"9.1e-30 kg", F, None),
    ("units", "physics", r"3\times10^{8}\,\text{m/s}", r"3.0\times10^8 \text{ m/s}", T, None),
    # --- chart reading: relative tolerance 2.5e-2, years exact ----------------------------
    ("chart", "chart", r"100", r"101", T, None),
    ("chart", "chart", r"100", r"102", T, None),
    ("chart", "chart", r"100", r"97.6", T, None),
    ("chart", "chart", r"100", r"103", F, None),
    ("chart", "chart", r"100", r"90", F, None),
    ("chart", "chart", r"0.5", r"0.51", T, None),
    ("chart", "chart", r"12.3", r"12.5", T, None),
    ("chart", "chart", r"2020", r"2019", F, None),
    ("chart", "chart", r"2020", r"2020", T, None),
    ("chart", "chart", r"1990", r"1991", F, None),
    ("chart", "chart", r"France", r"Germany", F, None),
    # --- multiple choice -----------------------------------------------------------------
    ("choice", "choice", r"B", r"B", T, None),
    ("choice", "choice", r"B", r"(B)", T, None),
    ("choice", "choice", r"B", r"B)", T, None),
    ("choice", "choice", r"B", r"\text{B}", T, None),
    ("choice", "choice", r"B", r"Option B", T, None),
    ("choice", "choice", r"B", r"B. 42 apples", T, None),
    ("choice", "choice", r"B", r"A", F, None),
    ("choice", "choice", r"B", r"(A)", F, None),
    ("choice", "choice", r"B", r"Option A", F, None),
    ("choice", "choice", r"B", r"A. 42 apples", F, None),
    ("choice", "choice", r"(C)", r"C", T, None),
    # --- counting ------------------------------------------------------------------------
    ("counting", "counting", r"7", r"7", T, None),
    ("counting", "counting", r"7", r"a number between 0 and 10", F, None),
    ("counting", "counting", r"7", r"6", F, None),
    ("counting", "counting", r"7", r"8", F, None),
    ("counting", "counting", r"12", r"12", T, None),
]


PLAIN_NUMBER = re.compile(r"-?\d*\.?\d+(?:e-?\d+)?")


def wrap_gold(domain, gold):
    """Math/physics golds other than plain numbers are written as `$<gold>$`."""
    if domain in ("math", "physics") and not PLAIN_NUMBER.fullmatch(gold):
        return f"${gold}$"
    return gold


def main():
    for i, (group, domain, gold, ans, expected, extra) in enumerate(ROWS, 1):
        case = {
            "id": f"rlcs-{i:04d}",
            "source": f"rlcs conventions/{group}",
            "domain": domain,
            "gold": wrap_gold(domain, gold),
            "response": f"The answer is \\boxed{{{ans}}}.",
            "expected": expected,
            "extract": "boxed",
        }
        if extra:
            case.update(extra)
        sys.stdout.write(json.dumps(case, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
