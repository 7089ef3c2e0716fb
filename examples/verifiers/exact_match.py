#!/usr/bin/env python3
"""An external verifier for rlcs: exact (or numeric) match of the boxed answer.

rlcs starts this script as a long-lived process and speaks JSON lines with it:
one request per line on stdin, one reply per line on stdout, in order.

Request:
    {"id": 7, "domain": "counting", "response": "<think>...</think><answer>...</answer>",
     "answer": "12", "gold": "12", "extra": {}}

    `answer` is the final answer rlcs extracted with the strict GLM format gate
    (`null` when the verifier is configured with `extract = "none"`; then read
    `response` yourself). `extra` is the `extra` table of the verifier's TOML entry.

Reply:
    {"id": 7, "reward": 1.0, "subscores": {"exact": 1.0}, "reason": null, "error": null}

    `reward` in [0, 1] is required unless `error` is set (an error scores 0 and is
    recorded). `correct` defaults to reward >= 1. Print nothing else on stdout
    (use stderr for logs) and flush after every reply.

Wire it into an experiment with one TOML entry, no Rust:

    [verifiers.counting]
    kind = "external"
    command = ["python3", "examples/verifiers/exact_match.py"]
    concurrency = 2
    timeout_s = 5

Options through `extra`: `case_sensitive` (default false), `rel_tol` for numbers
(default 1e-9).
"""
import json
import math
import re
import sys

BOX = re.compile(r"<\|begin_of_box\|>(.*?)<\|end_of_box\|>", re.S)


def final_answer(request):
    """The answer rlcs extracted, else the last box in the raw response."""
    if request.get("answer") is not None:
        return request["answer"]
    boxes = BOX.findall(request.get("response") or "")
    return boxes[-1] if boxes else None


def as_number(text):
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def score(request):
    extra = request.get("extra") or {}
    answer = final_answer(request)
    if answer is None:
        return {"reward": 0.0, "subscores": {"exact": 0.0}, "reason": "no boxed answer"}
    gold = str(request.get("gold", ""))
    a, g = answer.strip(), gold.strip()
    if not extra.get("case_sensitive", False):
        a, g = a.casefold(), g.casefold()
    same = a == g
    if not same:
        x, y = as_number(a), as_number(g)
        if x is not None and y is not None:
            same = math.isclose(x, y, rel_tol=float(extra.get("rel_tol", 1e-9)), abs_tol=0.0)
    reward = 1.0 if same else 0.0
    reason = None if same else "answer %r != gold %r" % (answer[:200], gold[:200])
    return {"reward": reward, "subscores": {"exact": reward}, "reason": reason}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as e:
            # Without an id rlcs cannot match the reply; say why on stderr.
            print("bad request line: %s" % e, file=sys.stderr, flush=True)
            continue
        try:
            reply = score(request)
        except Exception as e:  # a verifier bug scores 0 with its message
            reply = {"error": "%s: %s" % (type(e).__name__, e)}
        reply["id"] = request.get("id")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
