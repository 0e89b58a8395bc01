#!/usr/bin/env python3
"""Attention microbenchmarks (prefill, its backward, and decode) through torch scaled_dot_product_attention.

Writes a calibration CSV in the format of kernels/README.md. PyTorch picks the fastest SDPA backend it
has (FlashAttention, cuDNN or memory-efficient); the header names which backends were enabled. Calls
are captured in a CUDA graph and timed with CUDA events; K/V buffers rotate past L2 for decode.
attn_prefill_bwd is the backward of the attn_prefill call (torch autograd through SDPA, which runs the
backend's own backward kernel): forward + backward is timed and the forward's median subtracted.
"""
import argparse, statistics, sys

import torch
import torch.nn.functional as F

# (heads, kv_heads, head_dim) per model, public configs: Llama 3 8B/70B/405B, Qwen3-235B-A22B,
# Mixtral 8x7B, Llama 4, DeepSeek-V3 MLA prefill in its naive form (128 heads, q/k 192, v 128: the row's
# n is the value head dim), and weight-absorbed MLA decode emulated as MQA (128 heads over one 576-wide
# K and V; FlashMLA, which reads the latent once as both, is not installed here: mla_decode is priced
# from FlashMLA's published rates, kernels/gpus/h800-sxm.yaml).
# (heads, kv_heads, head_dim, value head_dim)
PREFILL = [(32, 8, 128, 128), (64, 8, 128, 128), (128, 8, 128, 128), (64, 4, 128, 128), (40, 8, 128, 128),
           (128, 128, 192, 128)]
DECODE = [(32, 8, 128), (64, 8, 128), (64, 4, 128), (40, 8, 128), (128, 1, 576)]
# Query tokens per decode request: 1, and 2 for one speculative (MTP / EAGLE) draft, both attending the
# whole cache (the row's seq; empty for 1).
QUERY_TOKENS = [1, 2]


