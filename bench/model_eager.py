"""PyTorch-eager baseline for `rlcs bench model`.

The same GLM-4.1V-style vision-language model as the Rust/libtorch one (ViT with 2D
RoPE, 2x2-merge MLP projector, RMSNorm/SwiGLU decoder with 3D M-RoPE and tied
embeddings), written as plain eager PyTorch (nn.Module, scaled_dot_product_attention,
torch.optim.AdamW; no torch.compile, no TorchScript), and timed on exactly the
same workload:

- a training step: 16 sequences of 128 tokens (a 64x64 image = 16 image tokens,
  100 prompt tokens, 7 response tokens), packed four to a row into 4 rows of 512
  under a block-diagonal causal mask, next-token loss on the 111 non-image targets
  of each sequence, gradient clipping at 1.0 and one AdamW step;
- generation: a group of 8 responses of exactly 128 tokens to a 52-token prompt
  with one 64x64 image, sampled at temperature 1, with and without a KV cache;
- the fp32 matmul peak (1024^3 products) of the machine.

Run it as `.venv/bin/python bench/model_eager.py --json`; bench/model.sh runs it
next to `rlcs bench model` and the two reports are compared in BENCHMARKS.md.
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

EOT, USER, ASSISTANT, BOI, IMAGE, EOI = 1, 2, 3, 10, 11, 12
FIRST_TEXT = 16  # ids below are special tokens
SEQS, PER_ROW, IMAGE_SIDE, GROUP, NEW_TOKENS = 16, 4, 64, 8, 128


def rope_tables(pos, sections, head_dim, theta):
    """cos/sin `[.., head_dim]` for `[.., 3]` positions: pair i rotates by
    pos[axis(i)] * theta^(-2i/head_dim), `sections` pairs per (t, h, w) axis."""
    inv = torch.tensor([theta ** (-2.0 * i / head_dim) for i in range(head_dim // 2)],
                       dtype=torch.float32, device=pos.device)
    axis = torch.tensor([a for a, n in enumerate(sections) for _ in range(n)], device=pos.device)
    angles = pos.float().index_select(-1, axis) * inv
    angles = torch.cat([angles, angles], -1)
    return angles.cos(), angles.sin()


def mrope_sections(head_dim):
    pairs = head_dim // 2
    t = pairs // 4
    h = (pairs - t) // 2
    return [t, h, pairs - t - h]


def rope2d_sections(head_dim):
    pairs = head_dim // 2
    return [0, pairs // 2, pairs - pairs // 2]


def apply_rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Attention(nn.Module):
    def __init__(self, dim, heads, bias):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)

    def forward(self, x, cos, sin, mask=None, causal=False, cache=None):
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q, k, v = apply_rope(qkv[0], cos, sin), apply_rope(qkv[1], cos, sin), qkv[2]
        past = 0
        if cache is not None:  # [k, v] of earlier steps, or empty
            if cache:
                past = cache[0].shape[2]
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        if causal and past > 0 and t > 1:
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
        # A single query after a cache sees everything: no mask needed.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           is_causal=causal and past == 0 and t > 1)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class VisionBlock(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, bias=True)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class DecoderBlock(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1, self.norm2 = nn.RMSNorm(dim, eps=1e-6), nn.RMSNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, bias=False)
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x, cos, sin, mask=None, causal=False, cache=None):
        x = x + self.attn(self.norm1(x), cos, sin, mask, causal, cache)
        gate, up = self.gate_up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class Vlm(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.patch_embed = nn.Linear(3 * a.patch_size ** 2, a.vision_dim)
        self.vision_blocks = nn.ModuleList(
            VisionBlock(a.vision_dim, a.vision_heads, 4 * a.vision_dim) for _ in range(a.vision_layers))
        self.vision_norm = nn.LayerNorm(a.vision_dim)
        self.proj_fc1 = nn.Linear(4 * a.vision_dim, a.dim)
        self.proj_fc2 = nn.Linear(a.dim, a.dim)
        self.embed = nn.Embedding(a.vocab, a.dim)
        self.blocks = nn.ModuleList(
            DecoderBlock(a.dim, a.heads, a.mlp_hidden) for _ in range(a.layers))
        self.norm = nn.RMSNorm(a.dim, eps=1e-6)
        # As the Rust model: biases 0, norm scales 1, matrices N(0, 0.02), output
        # projections scaled by 1/sqrt(2 * layers).
        deep = 0.02 / (2.0 * max(a.layers, a.vision_layers)) ** 0.5
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif p.dim() == 1:
                    p.fill_(1.0)
                else:
                    out = name.endswith(("out.weight", "down.weight", "fc2.weight"))
                    p.normal_(0.0, deep if out else 0.02)

    def encode_images(self, images):
        """uint8 RGB `[n, H, W, 3]` -> projected tokens `[n, H*W / (4*patch^2), dim]`."""
        p, (n, h, w, _) = self.a.patch_size, images.shape
        mh, mw = h // (2 * p), w // (2 * p)
        pixels = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        # [n, 3, mh, 2, p, mw, 2, p] -> [n, mh, mw, 2, 2, 3, p, p]: 2x2 merge order.
        patches = (pixels.view(n, 3, mh, 2, p, mw, 2, p).permute(0, 2, 5, 3, 6, 1, 4, 7)
                   .reshape(n, mh * mw * 4, 3 * p * p))
        pos = torch.tensor([[0, 2 * r + dr, 2 * c + dc] for r in range(mh) for c in range(mw)
                            for dr in range(2) for dc in range(2)], device=images.device)
        hd = self.a.vision_dim // self.a.vision_heads
        cos, sin = rope_tables(pos[None], rope2d_sections(hd), hd, self.a.rope_theta)
        x = self.patch_embed(patches)
        for block in self.vision_blocks:
            x = block(x, cos, sin)
        x = self.vision_norm(x).reshape(n, mh * mw, 4 * self.a.vision_dim)
        return self.proj_fc2(F.gelu(self.proj_fc1(x)))

    def embed_tokens(self, ids, slots, feats):
        """Embeddings of `ids` `[B, T]` with `feats` `[n, dim]` at flat slots `[n]`."""
        x = self.embed(ids).view(-1, self.a.dim).index_copy(0, slots, feats)
        return x.view(*ids.shape, self.a.dim)

    def decode(self, x, pos, mask=None, causal=False, cache=None):
        hd = self.a.dim // self.a.heads
        cos, sin = rope_tables(pos, mrope_sections(hd), hd, self.a.rope_theta)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, causal, None if cache is None else cache[i])
        return self.norm(x)

    def logits(self, h):
        return h @ self.embed.weight.T  # tied


def layout(text, grid):
    """Prompt ids and 3D positions: <|user|><|boi|>image<|eoi|>text<|assistant|>."""
    ids, pos, nxt = [USER, BOI], [[0] * 3, [1] * 3], 2
    for r in range(grid):
        for c in range(grid):
            ids.append(IMAGE)
            pos.append([nxt, nxt + r, nxt + c])
    nxt += grid
    for tok in [EOI] + text + [ASSISTANT]:
        ids.append(tok)
        pos.append([nxt] * 3)
        nxt += 1
    return ids, pos, nxt


def randtext(a, n):
    return torch.randint(FIRST_TEXT, a.vocab, (n,)).tolist()


def train_batch(a, device):
    """The packed training batch: SEQS sequences, PER_ROW to a row."""
    grid = IMAGE_SIDE // (2 * a.patch_size)
    ids, pos, at, target, slots = [], [], [], [], []
    for s in range(SEQS):
        seq, p, nxt = layout(randtext(a, 100), grid)
        tail = randtext(a, 7) + [EOT]
        seq += tail
        p += [[nxt + j] * 3 for j in range(len(tail))]
        off = len(ids)
        slots += range(off + 2, off + 2 + grid * grid)
        # Token t is predicted from the hidden state at t - 1; image tokens are not.
        for t in range(1, len(seq)):
            if seq[t] != IMAGE:
                at.append(off + t - 1)
                target.append(seq[t])
        ids += seq
        pos += p
    n, rows = len(ids) // SEQS, SEQS // PER_ROW
    seg = torch.arange(SEQS).repeat_interleave(n).view(rows, -1)
    causal = torch.ones(PER_ROW * n, PER_ROW * n, dtype=torch.bool).tril()
    mask = ((seg[:, :, None] == seg[:, None, :]) & causal).unsqueeze(1)
    per_seq = len(at) // SEQS
    t = lambda v, **k: torch.tensor(v, **k).to(device)
    return dict(
        images=torch.randint(0, 256, (SEQS, IMAGE_SIDE, IMAGE_SIDE, 3), dtype=torch.uint8).to(device),
        ids=t(ids).view(rows, -1), pos=t(pos).view(rows, -1, 3), mask=mask.to(device),
        slots=t(slots), at=t(at), target=t(target),
        weight=torch.full((len(at),), 1.0 / SEQS / per_seq, device=device))


def train_step(model, opt, b):
    feats = model.encode_images(b["images"])
    x = model.embed_tokens(b["ids"], b["slots"], feats.reshape(-1, model.a.dim))
    h = model.decode(x, b["pos"], mask=b["mask"]).reshape(-1, model.a.dim)
    nll = F.cross_entropy(model.logits(h.index_select(0, b["at"])), b["target"], reduction="none")
    loss = (nll * b["weight"]).sum()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    return loss.item()


@torch.inference_mode()
def generate(model, prompt, use_cache):
    """GROUP responses of NEW_TOKENS sampled tokens (temperature 1, full vocabulary)."""
    ids, pos, image, slots, nxt = prompt
    dev = ids.device
    prompt_x = model.embed_tokens(ids, slots, model.encode_images(image)[0])
    cache = [[] for _ in model.blocks] if use_cache else None
    h = model.decode(prompt_x, pos, causal=True, cache=cache)
    last = model.logits(h[:, -1]).repeat(GROUP, 1)
    for layer in cache or []:
        layer[:] = [t.repeat(GROUP, 1, 1, 1) for t in layer]
    out = torch.empty(GROUP, NEW_TOKENS, dtype=torch.long)
    for step in range(NEW_TOKENS):
        probs = last.log_softmax(-1).cpu().exp()
        out[:, step] = torch.multinomial(probs, 1)[:, 0]
        if step == NEW_TOKENS - 1:
            break
        if use_cache:
            x = model.embed(out[:, step:step + 1].to(dev))
            h = model.decode(x, torch.full((GROUP, 1, 3), nxt + step, device=dev),
                             causal=True, cache=cache)
            last = model.logits(h[:, 0])
        else:  # recompute the prompt and every token so far
            k = step + 1
            x = torch.cat([prompt_x.expand(GROUP, -1, -1), model.embed(out[:, :k].to(dev))], 1)
            gen_pos = (nxt + torch.arange(k, device=dev))[None, :, None].expand(1, k, 3)
            all_pos = torch.cat([pos, gen_pos], 1).expand(GROUP, -1, -1)
            last = model.logits(model.decode(x, all_pos, causal=True)[:, -1])
    return out


def gen_prompt(a, device):
    grid = IMAGE_SIDE // (2 * a.patch_size)
    ids, pos, nxt = layout(randtext(a, 32), grid)
    image = torch.randint(0, 256, (1, IMAGE_SIDE, IMAGE_SIDE, 3), dtype=torch.uint8)
    return (torch.tensor([ids], device=device), torch.tensor([pos], device=device),
            image.to(device), torch.arange(2, 2 + grid * grid, device=device), nxt)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, n=1024):
    a = torch.full((n, n), 0.5, device=device)
    b = torch.full((n, n), 0.25, device=device)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("vocab", 272), ("patch-size", 8), ("vision-dim", 128),
                          ("vision-layers", 2), ("vision-heads", 4), ("dim", 256), ("layers", 4),
                          ("heads", 4), ("mlp-hidden", 704), ("train-steps", 10),
                          ("gen-runs", 3), ("seed", 0)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--rope-theta", type=float, default=1e4)
    ap.add_argument("--threads", type=int, help="intra-op threads (default: torch's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)

    model = Vlm(a).to(device)
    # With the defaults: patch_embed 24,704; vision blocks 2 x 198,272 (norms 2 x 256,
    # qkv 49,536, out 16,512, fc1 66,048, fc2 65,664); vision norm 256; projector
    # 131,328 + 65,792; embed 69,632; decoder blocks 4 x 803,328 (norms 2 x 256, qkv
    # 196,608, out 65,536, gate_up 360,448, down 180,224); final norm 256: 3,901,824.
    params = sum(p.numel() for p in model.parameters())
    matrices = [p for p in model.parameters() if p.dim() > 1]
    others = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.01},
                             {"params": others, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8, fused=False)

    batch = train_batch(a, device)
    slots = batch["ids"].numel()
    for _ in range(2):
        train_step(model, opt, batch)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(a.train_steps):
        train_step(model, opt, batch)
    sync(device)
    step = (time.perf_counter() - t0) / a.train_steps
    peak = matmul_peak(device)

    prompt = gen_prompt(a, device)

    def gen(use_cache, runs):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(runs):
            generate(model, prompt, use_cache)
        sync(device)
        return GROUP * NEW_TOKENS * runs / (time.perf_counter() - t0)

    gen(True, 1)
    cache = gen(True, a.gen_runs)
    no_cache = gen(False, 1)

    report = {
        "implementation": "pytorch-eager", "torch_version": torch.__version__,
        "device": str(device), "threads": torch.get_num_threads(), "parameters": params,
        "train_step_seconds": step, "train_tokens_per_s": slots / step,
        "gen_tokens_per_s_cache": cache, "gen_tokens_per_s_no_cache": no_cache,
        "peak_gflops": peak,
    }
    if a.json:
        print(json.dumps(report))
    else:
        print(f"pytorch-eager (torch {torch.__version__}, {device}, "
              f"{report['threads']} threads), {params:,} parameters")
        print(f"  training: {step:.4f} s/step, {slots / step:,.0f} tokens/s")
        print(f"  generation: {cache:,.1f} tokens/s with KV cache, "
              f"{no_cache:,.1f} without")
        print(f"  fp32 matmul peak: {peak:,.1f} GFLOP/s")


if __name__ == "__main__":
    main()
