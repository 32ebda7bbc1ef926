"""Independent PyTorch eager reference of the bitnet-kde transformer, quantizers and KD loss.

Written from the formulas in DESIGN.md §4 (not from the C++ code): used by make_torch_fixtures.py for
golden tests and by bench/torch/train_bench.py as the PyTorch eager baseline.
Quantizers use the straight-through "detach trick" of the BitNet reference code.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-5


def ternary_q(w):
    g = w.abs().mean().clamp(min=EPS)
    return torch.round(w / g).clamp(-1, 1) * g


def a8_q(x):
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=EPS)
    return torch.round(x * s).clamp(-128, 127) / s


def a4_q(x):
    b = x.abs().mean(dim=-1, keepdim=True)
    return torch.round(x * (math.sqrt(7) / (b + EPS))).clamp(-8, 7) * (b / math.sqrt(7))


def ste(fn, x):
    return x + (fn(x) - x).detach()


def rms_norm(x, gain, eps=1e-5):
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


class Block(nn.Module):
    def __init__(self, d, f, kv):
        super().__init__()
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.wq = nn.Parameter(torch.randn(d, d) * 0.02)
        self.wk = nn.Parameter(torch.randn(kv, d) * 0.02)
        self.wv = nn.Parameter(torch.randn(kv, d) * 0.02)
        self.attn_sub_norm = nn.Parameter(torch.ones(d))
        self.wo = nn.Parameter(torch.randn(d, d) * 0.02)
        self.ffn_norm = nn.Parameter(torch.ones(d))
        self.w_gate = nn.Parameter(torch.randn(f, d) * 0.02)
        self.w_up = nn.Parameter(torch.randn(f, d) * 0.02)
        self.ffn_sub_norm = nn.Parameter(torch.ones(f))
        self.w_down = nn.Parameter(torch.randn(d, f) * 0.02)


class Transformer(nn.Module):
    def __init__(self, vocab, d, layers, heads, kv_heads, ffn, max_len, theta=10000.0, tie=True, mode="fp"):
        super().__init__()
        self.h, self.hkv, self.hd, self.mode, self.tie = heads, kv_heads, d // heads, mode, tie
        self.embed = nn.Parameter(torch.randn(vocab, d) * 0.02)
        if not tie:
            self.lm_head = nn.Parameter(torch.randn(vocab, d) * 0.02)
        self.layers = nn.ModuleList([Block(d, ffn, kv_heads * self.hd) for _ in range(layers)])
        self.final_norm = nn.Parameter(torch.ones(d))
        # RoPE, rotate-half: pair (i, i + hd/2) rotated by p * theta^(-2i/hd)
        inv = theta ** (-torch.arange(0, self.hd // 2, dtype=torch.float64) * 2 / self.hd)
        ang = torch.arange(max_len, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float())
        self.register_buffer("sin", ang.sin().float())

    def lin(self, x, w, act):
        if self.mode == "fp":
            return F.linear(x, w)
        return F.linear(ste(act, x), ste(ternary_q, w))

    def rope(self, x):
        T = x.shape[-2]
        c, s = self.cos[:T], self.sin[:T]
        half = self.hd // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)

    def forward(self, ids, key_valid=None):
        B, T = ids.shape
        in_act = a4_q if self.mode == "a4" else a8_q
        allowed = torch.ones(T, T, dtype=torch.bool).tril()[None, None]
        if key_valid is not None:
            allowed = allowed & (key_valid[:, None, None, :] | torch.eye(T, dtype=torch.bool)[None, None])
        x = self.embed[ids]
        for b in self.layers:
            a = rms_norm(x, b.attn_norm)
            q = self.lin(a, b.wq, in_act).view(B, T, self.h, self.hd).transpose(1, 2)
            k = self.lin(a, b.wk, in_act).view(B, T, self.hkv, self.hd).transpose(1, 2)
            v = self.lin(a, b.wv, in_act).view(B, T, self.hkv, self.hd).transpose(1, 2)
            q, k = self.rope(q), self.rope(k)
            rep = self.h // self.hkv
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-2, -1)).float() / math.sqrt(self.hd)
            att = att.masked_fill(~allowed, float("-inf")).softmax(-1)
            o = (att @ v).transpose(1, 2).reshape(B, T, -1)
            x = x + self.lin(rms_norm(o, b.attn_sub_norm), b.wo, a8_q)
            f = rms_norm(x, b.ffn_norm)
            g = self.lin(f, b.w_gate, in_act)
            u = self.lin(f, b.w_up, in_act)
            inner = F.relu(g).pow(2) * u
            x = x + self.lin(rms_norm(inner, b.ffn_sub_norm), b.w_down, a8_q)
        head = self.embed if self.tie else self.lm_head
        return F.linear(rms_norm(x, self.final_norm), head)


def kd_loss_reference(logits, ids, logprobs, other, valid, T):
    """KL(teacher || student) over K+1 buckets in float64 with the plain formulas (1 - sum q for Other).

    Both bucket distributions are tempered as K+1 atoms (softmax(log b / T)), then KL, times T^2.
    logits [N, V]; ids [N, K] (-1 = padding); logprobs [N, K]; other [N]; valid [N] bool.
    """
    q = logits.double().softmax(-1)
    total, count = 0.0, 0
    for n in range(q.shape[0]):
        if not bool(valid[n]):
            continue
        keep = ids[n] >= 0
        kid = ids[n][keep]
        t = torch.cat([logprobs[n][keep].double(), other[n:n + 1].double()]) / T
        p = t.softmax(-1)
        qk = q[n, kid]
        qo = 1.0 - qk.sum()
        lq = (torch.cat([qk.log(), qo.log().reshape(1)]) / T).log_softmax(-1)
        total = total + (p * (p.log() - lq)).sum()
        count += 1
    return total / max(count, 1) * T * T
