#!/usr/bin/env python3
"""Writes a tiny random-weight Hugging Face causal-LM folder of one of four families, laid out as
transformers' `save_pretrained` lays it out (config.json, generation_config.json, model.safetensors or
shards + model.safetensors.index.json), without transformers or the safetensors package: the
safetensors files are written here byte by byte.  Deterministic for a given set of arguments.

usage:
  hf_tiny_models.py --family {llama,mistral,qwen2,qwen3} --out DIR
                    [--dtype bf16|fp16|fp32] [--shards N] [--seed S] [--vocab V] [--tied|--untied]
                    [--rope-scaling llama3|none] [--sliding-window N] [--attention-bias]
                    [--hidden H] [--layers L] [--heads NH] [--kv-heads NKV] [--head-dim HD]
                    [--intermediate I]
  Prints one JSON line to stdout: {"out", "family", "files", "tensors", "total_size", "dtype"}.

Defaults (tiny, GQA): hidden 64, 2 layers, 4 heads, 2 kv heads, intermediate 160, vocab 512,
max_position_embeddings 512, dtype bf16, one file.  head_dim 16 (= hidden / heads) except qwen3, whose
head_dim is 32 so that heads * head_dim (128) != hidden (64): a loader that derives head_dim from
hidden / heads breaks on it.  config.json holds the keys transformers 4.51.3's config classes write
(json.dumps(indent=2, sort_keys=True)); bos/eos ids are the real ones when the vocab is the real size
(llama 128000/128001 for vocab >= 128256, qwen 151643/151643 (qwen2) or 151643/151645 (qwen3) for vocab
>= 151936), else 1/2.  A 151936-vocab model with hidden 64 is 19.5 MB tied / 38.9 MB untied in bf16.

What the families differ in (the facts a loader must implement):
  family   architectures        attn biases                  q/k norm   head_dim key        tied default
  llama    LlamaForCausalLM     q,k,v,o iff attention_bias;   no         written             untied here
                                gate/up/down iff mlp_bias
  mistral  MistralForCausalLM   none                          no         written             untied
  qwen2    Qwen2ForCausalLM     q,k,v always (o never)        no         absent (hidden/nh)  tied here
  qwen3    Qwen3ForCausalLM     q,k,v,o iff attention_bias    q_norm,    written, != hidden  tied here
                                                              k_norm     / heads
  * rope_scaling: llama default {"rope_type": "llama3", factor 8, low_freq_factor 1, high_freq_factor 4,
    original_max_position_embeddings 64} (max_position_embeddings 512 = 64 * 8); with head_dim 16 and
    rope_theta 50000 it leaves the fastest frequency alone, interpolates one and divides the rest by 8.
    Other families default to "rope_scaling": null (qwen2/qwen3) or no key at all (MistralConfig has no
    such attribute); --rope-scaling llama3 writes the same dict for any family.
  * rope_theta differs per family (llama 50000, mistral 30000, qwen2 20000, qwen3 40000) so a loader that
    ignores it fails.  rms_norm_eps: 1e-05 (llama, mistral), 1e-06 (qwen2, qwen3).
  * sliding window: mistral writes "sliding_window": null by default, or N with --sliding-window N (every
    layer then attends to keys k with q - N < k <= q).  qwen2/qwen3 write "use_sliding_window": false and
    "sliding_window": null (what transformers 4.51 stores when use_sliding_window is false); with
    --sliding-window N they write "sliding_window": N next to "use_sliding_window": false, the shape of
    Qwen2.5 configs saved by older transformers, which a loader must ignore.  Never used by llama.
  * tied embeddings: with tie_word_embeddings true there is no lm_head.weight (transformers drops it on
    save); logits use model.embed_tokens.weight.

Tensor names (transformers' state-dict names; all [out, in] row-major, the stored dtype):
  model.embed_tokens.weight                       [V, H]
  model.layers.{i}.input_layernorm.weight          [H]
  model.layers.{i}.self_attn.q_proj.weight         [NH*HD, H]    (+ .bias [NH*HD]  qwen2, biased llama/qwen3)
  model.layers.{i}.self_attn.k_proj.weight         [NKV*HD, H]   (+ .bias [NKV*HD] likewise)
  model.layers.{i}.self_attn.v_proj.weight         [NKV*HD, H]   (+ .bias [NKV*HD] likewise)
  model.layers.{i}.self_attn.o_proj.weight         [H, NH*HD]    (+ .bias [H] biased llama/qwen3 only)
  model.layers.{i}.self_attn.q_norm.weight         [HD]          (qwen3)
  model.layers.{i}.self_attn.k_norm.weight         [HD]          (qwen3)
  model.layers.{i}.post_attention_layernorm.weight [H]
  model.layers.{i}.mlp.gate_proj.weight            [I, H]
  model.layers.{i}.mlp.up_proj.weight              [I, H]
  model.layers.{i}.mlp.down_proj.weight            [H, I]
  model.norm.weight                                [H]
  lm_head.weight                                   [V, H]        (absent when tied)

safetensors layout, as the safetensors library writes it: u64 little-endian header length n, then n
bytes of compact JSON {"__metadata__":{"format":"pt"}, name: {"dtype","shape","data_offsets"}, ...}
padded with spaces so the data starts at a multiple of 8, then the tensors back to back in name order
(all tensors share a dtype), little-endian.  BF16 is the upper half of the float32 bits rounded to
nearest even (what torch's .to(torch.bfloat16) does; checked against it).  With --shards N > 1 the
tensors, in state-dict order, are split into N files model-0000k-of-0000N.safetensors of about equal
size, and model.safetensors.index.json is {"metadata": {"total_size": bytes}, "weight_map": {name: file}}.

Weights: normal with std c/sqrt(fan_in) (c = 1.4 for q/k, 1 otherwise), embeddings and lm_head std 0.3,
norm gains 1 + 0.2 N(0,1) (q_norm/k_norm 1.5 + 0.3 N(0,1)), biases 0.2 N(0,1): logits have std ~2-3 and
attention is far from uniform.  Generated in state-dict order from torch.Generator().manual_seed(seed),
so a tied and an untied model of the same seed share every tensor but lm_head.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

TRANSFORMERS_VERSION = "4.51.3"
FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
ARCH = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
        "qwen3": "Qwen3ForCausalLM"}
ROPE_THETA = {"llama": 50000.0, "mistral": 30000.0, "qwen2": 20000.0, "qwen3": 40000.0}
RMS_EPS = {"llama": 1e-5, "mistral": 1e-5, "qwen2": 1e-6, "qwen3": 1e-6}
DTYPES = {  # --dtype -> (safetensors dtype, config torch_dtype, bytes per element)
    "bf16": ("BF16", "bfloat16", 2),
    "fp16": ("F16", "float16", 2),
    "fp32": ("F32", "float32", 4),
}
MAX_POSITIONS = 512
LLAMA3_SCALING = {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                  "original_max_position_embeddings": 64, "rope_type": "llama3"}


# ----------------------------------------------------------------------------- config

def special_ids(family, vocab):
    if family == "llama" and vocab >= 128256:
        return 128000, 128001
    if family in ("qwen2", "qwen3") and vocab >= 151936:
        return 151643, (151643 if family == "qwen2" else 151645)
    return 1, 2


def make_config(a):
    f = a.family
    bos, eos = special_ids(f, a.vocab)
    cfg = {
        "architectures": [ARCH[f]],
        "attention_dropout": 0.0,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "hidden_size": a.hidden,
        "initializer_range": 0.02,
        "intermediate_size": a.intermediate,
        "max_position_embeddings": MAX_POSITIONS,
        "model_type": f,
        "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads,
        "rms_norm_eps": RMS_EPS[f],
        "rope_theta": ROPE_THETA[f],
        "tie_word_embeddings": a.tied,
        "torch_dtype": DTYPES[a.dtype][1],
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": a.vocab,
    }
    scaling = dict(LLAMA3_SCALING) if a.rope_scaling == "llama3" else None
    if f == "llama":
        cfg.update({"attention_bias": a.attention_bias, "head_dim": a.head_dim, "mlp_bias": False,
                    "pretraining_tp": 1, "rope_scaling": scaling})
    elif f == "mistral":
        cfg.update({"head_dim": a.head_dim, "sliding_window": a.sliding_window})
        if scaling is not None:  # not a MistralConfig attribute, but the rotary embedding reads it
            cfg["rope_scaling"] = scaling
    else:
        cfg.update({"max_window_layers": a.layers, "rope_scaling": scaling, "sliding_window": a.sliding_window,
                    "use_sliding_window": False})
        if f == "qwen3":
            cfg.update({"attention_bias": a.attention_bias, "head_dim": a.head_dim})
    return cfg


# ----------------------------------------------------------------------------- weights

def tensor_specs(a):
    """[(name, shape, kind)] in transformers' state-dict order. kind: ('linear', c) | 'embed' | 'norm' |
    'qknorm' | 'bias'."""
    H, I, V, HD = a.hidden, a.intermediate, a.vocab, a.head_dim
    q_out, kv_out = a.heads * HD, a.kv_heads * HD
    qkv_bias = a.family == "qwen2" or a.attention_bias
    o_bias = a.family in ("llama", "qwen3") and a.attention_bias
    specs = [("model.embed_tokens.weight", [V, H], "embed")]
    for i in range(a.layers):
        p = "model.layers.%d." % i
        for proj, out, c in (("q_proj", q_out, 1.4), ("k_proj", kv_out, 1.4), ("v_proj", kv_out, 1.0)):
            specs.append((p + "self_attn.%s.weight" % proj, [out, H], ("linear", c)))
            if qkv_bias:
                specs.append((p + "self_attn.%s.bias" % proj, [out], "bias"))
        specs.append((p + "self_attn.o_proj.weight", [H, q_out], ("linear", 1.0)))
        if o_bias:
            specs.append((p + "self_attn.o_proj.bias", [H], "bias"))
        if a.family == "qwen3":
            specs.append((p + "self_attn.q_norm.weight", [HD], "qknorm"))
            specs.append((p + "self_attn.k_norm.weight", [HD], "qknorm"))
        specs.append((p + "mlp.gate_proj.weight", [I, H], ("linear", 1.0)))
        specs.append((p + "mlp.up_proj.weight", [I, H], ("linear", 1.0)))
        specs.append((p + "mlp.down_proj.weight", [H, I], ("linear", 1.0)))
        specs.append((p + "input_layernorm.weight", [H], "norm"))
        specs.append((p + "post_attention_layernorm.weight", [H], "norm"))
    specs.append(("model.norm.weight", [H], "norm"))
    if not a.tied:
        specs.append(("lm_head.weight", [V, H], "embed"))
    return specs


def make_tensors(a):
    gen = torch.Generator().manual_seed(a.seed)
    out = []
    for name, shape, kind in tensor_specs(a):
        z = torch.randn(shape, generator=gen, dtype=torch.float32)
        if kind == "embed":
            t = 0.3 * z
        elif kind == "norm":
            t = 1.0 + 0.2 * z
        elif kind == "qknorm":
            t = 1.5 + 0.3 * z
        elif kind == "bias":
            t = 0.2 * z
        else:
            t = (kind[1] / math.sqrt(shape[1])) * z
        out.append((name, t))
    return out


def float32_to_bf16_bits(t):
    """float32 tensor -> numpy uint16 array of bfloat16 bits, round to nearest even (finite inputs)."""
    bits = t.contiguous().view(torch.int32).numpy().astype(np.int64) & 0xFFFFFFFF
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def encode(t, dtype):
    """float32 tensor -> little-endian bytes of the stored dtype."""
    if dtype == "bf16":
        mine = float32_to_bf16_bits(t)
        theirs = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").view("<u2")
        if not np.array_equal(mine, theirs.reshape(mine.shape)):
            raise AssertionError("hand-rolled bf16 rounding disagrees with torch")
        return mine.tobytes()
    if dtype == "fp16":
        return t.to(torch.float16).numpy().astype("<f2").tobytes()
    return t.numpy().astype("<f4").tobytes()


# ----------------------------------------------------------------------------- safetensors

def safetensors_bytes(named, st_dtype):
    """named: [(name, shape, raw bytes)] of one dtype -> the file's bytes. Name order, as safetensors
    sorts tensors by (alignment desc, name)."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    chunks = []
    for name, shape, raw in sorted(named, key=lambda e: e[0]):
        header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def split_shards(sizes, n):
    """sizes in state-dict order -> list of index lists, exactly n nonempty shards of about equal bytes."""
    if n > len(sizes):
        raise SystemExit("--shards %d exceeds the %d tensors" % (n, len(sizes)))
    target = sum(sizes) / n
    shards, cur, cur_size = [], [], 0
    for i, size in enumerate(sizes):
        remaining = len(sizes) - i  # including this one
        to_open = n - len(shards) - 1  # shards still to open after the current one
        if cur and (remaining <= to_open or (cur_size + size > target and to_open > 0)):
            shards.append(cur)
            cur, cur_size = [], 0
        cur.append(i)
        cur_size += size
    shards.append(cur)
    assert len(shards) == n and all(shards)
    return shards


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, choices=FAMILIES)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=512)
    tie = ap.add_mutually_exclusive_group()
    tie.add_argument("--tied", dest="tied", action="store_true", default=None)
    tie.add_argument("--untied", dest="tied", action="store_false")
    ap.add_argument("--rope-scaling", choices=("llama3", "none"), default=None,
                    help="default: llama3 for llama, none otherwise")
    ap.add_argument("--sliding-window", type=int, default=None)
    ap.add_argument("--attention-bias", action="store_true",
                    help="llama/qwen3: attention_bias true (q,k,v,o biases)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=None, help="default: 32 for qwen3, hidden/heads otherwise")
    ap.add_argument("--intermediate", type=int, default=160)
    a = ap.parse_args(argv[1:])

    if a.tied is None:
        a.tied = a.family in ("qwen2", "qwen3")
    if a.rope_scaling is None:
        a.rope_scaling = "llama3" if a.family == "llama" else "none"
    if a.head_dim is None:
        a.head_dim = 32 if a.family == "qwen3" else a.hidden // a.heads
    if a.family == "qwen2" and a.head_dim * a.heads != a.hidden:
        ap.error("qwen2 has no head_dim key: head_dim must be hidden / heads")
    if a.attention_bias and a.family not in ("llama", "qwen3"):
        ap.error("--attention-bias applies to llama and qwen3 (qwen2 always has q/k/v biases, mistral none)")
    if a.family == "llama" and a.sliding_window is not None:
        ap.error("llama has no sliding window")
    if a.heads % a.kv_heads or a.head_dim % 2 or a.shards < 1 or a.vocab < 3:
        ap.error("need heads % kv_heads == 0, an even head_dim, shards >= 1, vocab >= 3")

    st_dtype = DTYPES[a.dtype][0]
    os.makedirs(a.out, exist_ok=True)
    for stale in os.listdir(a.out):  # a previous run's shards would confuse loaders
        if stale.endswith(".safetensors") or stale == "model.safetensors.index.json":
            os.remove(os.path.join(a.out, stale))

    cfg = make_config(a)
    write_json(os.path.join(a.out, "config.json"), cfg)
    write_json(os.path.join(a.out, "generation_config.json"),
               {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"],
                "eos_token_id": cfg["eos_token_id"], "transformers_version": TRANSFORMERS_VERSION})

    tensors = [(name, list(t.shape), encode(t, a.dtype)) for name, t in make_tensors(a)]
    total = sum(len(raw) for _, _, raw in tensors)
    if a.shards == 1:
        files = ["model.safetensors"]
        with open(os.path.join(a.out, files[0]), "wb") as f:
            f.write(safetensors_bytes(tensors, st_dtype))
    else:
        files, weight_map = [], {}
        for k, idx in enumerate(split_shards([len(raw) for _, _, raw in tensors], a.shards)):
            fname = "model-%05d-of-%05d.safetensors" % (k + 1, a.shards)
            files.append(fname)
            part = [tensors[i] for i in idx]
            for name, _, _ in part:
                weight_map[name] = fname
            with open(os.path.join(a.out, fname), "wb") as f:
                f.write(safetensors_bytes(part, st_dtype))
        write_json(os.path.join(a.out, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total}, "weight_map": weight_map})
    if total > 40_000_000:
        print("hf_tiny_models: warning: %d bytes of weights (> 40 MB); pass a smaller --hidden" % total,
              file=sys.stderr)
    print(json.dumps({"out": a.out, "family": a.family, "files": files, "tensors": len(tensors),
                      "total_size": total, "dtype": st_dtype}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
