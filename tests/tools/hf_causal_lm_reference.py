#!/usr/bin/env python3
"""Independent float64 reference forward for Hugging Face `LlamaForCausalLM`, `MistralForCausalLM`,
`Qwen2ForCausalLM` and `Qwen3ForCausalLM` folders (config.json + model.safetensors, or shards named by
model.safetensors.index.json).

Written from the semantics of transformers' modeling_{llama,mistral,qwen2,qwen3}.py and
modeling_rope_utils.py, not from this project's C++ code (nor from hf_tiny_models.py, which writes the
test folders: the safetensors reader here is its own).  Needs only /usr/bin/python3 with torch.

usage:
  hf_causal_lm_reference.py --model DIR (--ids 1,2,3 | --ids-file F) --out PREFIX
      F: a JSON list of ints, or ints separated by commas / whitespace.
  writes PREFIX.bin  the logits, T*V little-endian float64, row-major [T, V] (row t = position t)
         PREFIX.json {"shape": [T, V], "dtype": "float64", "byte_order": "little", "model_type", "ids",
                      "max_abs_logit", "argmax": [T], "max_abs_hidden": [L+1] (after the embedding and
                      after each layer), "inv_freq": [head_dim/2] (after rope scaling),
                      "sliding_window": [per layer, null = full causal]}

Forward (one sequence, positions 0..T-1, float64 throughout; weights converted from their stored dtype):
  h = embed_tokens[ids]
  per layer:
    a = RMSNorm(h; input_layernorm)                      RMSNorm(x; w) = w * x / sqrt(mean(x^2) + rms_norm_eps)
    q = a Wq^T (+bq), k = a Wk^T (+bk), v = a Wv^T (+bv), split into heads of head_dim
    qwen3: q = RMSNorm(q; q_norm), k = RMSNorm(k; k_norm) per head over head_dim, BEFORE RoPE
    RoPE, rotate_half convention: x*cos + rotate_half(x)*sin, rotate_half(x) = cat(-x[hd/2:], x[:hd/2]),
      angle(pos, j) = pos * inv_freq[j mod hd/2], inv_freq[i] = rope_theta^(-2i/hd)
      rope_scaling "llama3" (transformers' _compute_llama3_parameters): wavelen = 2 pi / inv_freq;
        wavelen > orig/low_freq_factor: inv_freq / factor; wavelen < orig/high_freq_factor: unchanged;
        between: (1-s) inv_freq/factor + s inv_freq, s = (orig/wavelen - low_freq_factor) /
        (high_freq_factor - low_freq_factor)   (orig = original_max_position_embeddings)
      rope_scaling "linear": inv_freq / factor.  Any other type is refused.
    attention: query head j uses kv head j // (heads / kv_heads); softmax(q k^T / sqrt(head_dim) + mask) v
      mask: key k visible to query q iff k <= q, and q - k < sliding_window when the layer slides
    h += o_proj(attn) (+bo)
    m = RMSNorm(h; post_attention_layernorm); h += down(silu(gate(m)) * up(m))   (silu(x) = x sigmoid(x))
  logits = RMSNorm(h; norm) lm_head^T, lm_head = embed_tokens when tie_word_embeddings

Family facts this reads from config.json (model_type):
  biases     llama: q,k,v,o iff attention_bias, gate/up/down iff mlp_bias; mistral: none;
             qwen2: q,k,v always, o never; qwen3: q,k,v,o iff attention_bias
  q/k norm   qwen3 only (self_attn.q_norm.weight, self_attn.k_norm.weight, shape [head_dim])
  head_dim   config "head_dim" when present and not null, else hidden_size / num_attention_heads
             (qwen3 checkpoints have head_dim * heads != hidden_size)
  tied       tie_word_embeddings (absent = false for all four): no lm_head.weight, logits use the embedding
  rope       rope_theta; rope_scaling null / "default" / "llama3" / "linear" ("type" accepted for "rope_type")
  sliding    mistral: sliding_window (null = none) on every layer; qwen2/qwen3: only when
             use_sliding_window is true, on layers i >= max_window_layers (or as "layer_types" says);
             llama: never.  transformers' mask: kv_idx > q_idx - sliding_window.
transformers runs in the checkpoint dtype (rounding activations to bf16 / fp16) and computes inv_freq,
cos and sin in float32; this reference does everything in float64, so compare with a tolerance.
"""

