#!/usr/bin/env python3
"""Renders bench results as Markdown.

    python3 bench/report.py CASES_FILE MV_JSON RLCS_JSON [CASES_FILE MV_JSON RLCS_JSON ...]

Each JSON is one tool's output for one cases file (schema in bench/README.md); a path
that is missing or not valid JSON is shown as a failed run. Prints the Markdown to
stdout: the main table (cases file | tool | cases | accuracy | verifications/s | ratio),
then accuracy by source, then the cases the two tools judge differently.
"""

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        return subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"


def fmt_acc(r):
    return f"{100 * r['accuracy']:.1f}% ({r['correct']}/{r['cases']})"


def fmt_vps(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def main(argv):
    if len(argv) % 3 != 0 or not argv:
        sys.exit(__doc__)
    groups = [argv[i : i + 3] for i in range(0, len(argv), 3)]

    out = []
    p = out.append
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    p("# Verifier benchmark: rlcs vs math-verify")
    p("")
    p(f"- date: {now}")
    p(f"- machine: {os.cpu_count()} logical CPUs (nproc {os.cpu_count()}), {cpu_model()}")
    p(f"- python: {platform.python_version()}; both tools single-threaded")
    p("")
    p("| cases file | tool | cases | accuracy | verifications/s | ratio (rlcs/math-verify) |")
    p("|---|---|---:|---:|---:|---:|")
    details = []
    for cases, mv_path, rl_path in groups:
        name = os.path.basename(cases)
        mv, rl = load(mv_path), load(rl_path)
        for label, r in (("math-verify", mv), ("rlcs", rl)):
            if r is None:
                p(f"| {name} | {label} | – | run failed | – | – |")
                continue
            tool = f"{r.get('tool', label)} {r.get('version', '')}".strip()
            ratio = "1.00"
            if label == "rlcs":
                ratio = (
                    f"{r['verifications_per_sec'] / mv['verifications_per_sec']:.1f}×"
                    if mv and mv.get("verifications_per_sec")
                    else "–"
                )
            p(
                f"| {name} | {tool} | {r['cases']} | {fmt_acc(r)} | "
                f"{fmt_vps(r['verifications_per_sec'])} | {ratio} |"
            )
        details.append((cases, name, mv, rl))

    for cases, name, mv, rl in details:
        p("")
        p(f"## {name}: accuracy by source")
        p("")
        p("| source | cases | math-verify | rlcs |")
        p("|---|---:|---:|---:|")
        srcs = {}
        for r in (mv, rl):
            for s, v in ((r or {}).get("by_source") or {}).items():
                srcs.setdefault(s, v["cases"])
        for s, n in srcs.items():
            cells = []
            for r in (mv, rl):
                v = ((r or {}).get("by_source") or {}).get(s)
                cells.append(f"{v['correct']}/{v['cases']}" if v else "–")
            p(f"| {s} | {n} | {cells[0]} | {cells[1]} |")

        # Cases where a tool misses the expectation, side by side.
        case_rows = {}
        try:
            with open(cases, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        c = json.loads(line)
                        case_rows[c["id"]] = c
        except (OSError, ValueError):
            pass
        miss = {}
        for label, r in (("math-verify", mv), ("rlcs", rl)):
            for fl in (r or {}).get("failures") or []:
                miss.setdefault(fl["id"], set()).add(label)
        if miss:
            p("")
            p(f"Cases missed ({len(miss)}): ✗ = the tool's result differs from `expected`.")
            p("")
            p("| id | domain | gold | response | expected | math-verify | rlcs |")
            p("|---|---|---|---|---|---|---|")
            for cid in sorted(miss):
                c = case_rows.get(cid, {})

                def cell(s, n=60):
                    s = str(s).replace("|", "\\|").replace("\n", "⏎")
                    return "`" + (s if len(s) <= n else s[: n - 1] + "…") + "`"

                mark = lambda t: "✗" if t in miss[cid] else ("✓" if (mv if t == "math-verify" else rl) else "–")  # noqa: E731
                p(
                    f"| {cid} | {c.get('domain', '')} | {cell(c.get('gold', ''))} | "
                    f"{cell(c.get('response', ''))} | {c.get('expected', '')} | "
                    f"{mark('math-verify')} | {mark('rlcs')} |"
                )
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
