#!/usr/bin/env python3
"""Independent float32 reference forward for a Hugging Face BitNet folder (transformers' `BitNetForCausalLM`,
model_type "bitnet", the layout microsoft/bitnet-b1.58-2B-4T ships).

Written from the structure documented by transformers (models/bitnet/modeling_bitnet.py and
integrations/bitnet.py), not from this project's C++ code, so it can check `bitnet-kde export --format hf`.
It needs only /usr/bin/python3 with torch: the safetensors file is parsed here (json + struct +
torch.frombuffer) and every offset is validated.

Variants read (config.json "quantization_config"):
  * quantization_mode "offline" (the packed release): each q/k/v/o/gate/up/down `weight` is uint8
    [out/4, in] holding 4 ternary values per byte, with a float `weight_scale` of shape [1].
    Byte (r, c) holds W[i*R + r, c] + 1 in bits 2i..2i+1 (R = out/4, i = 0..3): code 0 -> -1, 1 -> 0,
    2 -> +1 (3 is invalid).  linear_class "autobitlinear" (2B-4T) multiplies the output by weight_scale
    (= absmean of the latent weight); linear_class "bitlinear" (the config class default) divides by it
    (it stores 1/absmean).
  * quantization_mode "online": latent float weights [out, in], ternarized on the fly with absmean
    (s = 1/max(mean|W|, 1e-5); W_q = clamp(round(W*s), -1, 1) / s), no weight_scale.
  * no quantization_config: plain float linears (what BitNetForCausalLM does without a quantizer).
Every BitLinear first fake-quantizes its input per token: s = 127 / max(max|x|, 1e-5),
q = clamp(round(x*s), -128, 127) (round half to even, as torch.round).

Forward (per sequence, positions 0..T-1, float32 throughout):
  h = embed_tokens[ids]
  per layer:  a = input_layernorm(h); q,k,v = BitLinear(a); RoPE (rotate_half, rope_theta) on q,k;
              causal softmax(q k^T / sqrt(head_dim)) v with GQA (query head j uses kv head j // group);
              h += o_proj(attn_sub_norm(attn))
              m = post_attention_layernorm(h); h += down_proj(ffn_sub_norm(act(gate(m)) * up(m)))
              act = relu(x)^2 ("relu2", BitNet b1.58) or x * sigmoid(x) ("silu")
  logits = lm_head(norm(h))   (lm_head = embed_tokens when tie_word_embeddings; never quantized)
  RMSNorm(x) = weight * x / sqrt(mean(x^2) + rms_norm_eps)

transformers itself runs in the checkpoint dtype (bf16 for 2B-4T) and rounds the dequantized
activations / norm outputs to it; this reference stays in float32, so compare with a tolerance.

usage:
  hf_bitnet_reference.py HF_FOLDER TOKENS_JSON OUT_JSON
      TOKENS_JSON: {"sequences": [[int, ...], ...]}
      OUT_JSON:    {"logits": [[[float x vocab] per position] per sequence]}
  hf_bitnet_reference.py --selftest      (checks the 2-bit unpacking against transformers' documented
                                          example and that pack_ternary/unpack_ternary invert each other)
"""

import json
import math
import os
import struct
import sys

import torch

# safetensors dtype strings -> (torch dtype, bytes per element)
ST_DTYPES = {
    "BOOL": (torch.bool, 1),
    "U8": (torch.uint8, 1),
    "I8": (torch.int8, 1),
    "I16": (torch.int16, 2),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I32": (torch.int32, 4),
    "F32": (torch.float32, 4),
    "F64": (torch.float64, 8),
    "I64": (torch.int64, 8),
}
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
MAX_HEADER = 100_000_000  # the limit the safetensors library enforces

LINEAR_NAMES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


class FormatError(Exception):
    pass


def warn(msg):
    print("hf_bitnet_reference: warning: " + msg, file=sys.stderr)


# ----------------------------------------------------------------------------- safetensors