def pct(v, q):
    v = sorted(v)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def time_graph(fn, iters):
    fn()
    torch.cuda.synchronize()
    s = torch.cuda.Event(enable_timing=True)
    e = torch.cuda.Event(enable_timing=True)
    s.record(); fn(); e.record(); torch.cuda.synchronize()
    inner = max(1, min(200, int(0.2 / max(s.elapsed_time(e), 1e-4))))
    g = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        for i in range(inner):
            fn(i)
    for _ in range(3):
        g.replay()
    samples = []
    for _ in range(iters):
        s.record(); g.replay(); e.record(); torch.cuda.synchronize()
        samples.append(s.elapsed_time(e) * 1e3 / inner)
    return pct(samples, 0.1), pct(samples, 0.5), pct(samples, 0.9), iters * inner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--op", choices=["attn_prefill", "attn_prefill_bwd", "attn_decode"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--header", default="")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    iters = 5 if a.quick else 25
    rows = []
    dt = torch.bfloat16
    if a.op in ("attn_prefill", "attn_prefill_bwd"):
        backward = a.op == "attn_prefill_bwd"
        seqs = [128, 512, 2048, 8192] if a.quick else [128, 256, 512, 1024, 2048, 4096, 8192, 16384]
        for h, kvh, d, dv in PREFILL:
            for seq in seqs:
                batch = max(1, 16384 // seq)
                q = torch.randn(batch, h, seq, d, device=dev, dtype=dt, requires_grad=backward)
                k = torch.randn(batch, kvh, seq, d, device=dev, dtype=dt, requires_grad=backward)
                v = torch.randn(batch, kvh, seq, dv, device=dev, dtype=dt, requires_grad=backward)
                fwd = lambda i=0: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=kvh != h)
                if backward:
                    d_out = torch.randn(batch, h, seq, dv, device=dev, dtype=dt)
                    # The same call, then its backward: dQ, dK, dV from dO (reads Q, K, V, O, dO).
                    both = lambda i=0: torch.autograd.grad(fwd(i), (q, k, v), d_out)
                try:
                    if backward:
                        with torch.no_grad():
                            _, f50, _, _ = time_graph(fwd, iters)
                        b10, b50, b90, reps = time_graph(both, iters)
                        p10, p50, p90 = b10 - f50, b50 - f50, b90 - f50
                        if p10 <= 0:
                            raise RuntimeError(f"forward+backward {b10:.1f} us not above the forward's {f50:.1f} us")
                    else:
                        p10, p50, p90, reps = time_graph(fwd, iters)
                except Exception as ex:  # a backend may refuse a shape: report it, keep going
                    print(f"skipped {a.op} h{h} kv{kvh} d{d} dv{dv} seq{seq}: {ex}", file=sys.stderr)
                    continue
                rows.append((a.op, "bf16", dv if dv != d else "", batch, h, kvh, d, seq, "", p50, p10, p90, reps))
                print(f"{a.op} h{h} kv{kvh} d{d} b{batch} s{seq}: {p50:.1f} us", flush=True)
                del q, k, v
    else:
        ctxs = [512, 4096, 32768] if a.quick else [128, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
        batches = [1, 8, 64] if a.quick else [1, 4, 16, 64, 128]
        for (h, kvh, d), s_q in [(shape, s_q) for shape in DECODE for s_q in QUERY_TOKENS]:
            for batch in batches:
                for ctx in ctxs:
                    kv_bytes = 2 * batch * kvh * ctx * d * 2
                    if kv_bytes > 16 << 30:
                        continue
                    copies = max(1, min(16, -(-3 * l2 // kv_bytes)))
                    q = torch.randn(batch, h, s_q, d, device=dev, dtype=dt)
                    ks = [torch.randn(batch, kvh, ctx, d, device=dev, dtype=dt) for _ in range(copies)]
                    vs = [torch.randn(batch, kvh, ctx, d, device=dev, dtype=dt) for _ in range(copies)]
                    fn = lambda i=0: F.scaled_dot_product_attention(q, ks[i % copies], vs[i % copies], enable_gqa=kvh != h)
                    try:
                        p10, p50, p90, reps = time_graph(fn, iters)
                    except Exception as ex:
                        print(f"skipped decode h{h} kv{kvh} d{d} b{batch} q{s_q} c{ctx}: {ex}", file=sys.stderr)
                        continue
                    rows.append(("attn_decode", "bf16", "", batch, h, kvh, d, s_q if s_q > 1 else "", ctx, p50, p10, p90,
                                 reps))
                    print(f"decode h{h} kv{kvh} d{d} b{batch} q{s_q} c{ctx}: {p50:.1f} us", flush=True)
                    del ks, vs
    with open(a.out, "w") as f:
        f.write(f"# gpu: {props.name} ({props.multi_processor_count} SMs, L2 {l2 >> 20} MiB, torch.cuda)\n")
        f.write(f"# cuda: torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}\n")
        if a.header:
            f.write(open(a.header).read())
        bwd_method = ("; attn_prefill_bwd: torch.autograd.grad of the causal prefill call (dQ, dK, dV from a random "
                      "dO), forward + backward captured together, its p10/p50/p90 minus the forward's p50 "
                      "timed the same way" if a.op == "attn_prefill_bwd" else "")
        f.write("# method: torch.nn.functional.scaled_dot_product_attention (backend chosen by PyTorch among flash, "
                "cuDNN, memory-efficient), bf16, causal for prefill; CUDA graph of back-to-back calls timed with CUDA "
                "events; decode K/V rotated past 3x L2, 1 or 2 query tokens per request (seq) over the whole cache; MLA prefill as 128 heads of q/k 192 and v 128; absorbed MLA "
                f"decode emulated as MQA, 128 heads over one 576-wide K and V{bwd_method}; percentiles over {iters} replays\n")
        f.write("# provenance: measured\n")
        f.write("op,dtype,m,n,k,groups,batch,heads,kv_heads,head_dim,seq,context,bytes,time_us_p50,time_us_p10,time_us_p90,reps\n")
        for op, dt_, n, b, h, kvh, d, seq, ctx, p50, p10, p90, reps in rows:
            f.write(f"{op},{dt_},,{n},,,{b},{h},{kvh},{d},{seq},{ctx},,{p50:.4f},{p10:.4f},{p90:.4f},{reps}\n")


if __name__ == "__main__":
    main()