import argparse
import json
import math
import os
import struct
import sys

import torch

FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
ST_DTYPES = {"F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2),
             "BF16": (torch.bfloat16, 2)}
MAX_HEADER = 100_000_000


class FormatError(Exception):
    pass


# ----------------------------------------------------------------------------- safetensors reader

def _unique_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise FormatError("duplicate JSON key %r" % k)
        d[k] = v
    return d


def read_safetensors(path):
    """{name: float64 tensor} of one file; every header field and the data coverage are validated."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise FormatError("%s: no header length" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or 8 + n > len(blob):
        raise FormatError("%s: header length %d is impossible for a %d-byte file" % (path, n, len(blob)))
    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=_unique_keys)
    if not isinstance(header, dict):
        raise FormatError("%s: header is not a JSON object" % path)
    header.pop("__metadata__", None)
    data = memoryview(blob)[8 + n:]
    spans = []
    out = {}
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError("%s: %r needs exactly dtype, shape, data_offsets" % (path, name))
        if info["dtype"] not in ST_DTYPES:
            raise FormatError("%s: %r has dtype %r (float tensors expected)" % (path, name, info["dtype"]))
        tdtype, size = ST_DTYPES[info["dtype"]]
        shape = info["shape"]
        begin, end = info["data_offsets"]
        if not all(isinstance(d, int) and d >= 0 for d in shape) or not 0 <= begin <= end <= len(data):
            raise FormatError("%s: %r has a bad shape or offsets" % (path, name))
        if end - begin != math.prod(shape) * size:
            raise FormatError("%s: %r spans %d bytes, shape %s needs %d" % (path, name, end - begin, shape,
                                                                           math.prod(shape) * size))
        spans.append((begin, end, name))
        if end > begin:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=tdtype)
        else:
            t = torch.empty(0, dtype=tdtype)
        out[name] = t.reshape(shape).to(torch.float64)
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise FormatError("%s: %r starts at %d, expected %d" % (path, name, begin, pos))
        pos = end
    if pos != len(data):
        raise FormatError("%s: tensors cover %d of %d data bytes" % (path, pos, len(data)))
    return out


def read_weights(folder):
    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)
    if not os.path.exists(index):
        raise FormatError("%s has neither model.safetensors nor model.safetensors.index.json" % folder)
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        for name, t in read_safetensors(os.path.join(folder, shard)).items():
            if weight_map.get(name) != shard:
                raise FormatError("%s holds %r, which the index maps to %r" % (shard, name, weight_map.get(name)))
            if name in out:
                raise FormatError("%r is in two shards" % name)
            out[name] = t
    missing = sorted(set(weight_map) - set(out))
    if missing:
        raise FormatError("the index names tensors no shard holds: %s" % missing[:5])
    return out


# ----------------------------------------------------------------------------- rope

def rope_inv_freq(cfg, head_dim):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    scaling = cfg.get("rope_scaling")
    if not scaling:
        return inv_freq
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type == "default":
        return inv_freq
    if rope_type == "linear":
        return inv_freq / float(scaling["factor"])
    if rope_type != "llama3":
        raise FormatError("rope_scaling type %r is not supported by this reference" % rope_type)
    factor = float(scaling["factor"])
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    orig = float(scaling["original_max_position_embeddings"])
    low_freq_wavelen, high_freq_wavelen = orig / low, orig / high
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (orig / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(medium, smoothed, scaled)


def apply_rope(x, inv_freq):
    """x: [heads, T, hd]; pairs (i, i + hd/2) rotate by pos * inv_freq[i]."""
    T, hd = x.shape[1], x.shape[2]
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    half = hd // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * angles.cos() + rotated * angles.sin()


# ----------------------------------------------------------------------------- model

def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


class Model:
    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        self.cfg = cfg
        fam = cfg.get("model_type")
        if fam not in FAMILIES:
            raise FormatError("model_type %r is not one of %s" % (fam, FAMILIES))
        self.family = fam
        if cfg.get("hidden_act", "silu") != "silu":
            raise FormatError("hidden_act %r is not silu" % cfg.get("hidden_act"))
        self.H = cfg["hidden_size"]
        self.I = cfg["intermediate_size"]
        self.L = cfg["num_hidden_layers"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads") or self.nh
        self.hd = cfg.get("head_dim") or self.H // self.nh
        self.V = cfg["vocab_size"]
        self.eps = float(cfg["rms_norm_eps"])
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if self.nh % self.nkv:
            raise FormatError("num_attention_heads %d is not a multiple of num_key_value_heads %d"
                              % (self.nh, self.nkv))

        attn_bias = bool(cfg.get("attention_bias", False))
        if fam == "llama":
            qkv_bias, o_bias, mlp_bias = attn_bias, attn_bias, bool(cfg.get("mlp_bias", False))
        elif fam == "mistral":
            qkv_bias = o_bias = mlp_bias = False
        elif fam == "qwen2":
            qkv_bias, o_bias, mlp_bias = True, False, False
        else:
            qkv_bias, o_bias, mlp_bias = attn_bias, attn_bias, False
        self.qk_norm = fam == "qwen3"

        # per-layer sliding window (None = plain causal)
        window = cfg.get("sliding_window")
        if fam == "llama":
            self.windows = [None] * self.L
        elif fam == "mistral":
            self.windows = [window] * self.L
        else:
            if cfg.get("use_sliding_window", False) and window is not None:
                types = cfg.get("layer_types") or [
                    "sliding_attention" if i >= cfg.get("max_window_layers", self.L) else "full_attention"
                    for i in range(self.L)]
                self.windows = [window if t == "sliding_attention" else None for t in types]
            else:
                self.windows = [None] * self.L

        self.inv_freq = rope_inv_freq(cfg, self.hd)

        self.w = read_weights(folder)
        self.used = set()
        q_out, kv_out = self.nh * self.hd, self.nkv * self.hd
        self.embed = self.get("model.embed_tokens.weight", [self.V, self.H])
        self.norm = self.get("model.norm.weight", [self.H])
        self.lm_head = self.embed if self.tied else self.get("lm_head.weight", [self.V, self.H])
        if self.tied and "lm_head.weight" in self.w:  # transformers re-ties it to the embedding on load
            print("hf_causal_lm_reference: warning: lm_head.weight is stored although tie_word_embeddings is "
                  "true; it is ignored", file=sys.stderr)
            self.used.add("lm_head.weight")
        self.layers = []
        for i in range(self.L):
            p = "model.layers.%d." % i
            lay = {"input_layernorm": self.get(p + "input_layernorm.weight", [self.H]),
                   "post_attention_layernorm": self.get(p + "post_attention_layernorm.weight", [self.H])}
            for name, out, inp, bias in (("self_attn.q_proj", q_out, self.H, qkv_bias),
                                         ("self_attn.k_proj", kv_out, self.H, qkv_bias),
                                         ("self_attn.v_proj", kv_out, self.H, qkv_bias),
                                         ("self_attn.o_proj", self.H, q_out, o_bias),
                                         ("mlp.gate_proj", self.I, self.H, mlp_bias),
                                         ("mlp.up_proj", self.I, self.H, mlp_bias),
                                         ("mlp.down_proj", self.H, self.I, mlp_bias)):
                lay[name] = (self.get(p + name + ".weight", [out, inp]),
                             self.get(p + name + ".bias", [out]) if bias else None)
            if self.qk_norm:
                lay["q_norm"] = self.get(p + "self_attn.q_norm.weight", [self.hd])
                lay["k_norm"] = self.get(p + "self_attn.k_norm.weight", [self.hd])
            self.layers.append(lay)
        extra = sorted(set(self.w) - self.used)
        if extra:
            raise FormatError("tensors the %s architecture does not use: %s" % (fam, extra[:8]))

    def get(self, name, shape):
        if name not in self.w:
            raise FormatError("missing tensor %r" % name)
        t = self.w[name]
        if list(t.shape) != shape:
            raise FormatError("%r has shape %s, expected %s" % (name, list(t.shape), shape))
        self.used.add(name)
        return t

    @staticmethod
    def linear(x, wb):
        w, b = wb
        y = x @ w.t()
        return y if b is None else y + b

    def forward(self, ids):
        T = len(ids)
        for t in ids:
            if not 0 <= t < self.V:
                raise ValueError("token id %d is outside [0, %d)" % (t, self.V))
        h = self.embed[torch.tensor(ids, dtype=torch.long)]
        max_hidden = [h.abs().max().item()]
        qpos = torch.arange(T)[:, None]
        kpos = torch.arange(T)[None, :]
        group = self.nh // self.nkv
        for lay, window in zip(self.layers, self.windows):
            visible = kpos <= qpos
            if window is not None:
                visible = visible & (kpos > qpos - window)
            bias = torch.zeros(T, T, dtype=torch.float64).masked_fill(~visible, float("-inf"))

            a = rms_norm(h, lay["input_layernorm"], self.eps)
            q = self.linear(a, lay["self_attn.q_proj"]).view(T, self.nh, self.hd)
            k = self.linear(a, lay["self_attn.k_proj"]).view(T, self.nkv, self.hd)
            v = self.linear(a, lay["self_attn.v_proj"]).view(T, self.nkv, self.hd)
            if self.qk_norm:
                q = rms_norm(q, lay["q_norm"], self.eps)
                k = rms_norm(k, lay["k_norm"], self.eps)
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, T, hd]
            q, k = apply_rope(q, self.inv_freq), apply_rope(k, self.inv_freq)
            k = k.repeat_interleave(group, dim=0)
            v = v.repeat_interleave(group, dim=0)
            scores = (q @ k.transpose(1, 2)) / math.sqrt(self.hd) + bias
            attn = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(T, self.nh * self.hd)
            h = h + self.linear(attn, lay["self_attn.o_proj"])

            m = rms_norm(h, lay["post_attention_layernorm"], self.eps)
            g = self.linear(m, lay["mlp.gate_proj"])
            h = h + self.linear(g * torch.sigmoid(g) * self.linear(m, lay["mlp.up_proj"]), lay["mlp.down_proj"])
            max_hidden.append(h.abs().max().item())
        logits = rms_norm(h, self.norm, self.eps) @ self.lm_head.t()
        return logits, max_hidden


# ----------------------------------------------------------------------------- entry point

def parse_ids(text):
    text = text.strip()
    if text.startswith("["):
        vals = json.loads(text)
    else:
        vals = [int(tok) for tok in text.replace(",", " ").split()]
    if not vals or not all(isinstance(v, int) for v in vals):
        raise ValueError("no token ids (or non-integers) given")
    return vals


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ids")
    src.add_argument("--ids-file")
    ap.add_argument("--out", required=True, help="writes OUT.json and OUT.bin")
    a = ap.parse_args(argv[1:])
    torch.set_grad_enabled(False)
    if a.ids is not None:
        ids = parse_ids(a.ids)
    else:
        with open(a.ids_file) as f:
            ids = parse_ids(f.read())

    model = Model(a.model)
    logits, max_hidden = model.forward(ids)
    if not torch.isfinite(logits).all():
        raise FormatError("non-finite logits")
    T, V = logits.shape
    with open(a.out + ".bin", "wb") as f:
        f.write(logits.contiguous().numpy().astype("<f8").tobytes())
    meta = {"shape": [T, V], "dtype": "float64", "byte_order": "little", "model_type": model.family,
            "ids": ids, "max_abs_logit": logits.abs().max().item(), "argmax": logits.argmax(-1).tolist(),
            "max_abs_hidden": max_hidden, "inv_freq": model.inv_freq.tolist(), "sliding_window": model.windows}
    with open(a.out + ".json", "w") as f:
        f.write(json.dumps(meta) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (FormatError, ValueError, KeyError) as e:
        print("hf_causal_lm_reference: error: %s" % e, file=sys.stderr)
        sys.exit(1)