def _no_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise FormatError("duplicate key in safetensors header: %r" % key)
        out[key] = value
    return out


def read_safetensors(path):
    """Returns ({name: (dtype string, tensor)}, metadata dict or None). Raises FormatError on any defect."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise FormatError("%s: shorter than the 8-byte header length" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER:
        raise FormatError("%s: header length %d exceeds 100 MB" % (path, n))
    if 8 + n > len(blob):
        raise FormatError("%s: header length %d runs past the end of the file" % (path, n))
    try:
        text = blob[8:8 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("%s: header is not UTF-8" % path)
    if not text.startswith("{"):
        raise FormatError("%s: header does not start with '{'" % path)
    header = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    if not isinstance(header, dict):
        raise FormatError("%s: header is not a JSON object" % path)
    if (8 + n) % 8 != 0:
        warn("%s: data section starts at byte %d, not 8-byte aligned (the reference writer pads the "
             "header with spaces)" % (path, 8 + n))

    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise FormatError("%s: __metadata__ must map strings to strings" % path)

    data = blob[8 + n:]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError("%s: tensor %r must have exactly dtype, shape, data_offsets" % (path, name))
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in ST_DTYPES:
            raise FormatError("%s: tensor %r has unknown dtype %r" % (path, name, dtype))
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise FormatError("%s: tensor %r has a bad shape %r" % (path, name, shape))
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
            raise FormatError("%s: tensor %r has bad data_offsets %r" % (path, name, offsets))
        nbytes = math.prod(shape) * ST_DTYPES[dtype][1]
        if offsets[1] - offsets[0] != nbytes:
            raise FormatError("%s: tensor %r spans %d bytes, its dtype and shape need %d"
                              % (path, name, offsets[1] - offsets[0], nbytes))
        entries.append((offsets[0], offsets[1], name, dtype, shape))

    # The buffer must be covered exactly: tensors back to back from 0 to the end of the file.
    entries.sort()
    pos = 0
    for begin, end, name, _, _ in entries:
        if begin != pos:
            raise FormatError("%s: tensor %r starts at %d, expected %d (gap or overlap)" % (path, name, begin, pos))
        pos = end
    if pos != len(data):
        raise FormatError("%s: tensors cover %d bytes of a %d-byte data section" % (path, pos, len(data)))

    tensors = {}
    for begin, end, name, dtype, shape in entries:
        tdtype, size = ST_DTYPES[dtype]
        if (8 + n + begin) % size != 0:
            warn("%s: tensor %r is not aligned to its %d-byte element size in the file" % (path, name, size))
        if end == begin:
            t = torch.empty(shape, dtype=tdtype)
        else:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=tdtype).reshape(shape).clone()
        tensors[name] = (dtype, t)
    return tensors, metadata


def load_weights(folder):
    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)[0]
    if os.path.exists(index):  # sharded layout: weight_map names the shard holding each tensor
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            part = read_safetensors(os.path.join(folder, shard))[0]
            for name, value in part.items():
                if weight_map.get(name) != shard:
                    raise FormatError("%s holds %r, which the index does not assign to it" % (shard, name))
                tensors[name] = value
        missing = set(weight_map) - set(tensors)
        if missing:
            raise FormatError("index names tensors no shard holds: %s" % sorted(missing)[:5])
        return tensors
    raise FormatError("%s has neither model.safetensors nor model.safetensors.index.json" % folder)


# ----------------------------------------------------------------------------- ternary packing

def unpack_ternary(packed):
    """uint8 [R, in] -> int8 [4R, in] in {-1, 0, 1}. Lane i (bits 2i..2i+1) of byte (r, c) is row i*R + r."""
    lanes = [(packed >> (2 * i)) & 3 for i in range(4)]
    codes = torch.cat(lanes, dim=0)
    if (codes == 3).any():
        raise FormatError("packed weight holds the unused 2-bit code 3 (transformers would read it as +2)")
    return codes.to(torch.int8) - 1


def pack_ternary(values):
    """int [N, in] in {-1, 0, 1}, N % 4 == 0 -> uint8 [N/4, in]; the inverse of unpack_ternary."""
    n = values.shape[0]
    if n % 4:
        raise ValueError("row count %d is not a multiple of 4" % n)
    r = n // 4
    codes = (values.to(torch.int16) + 1).to(torch.uint8)
    packed = torch.zeros((r,) + tuple(values.shape[1:]), dtype=torch.uint8)
    for i in range(4):
        packed |= codes[i * r:(i + 1) * r] << (2 * i)
    return packed


# ----------------------------------------------------------------------------- model

def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def act_quant(x):
    """Per-token absmax int8 fake quantization: returns the integer grid values and the scale."""
    scale = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * scale).round().clamp(-128, 127), scale


class Linear:
    """One projection, in the form the checkpoint's quantization_config asks for."""

    def __init__(self, kind, weight, scale=None):
        self.kind, self.weight, self.scale = kind, weight, scale

    def __call__(self, x):
        if self.kind == "plain":
            return x @ self.weight.t()
        q, s = act_quant(x)
        if self.kind == "autobitlinear":  # AutoBitLinear offline: linear(q/s, W) * weight_scale
            return ((q / s) @ self.weight.t()) * self.scale
        if self.kind == "bitlinear":      # BitLinear: linear(q, W) / (weight_scale * s)
            return (q @ self.weight.t()) / (self.scale * s)
        if self.kind == "online":         # AutoBitLinear online: absmean-ternarized latent weight
            return (q / s) @ self.weight.t()
        raise AssertionError(self.kind)


