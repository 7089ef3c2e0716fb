#!/usr/bin/env bash
# Runs `rlcs bench model` and bench/model_eager.py (the same architecture, sizes and
# workload in eager PyTorch, on the same libtorch) one after the other on this
# machine, and prints both with the ratios the model issue sets targets for:
# training tokens/s (rlcs / eager, target >= 1) and generation tokens/s with the KV
# cache (target >= 2). MFU of both uses rlcs's FLOPs per step and matmul peak.
#
#   bench/model.sh                 # CPU
#   bench/model.sh --device cuda   # a CUDA GPU (both sides)
#
# Writes bench/results/model-<date>.json (git-ignored) and prints a Markdown table.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"

DEVICE="cpu"
if [ "${1:-}" = "--device" ]; then DEVICE="${2:?--device needs a value}"; fi
RESULTS="bench/results"
mkdir -p "$RESULTS"
OUT="$RESULTS/model-$(date -u +%Y-%m-%d).json"

cargo build --release --quiet --bin rlcs
echo "bench: rlcs bench model ($DEVICE)" >&2
"$ROOT/target/release/rlcs" bench model --json --device "$DEVICE" > "$RESULTS/model-rlcs.json"
echo "bench: bench/model_eager.py ($DEVICE)" >&2
python bench/model_eager.py --json --device "$DEVICE" > "$RESULTS/model-eager.json"

python - "$RESULTS/model-rlcs.json" "$RESULTS/model-eager.json" "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
e = json.load(open(sys.argv[2]))
mfu_e = r["train_flops_per_step"] / e["train_step_seconds"] / (r["peak_gflops"] * 1e9)
rows = [
    ("parameters", r["parameters"], e["parameters"], None),
    ("training tokens/s", r["train_tokens_per_s"], e["train_tokens_per_s"], ">= 1"),
    ("MFU (rlcs FLOPs/step, rlcs peak)", r["mfu"], mfu_e, None),
    ("generation tokens/s, KV cache", r["gen_tokens_per_s_cache"], e["gen_tokens_per_s_cache"], ">= 2"),
    ("generation tokens/s, KV cache, libtorch operators", r["gen_tokens_per_s_cache_ops"], e["gen_tokens_per_s_cache"], None),
    ("generation tokens/s, no cache", r["gen_tokens_per_s_no_cache"], e["gen_tokens_per_s_no_cache"], None),
    ("fp32 matmul peak GFLOP/s", r["peak_gflops"], e["peak_gflops"], None),
]
print(f"device {r['device']}, {r['threads']} threads, torch {e.get('torch_version', '?')}\n")
print("| measure | rlcs (tch) | eager PyTorch | ratio | target |")
print("|---|---|---|---|---|")
for name, a, b, target in rows:
    ratio = a / b if b else float("nan")
    print(f"| {name} | {a:.4g} | {b:.4g} | {ratio:.2f} | {target or ''} |")
print(f"\npacking efficiency (best fit, 10 000 sequences of 40-600 tokens into 1024): {r['packing_efficiency']:.4f}")
json.dump({"rlcs": r, "eager": e, "eager_mfu": mfu_e}, open(sys.argv[3], "w"), indent=2)
PY
