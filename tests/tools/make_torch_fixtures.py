"""Writes golden fixtures for tests/torch (run by the tests with /usr/bin/python3): torch.save'd dicts of
tensors that LibTorch reads with torch::pickle_load.

usage: make_torch_fixtures.py OUT_DIR
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitnet_ref as ref  # noqa: E402


def quant_fixture():
    g = torch.Generator().manual_seed(1)
    # rows with very different scales, one all-zero row, odd widths
    x = torch.randn(37, 67, generator=g) * torch.logspace(-3, 2, 37).unsqueeze(1)
    x[5] = 0
    w = torch.randn(48, 40, generator=g) * 0.05
    gy = torch.randn(37, 67, generator=g)
    gw = torch.randn(48, 40, generator=g)
    out = {"x": x, "w": w, "gy": gy, "gw": gw,
           "a8": ref.a8_q(x), "a4": ref.a4_q(x), "ternary": ref.ternary_q(w)}
    for name, fn, inp, up in (("a8", ref.a8_q, x, gy), ("a4", ref.a4_q, x, gy), ("ternary", ref.ternary_q, w, gw)):
        leaf = inp.clone().requires_grad_(True)
        (ref.ste(fn, leaf) * up).sum().backward()
        out[name + "_grad"] = leaf.grad
    return out


def kd_fixture():
    g = torch.Generator().manual_seed(2)
    N, V, K = 7, 50, 5
    logits = torch.randn(N, V, generator=g) * 3
    ids = torch.stack([torch.randperm(V, generator=g)[:K] for _ in range(N)])
    ids[1, 3:] = -1  # fewer candidates
    ids[4, 1:] = -1
    lp = torch.log_softmax(torch.randn(N, K + 1, generator=g) * 2, -1)
    logprobs, other = lp[:, :K].contiguous(), lp[:, K].contiguous()
    valid = torch.tensor([True, True, False, True, True, True, False])
    out = {"logits": logits, "ids": ids, "logprobs": logprobs, "other": other, "valid": valid}
    for T in (1.0, 2.0):
        leaf = logits.clone().requires_grad_(True)
        loss = ref.kd_loss_reference(leaf, ids, logprobs, other, valid, T)
        loss.backward()
        key = "T%d" % int(T)
        out[key + "_loss"] = loss.detach().float().reshape(1)
        out[key + "_grad"] = leaf.grad.float()
    return out


def model_fixture():
    torch.manual_seed(3)
    cfg = dict(vocab=64, d=32, layers=2, heads=4, kv_heads=2, ffn=48, max_len=16, theta=10000.0, tie=False)
    m = ref.Transformer(**cfg)
    with torch.no_grad():  # non-trivial norm gains
        for name, p in m.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape))
    ids = torch.randint(0, 64, (2, 10))
    key_valid = torch.ones(2, 10, dtype=torch.bool)
    key_valid[1, 7:] = False
    out = {"ids": ids, "key_valid": key_valid,
           "config": torch.tensor([cfg["vocab"], cfg["d"], cfg["layers"], cfg["heads"], cfg["kv_heads"], cfg["ffn"],
                                   cfg["max_len"]])}
    for name, p in m.named_parameters():
        out["param." + name] = p.detach().clone()
    targets = torch.randint(0, 64, (2, 10))
    out["targets"] = targets
    for mode in ("fp", "a8", "a4"):
        m.mode = mode
        m.zero_grad()
        logits = m(ids, key_valid)
        out["logits." + mode] = logits.detach()
        mask = key_valid.float()
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, 64), targets.reshape(-1), reduction="none")
        loss = (nll * mask.reshape(-1)).sum() / mask.sum()
        loss.backward()
        out["loss." + mode] = loss.detach().reshape(1)
        for name, p in m.named_parameters():
            out["grad.%s.%s" % (mode, name)] = p.grad.detach().clone()
    return out


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for name, fn in (("quant", quant_fixture), ("kd", kd_fixture), ("model", model_fixture)):
        torch.save(fn(), os.path.join(out_dir, name + ".pt"))
    with open(os.path.join(out_dir, "DONE"), "w") as f:
        f.write(torch.__version__ + "\n")


if __name__ == "__main__":
    main()