def absmean_ternary(w):
    s = 1.0 / w.abs().mean().clamp(min=1e-5)
    return (w * s).round().clamp(-1, 1) / s


class Model:
    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        self.cfg = cfg
        if cfg.get("model_type") != "bitnet":
            raise FormatError("config model_type is %r, not 'bitnet'" % cfg.get("model_type"))
        # transformers' ACT2FN: "relu2" is ReLUSquaredActivation, "silu" is x * sigmoid(x).
        self.act = cfg.get("hidden_act", "relu2")
        if self.act not in ("relu2", "silu"):
            raise FormatError("hidden_act %r is not relu2 or silu" % self.act)
        if cfg.get("attention_bias", False) or cfg.get("mlp_bias", False):
            raise FormatError("biases are not supported by this reference")
        rope_scaling = cfg.get("rope_scaling") or {}
        rope_type = rope_scaling.get("rope_type", rope_scaling.get("type", "default"))
        if rope_type != "default":
            raise FormatError("rope_scaling type %r is not supported" % rope_type)

        self.H = cfg["hidden_size"]
        self.I = cfg["intermediate_size"]
        self.L = cfg["num_hidden_layers"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads") or self.nh
        self.hd = cfg.get("head_dim") or self.H // self.nh
        self.V = cfg["vocab_size"]
        self.eps = float(cfg.get("rms_norm_eps", 1e-5))        # BitNetConfig defaults
        self.theta = float(cfg.get("rope_theta", 500000.0))
        self.tie = bool(cfg.get("tie_word_embeddings", False))
        if self.nh * self.hd != self.H:
            raise FormatError("num_attention_heads * head_dim must equal hidden_size (attn_sub_norm has hidden_size)")
        if self.nh % self.nkv:
            raise FormatError("num_attention_heads is not a multiple of num_key_value_heads")

        qc = cfg.get("quantization_config")
        if qc is None:
            self.mode, self.linear_class, skip = "none", None, []
        else:
            if qc.get("quant_method") != "bitnet":
                raise FormatError("quant_method %r is not 'bitnet'" % qc.get("quant_method"))
            self.mode = qc.get("quantization_mode", "offline")
            self.linear_class = qc.get("linear_class", "bitlinear")
            if self.mode not in ("offline", "online") or self.linear_class not in ("bitlinear", "autobitlinear"):
                raise FormatError("unsupported quantization_config %r" % qc)
            if self.mode == "online" and self.linear_class != "autobitlinear":
                raise FormatError("quantization_mode online exists only with linear_class autobitlinear")
            if qc.get("use_rms_norm", False):
                raise FormatError("use_rms_norm (an extra RMSNorm inside BitLinear) is not supported")
            skip = [s.rstrip("$") for s in (qc.get("modules_to_not_convert") or [])]

        self.tensors = load_weights(folder)
        self.used = set()
        self.embed = self.float_tensor("model.embed_tokens.weight", [self.V, self.H])
        self.norm = self.float_tensor("model.norm.weight", [self.H])
        if self.tie:
            self.lm_head = self.embed
            if "lm_head.weight" in self.tensors:
                warn("lm_head.weight is stored although tie_word_embeddings is true; it is ignored")
                self.used.add("lm_head.weight")
        else:
            self.lm_head = self.float_tensor("lm_head.weight", [self.V, self.H])

        shapes = {"self_attn.q_proj": (self.nh * self.hd, self.H), "self_attn.k_proj": (self.nkv * self.hd, self.H),
                  "self_attn.v_proj": (self.nkv * self.hd, self.H), "self_attn.o_proj": (self.H, self.nh * self.hd),
                  "mlp.gate_proj": (self.I, self.H), "mlp.up_proj": (self.I, self.H), "mlp.down_proj": (self.H, self.I)}
        self.layers = []
        for l in range(self.L):
            p = "model.layers.%d." % l
            layer = {
                "input_layernorm": self.float_tensor(p + "input_layernorm.weight", [self.H]),
                "post_attention_layernorm": self.float_tensor(p + "post_attention_layernorm.weight", [self.H]),
                "attn_sub_norm": self.float_tensor(p + "self_attn.attn_sub_norm.weight", [self.H]),
                "ffn_sub_norm": self.float_tensor(p + "mlp.ffn_sub_norm.weight", [self.I]),
            }
            for name in LINEAR_NAMES:
                out, inp = shapes[name]
                module = p + name
                plain = self.mode == "none" or any(s and s in module for s in skip)
                layer[name] = self.linear(module, out, inp, plain)
            self.layers.append(layer)

        extra = sorted(set(self.tensors) - self.used)
        if extra:
            raise FormatError("unexpected tensors in the checkpoint: %s" % extra[:10])

        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.int64).float() / self.hd))
        self.inv_freq = inv_freq

    def raw(self, name):
        if name not in self.tensors:
            raise FormatError("missing tensor %r" % name)
        self.used.add(name)
        return self.tensors[name]

    def float_tensor(self, name, shape):
        dtype, t = self.raw(name)
        if dtype not in FLOAT_DTYPES:
            raise FormatError("%r has dtype %s, expected a float dtype" % (name, dtype))
        if list(t.shape) != shape:
            raise FormatError("%r has shape %s, expected %s" % (name, list(t.shape), shape))
        return t.float()

    def linear(self, module, out, inp, plain):
        if plain:
            return Linear("plain", self.float_tensor(module + ".weight", [out, inp]))
        if self.mode == "online":
            return Linear("online", absmean_ternary(self.float_tensor(module + ".weight", [out, inp])))
        dtype, packed = self.raw(module + ".weight")
        rows = (out + 3) // 4
        if dtype != "U8" or list(packed.shape) != [rows, inp]:
            raise FormatError("%s.weight is %s %s, expected U8 [%d, %d] (4 ternary rows per byte)"
                              % (module, dtype, list(packed.shape), rows, inp))
        weight = unpack_ternary(packed)[:out].float()
        sdtype, scale = self.raw(module + ".weight_scale")
        if sdtype not in FLOAT_DTYPES or scale.numel() != 1 or scale.dim() > 1:
            raise FormatError("%s.weight_scale is %s %s, expected a float of shape [1]"
                              % (module, sdtype, list(scale.shape)))
        return Linear(self.linear_class, weight, scale.float().reshape(1))

    def rope(self, x, positions):
        # x: [heads, T, hd]; NeoX-style halves: out = x*cos + rotate_half(x)*sin, rotate_half = cat(-x2, x1)
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        half = self.hd // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def forward(self, ids):
        T = len(ids)
        for t in ids:
            if not isinstance(t, int) or not 0 <= t < self.V:
                raise ValueError("token id %r is outside [0, %d)" % (t, self.V))
        h = self.embed[torch.tensor(ids, dtype=torch.long)]
        positions = torch.arange(T)
        causal = torch.full((T, T), float("-inf")).triu(1)
        group = self.nh // self.nkv
        for layer in self.layers:
            a = rms_norm(h, layer["input_layernorm"], self.eps)
            q = layer["self_attn.q_proj"](a).view(T, self.nh, self.hd).transpose(0, 1)
            k = layer["self_attn.k_proj"](a).view(T, self.nkv, self.hd).transpose(0, 1)
            v = layer["self_attn.v_proj"](a).view(T, self.nkv, self.hd).transpose(0, 1)
            q, k = self.rope(q, positions), self.rope(k, positions)
            k = k.repeat_interleave(group, dim=0)
            v = v.repeat_interleave(group, dim=0)
            scores = (q @ k.transpose(1, 2)) * self.hd ** -0.5 + causal
            attn = torch.softmax(scores, dim=-1) @ v
            attn = attn.transpose(0, 1).reshape(T, self.nh * self.hd)
            h = h + layer["self_attn.o_proj"](rms_norm(attn, layer["attn_sub_norm"], self.eps))

            m = rms_norm(h, layer["post_attention_layernorm"], self.eps)
            g = layer["mlp.gate_proj"](m)
            act = torch.relu(g).pow(2) if self.act == "relu2" else g * torch.sigmoid(g)
            inner = act * layer["mlp.up_proj"](m)
            h = h + layer["mlp.down_proj"](rms_norm(inner, layer["ffn_sub_norm"], self.eps))
        return rms_norm(h, self.norm, self.eps) @ self.lm_head.t()


