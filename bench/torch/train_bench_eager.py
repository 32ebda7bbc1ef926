"""PyTorch eager baseline for bench/torch/train_bench.cc: the same BitNet student (tests/tools/bitnet_ref.py,
detach-trick quantizers), batch, AdamW and bf16 autocast; prints one JSON object.

usage: train_bench_eager.py --d 256 --layers 6 --heads 8 --kv-heads 8 --ffn 704 --vocab 8000 --seq 256 --batch 16
                            --steps 5 --warmup 2 --threads 2 --mode a8
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "tools"))
import bitnet_ref as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("d", 256), ("layers", 6), ("heads", 8), ("kv-heads", 8), ("ffn", 704), ("vocab", 8000),
                          ("seq", 256), ("batch", 16), ("steps", 5), ("warmup", 2), ("threads", 2)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--mode", default="a8")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = ref.Transformer(a.vocab, a.d, a.layers, a.heads, a.kv_heads, a.ffn, a.seq, tie=True, mode=a.mode)
    decay = [p for p in m.parameters() if p.dim() >= 2]
    no_decay = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq + 1))
    inp, tgt = ids[:, :-1], ids[:, 1:]
    t_fwd = t_bwd = t_opt = 0.0
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = m(inp)
        loss = F.cross_entropy(logits.float().reshape(-1, a.vocab), tgt.reshape(-1))
        t1 = time.perf_counter()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if i >= a.warmup:
            t_fwd += t1 - t0
            t_bwd += t2 - t1
            t_opt += t3 - t2
    total = t_fwd + t_bwd + t_opt
    print(json.dumps({"impl": "pytorch-eager", "torch": torch.__version__, "steps": a.steps,
                      "tokens_per_s": a.steps * a.batch * a.seq / total, "step_s": total / a.steps,
                      "forward_s": t_fwd / a.steps, "backward_s": t_bwd / a.steps, "optimizer_s": t_opt / a.steps,
                      "loss": float(loss)}))


if __name__ == "__main__":
    main()
