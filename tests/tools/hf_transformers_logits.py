#!/usr/bin/env python3
"""Logits of a Hugging Face model folder from the real `transformers` library, where it is installed
(it is not packaged for Debian 12; Colab and GPU machines have it). Used by the opt-in test
HfTeacher.MatchesTransformersWhereInstalled (tests/torch/hf_teacher_test.cc).

usage: hf_transformers_logits.py --model DIR --ids 1,2,3 --out PREFIX [--dtype float64|float32|bfloat16] [--device cpu|cuda]
writes PREFIX.bin (T*V little-endian float64, row-major) and PREFIX.json {"shape", "transformers", "dtype", "device"}.
Eager attention, so no fused kernel changes the arithmetic; exit 3 when transformers is missing."""
import argparse, json, sys

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True); ap.add_argument("--ids", required=True); ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="float64"); ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    try:
        import torch, transformers
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        print(f"transformers is not installed here: {e}", file=sys.stderr); sys.exit(3)
    dtype = getattr(torch, a.dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype, attn_implementation="eager")
    except TypeError:  # transformers before 4.56 names it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=dtype, attn_implementation="eager")
    model = model.to(a.device).eval()
    ids = torch.tensor([[int(x) for x in a.ids.split(",")]], device=a.device)
    with torch.no_grad():
        logits = model(ids).logits[0].double().cpu().contiguous()
    logits.numpy().astype("<f8").tofile(a.out + ".bin")
    json.dump({"shape": list(logits.shape), "transformers": transformers.__version__, "dtype": a.dtype, "device": a.device},
              open(a.out + ".json", "w"))

if __name__ == "__main__":
    main()