# ----------------------------------------------------------------------------- entry points

def selftest():
    # transformers' unpack_weights docstring: these two packed rows decode to the 8 x 2 matrix below.
    packed = torch.tensor([[0b10100001, 0b00011000], [0b10010000, 0b00001010]], dtype=torch.uint8)
    expected = torch.tensor([[0, -1], [-1, 1], [-1, 1], [-1, 1], [1, 0], [0, -1], [1, -1], [1, -1]],
                            dtype=torch.int8)
    assert torch.equal(unpack_ternary(packed), expected), unpack_ternary(packed)
    assert torch.equal(pack_ternary(expected), packed)
    gen = torch.Generator().manual_seed(0)
    for rows, cols in ((4, 1), (8, 3), (64, 17), (256, 40)):
        values = torch.randint(-1, 2, (rows, cols), generator=gen)
        p = pack_ternary(values)
        assert p.dtype == torch.uint8 and list(p.shape) == [rows // 4, cols]
        assert torch.equal(unpack_ternary(p), values.to(torch.int8))
    print("selftest ok")


def main(argv):
    if argv[1:] == ["--selftest"]:
        selftest()
        return 0
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    folder, tokens_path, out_path = argv[1:]
    torch.set_grad_enabled(False)
    with open(tokens_path) as f:
        sequences = json.load(f)["sequences"]
    model = Model(folder)
    logits = [model.forward(list(seq)).tolist() for seq in sequences]
    for i, seq_logits in enumerate(logits):
        if not all(math.isfinite(x) for row in seq_logits for x in row):
            raise FormatError("sequence %d produced non-finite logits" % i)
    with open(out_path, "w") as f:
        json.dump({"logits": logits}, f)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except FormatError as e:
        print("hf_bitnet_reference: error: %s" % e, file=sys.stderr)
        sys.exit(1)
