#include "torch/model/model.h"

#include <cmath>
#include <limits>

#include "core/util/error.h"
#include "torch/kernels/attention_softmax.h"
#include "torch/model/quant.h"
#include "torch/kernels/rms_norm.h"

namespace bkd {
namespace {

torch::Tensor normal_init(torch::IntArrayRef shape, double std) { return torch::randn(shape) * std; }

// relu(g)^2 * u: one saved pair, two element-wise passes backward instead of autograd's chain of five.
struct Relu2GateFn : public torch::autograd::Function<Relu2GateFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor g, torch::Tensor u) {
    ctx->save_for_backward({g, u});
    torch::Tensor r = torch::relu(g);
    return r * r * u;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                  torch::autograd::variable_list grad) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& g = saved[0];
    const torch::Tensor& u = saved[1];
    torch::Tensor r = torch::relu(g);
    torch::Tensor go = grad[0];
    torch::Tensor du = go * r * r;
    torch::Tensor dg = go * u * r * 2;
    return {dg, du};
  }
};

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double eps) {
  return rms_norm_fused(x, gain, eps);
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  torch::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);
}

torch::Tensor relu2_gate(const torch::Tensor& g, const torch::Tensor& u) { return Relu2GateFn::apply(g, u); }

BlockImpl::BlockImpl(const ModelConfig& c, int64_t layer_index, WeightInit init) {
  const int64_t D = c.d_model, F = c.ffn_dim, Q = c.q_dim(), KV = c.kv_dim(), hd = c.head_dim();
  const double std = 0.02, out_std = 0.02 / std::sqrt(2.0 * double(c.n_layers));
  const bool random = init == WeightInit::Random;
  auto matrix = [&](int64_t out, int64_t in, double s) { return random ? normal_init({out, in}, s) : torch::empty({out, in}); };
  auto ones = [&](int64_t n) { return random ? torch::ones({n}) : torch::empty({n}); };
  auto zeros = [&](int64_t n) { return random ? torch::zeros({n}) : torch::empty({n}); };
  attn_norm = register_parameter("attn_norm", ones(D));
  wq = register_parameter("wq", matrix(Q, D, std));
  wk = register_parameter("wk", matrix(KV, D, std));
  wv = register_parameter("wv", matrix(KV, D, std));
  if (c.qkv_bias) {
    bq = register_parameter("bq", zeros(Q));
    bk = register_parameter("bk", zeros(KV));
    bv = register_parameter("bv", zeros(KV));
  }
  if (c.qk_norm) {
    q_norm = register_parameter("q_norm", ones(hd));
    k_norm = register_parameter("k_norm", ones(hd));
  }
  if (c.sub_norm) attn_sub_norm = register_parameter("attn_sub_norm", ones(Q));
  wo = register_parameter("wo", matrix(D, Q, out_std));
  if (c.o_bias) bo = register_parameter("bo", zeros(D));
  ffn_norm = register_parameter("ffn_norm", ones(D));
  w_gate = register_parameter("w_gate", matrix(F, D, std));
  w_up = register_parameter("w_up", matrix(F, D, std));
  if (c.sub_norm) ffn_sub_norm = register_parameter("ffn_sub_norm", ones(F));
  w_down = register_parameter("w_down", matrix(D, F, out_std));
}

TransformerImpl::TransformerImpl(const ModelConfig& cfg, QuantMode mode, WeightInit init) : cfg_(cfg), mode_(mode) {
  cfg_.validate();
  if (!cfg_.bitlinear && mode != QuantMode::FullPrecision)
    throw Error("model config has bitlinear=false but quantization mode is " + to_string(mode),
                "use mode fp for a full-precision model");
  const bool random = init == WeightInit::Random;
  auto table = [&] { return random ? normal_init({cfg_.vocab_size, cfg_.d_model}, 0.02) : torch::empty({cfg_.vocab_size, cfg_.d_model}); };
  embed = register_parameter("embed", table());
  if (!cfg_.tie_embeddings) lm_head = register_parameter("lm_head", table());
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg_.n_layers; ++i) layers->push_back(Block(cfg_, i, init));
  final_norm = register_parameter("final_norm", random ? torch::ones({cfg_.d_model}) : torch::empty({cfg_.d_model}));

  const std::vector<double> inv_freq = rope_inv_freq(cfg_);
  torch::Tensor inv = torch::tensor(inv_freq, torch::kDouble);
  torch::Tensor ang = torch::outer(torch::arange(0, cfg_.max_seq_len, torch::kDouble), inv);
  rope_cos_ = register_buffer("rope_cos", ang.cos().to(torch::kFloat));
  rope_sin_ = register_buffer("rope_sin", ang.sin().to(torch::kFloat));
}

void TransformerImpl::set_quant_mode(QuantMode m) {
  if (!cfg_.bitlinear && m != QuantMode::FullPrecision)
    throw Error("cannot quantize a full-precision (bitlinear=false) model");
  mode_ = m;
  drop_inference_cache();
}

void TransformerImpl::cache_weights_for_inference() {
  torch::NoGradGuard ng;
  const bool quant = mode_ != QuantMode::FullPrecision;
  auto weight = [&](const torch::Tensor& w) { return quant ? ternary_weight_fused(w) : w; };
  for (const auto& m : *layers) {
    BlockImpl& b = *m->as<BlockImpl>();
    b.cached_qkv = torch::cat({weight(b.wq), weight(b.wk), weight(b.wv)}, 0);
    b.cached_wo = weight(b.wo);
    b.cached_gu = torch::cat({weight(b.w_gate), weight(b.w_up)}, 0);
    b.cached_down = weight(b.w_down);
  }
}

void TransformerImpl::drop_inference_cache() {
  for (const auto& m : *layers) {
    BlockImpl& b = *m->as<BlockImpl>();
    b.cached_qkv = b.cached_wo = b.cached_gu = b.cached_down = torch::Tensor();
  }
}

torch::Tensor TransformerImpl::attention_mask(const torch::Tensor& key_valid, int64_t Tq, int64_t past,
                                              const torch::Device& dev) {
  // Query i sits at position past + i and sees keys 0..past + i.
  const int64_t Tk = past + Tq;
  auto opts = torch::TensorOptions().dtype(torch::kBool).device(dev);
  torch::Tensor causal = torch::ones({Tq, Tk}, opts).tril(past);  // [q, k]
  torch::Tensor allowed = causal.view({1, 1, Tq, Tk});
  if (key_valid.defined()) {
    torch::Tensor self = causal.triu(past).view({1, 1, Tq, Tk});  // each query's own key
    allowed = allowed & (key_valid.to(torch::kBool).view({-1, 1, 1, Tk}) | self);
  }
  return torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(torch::kFloat).device(dev))
      .masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
}

torch::Tensor TransformerImpl::block_forward(int64_t layer, BlockImpl& b, const torch::Tensor& x, const torch::Tensor& mask,
                                             const torch::Tensor& cos, const torch::Tensor& sin, torch::Tensor* k_cache,
                                             torch::Tensor* v_cache) {
  const int64_t B = x.size(0), T = x.size(1), H = cfg_.n_heads, HKV = cfg_.n_kv_heads, hd = cfg_.head_dim();
  const int64_t Q = cfg_.q_dim(), KV = cfg_.kv_dim();
  const bool quant = mode_ != QuantMode::FullPrecision;
  // Every quantized matmul input comes straight from a norm: norm and quantizer run as one pass.
  const double eps = cfg_.norm_eps;
  auto in_norm = [&](const torch::Tensor& t, const torch::Tensor& gain) {  // inputs of q/k/v and gate/up
    if (!quant) return rms_norm(t, gain, eps);
    return rms_norm_quant(t, gain, eps, mode_ == QuantMode::TernaryA4 ? NormQuant::A4 : NormQuant::A8);
  };
  auto out_norm = [&](const torch::Tensor& t, const torch::Tensor& gain) {  // inputs of wo, w_down
    return quant ? rms_norm_quant(t, gain, eps, NormQuant::A8) : rms_norm(t, gain, eps);
  };
  auto weight = [&](const torch::Tensor& w) { return quant ? ternary_weight_ste(w) : w; };
  auto observed = [&](LinearInput which, const torch::Tensor& input) -> const torch::Tensor& {
    if (input_observer_) input_observer_(layer, which, input);
    return input;
  };

  // Attention: one matmul for q, k, v (each weight keeps its own ternary scale).
  torch::Tensor a = observed(LinearInput::Qkv, in_norm(x, b.attn_norm));
  torch::Tensor qkv_bias = cfg_.qkv_bias ? torch::cat({b.bq, b.bk, b.bv}) : torch::Tensor();
  if (b.cached_qkv.defined() && is_training())
    throw Error("the model holds an inference weight cache while training", "call drop_inference_cache() first");
  const bool cached = b.cached_qkv.defined();
  torch::Tensor qkv = torch::linear(a, cached ? b.cached_qkv : torch::cat({weight(b.wq), weight(b.wk), weight(b.wv)}, 0), qkv_bias);
  auto parts = qkv.split_with_sizes({Q, KV, KV}, -1);
  torch::Tensor q = parts[0].view({B, T, H, hd}), k = parts[1].view({B, T, HKV, hd});
  if (cfg_.qk_norm) q = rms_norm(q, b.q_norm, eps), k = rms_norm(k, b.k_norm, eps);  // per head, before RoPE
  q = apply_rope(q.transpose(1, 2), cos, sin);
  k = apply_rope(k.transpose(1, 2), cos, sin);
  torch::Tensor v = parts[2].view({B, T, HKV, hd}).transpose(1, 2);
  if (k_cache) {
    if (k_cache->defined()) k = torch::cat({*k_cache, k}, 2), v = torch::cat({*v_cache, v}, 2);
    *k_cache = k, *v_cache = v;
  }
  const int64_t Tk = k.size(2);
  if (HKV != H) {
    const int64_t rep = H / HKV;
    k = k.unsqueeze(2).expand({B, HKV, rep, Tk, hd}).reshape({B, H, Tk, hd});
    v = v.unsqueeze(2).expand({B, HKV, rep, Tk, hd}).reshape({B, H, Tk, hd});
  }
  torch::Tensor probs = attention_softmax(torch::matmul(q, k.transpose(-2, -1)), mask, 1.0 / std::sqrt(double(hd)));
  torch::Tensor att = torch::matmul(probs, v).transpose(1, 2).reshape({B, T, Q});
  torch::Tensor o_in = observed(LinearInput::Wo, cfg_.sub_norm ? out_norm(att, b.attn_sub_norm) : att);
  torch::Tensor h = x + torch::linear(o_in, cached ? b.cached_wo : weight(b.wo), b.bo);

  // Gated FFN (squared ReLU, or SiLU): one matmul for gate and up.
  torch::Tensor f = observed(LinearInput::GateUp, in_norm(h, b.ffn_norm));
  torch::Tensor gu = torch::linear(f, cached ? b.cached_gu : torch::cat({weight(b.w_gate), weight(b.w_up)}, 0));
  auto gparts = gu.chunk(2, -1);
  torch::Tensor inner = cfg_.ffn_activation == FfnActivation::Silu ? torch::silu(gparts[0]) * gparts[1]
                                                                   : relu2_gate(gparts[0], gparts[1]);
  torch::Tensor d_in = observed(LinearInput::Down, cfg_.sub_norm ? out_norm(inner, b.ffn_sub_norm) : inner);
  return h + torch::linear(d_in, cached ? b.cached_down : weight(b.w_down));
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& ids, const torch::Tensor& key_valid) {
  const int64_t T = ids.size(1);
  if (T > cfg_.max_seq_len)
    throw Error("sequence of " + std::to_string(T) + " tokens is longer than the model's max_seq_len " +
                std::to_string(cfg_.max_seq_len));
  torch::Tensor mask = attention_mask(key_valid, T, 0, ids.device());
  torch::Tensor cos = rope_cos_.narrow(0, 0, T), sin = rope_sin_.narrow(0, 0, T);
  torch::Tensor x = torch::embedding(embed, ids);
  for (size_t i = 0; i < layers->size(); ++i)
    x = block_forward(static_cast<int64_t>(i), *layers[i]->as<BlockImpl>(), x, mask, cos, sin);
  return torch::linear(rms_norm(x, final_norm, cfg_.norm_eps), output_weight());
}

torch::Tensor TransformerImpl::forward_cached(const torch::Tensor& ids, KvCache& cache) {
  if (ids.dim() != 2 || ids.size(0) != 1 || ids.size(1) == 0)
    throw Error("forward_cached: expected ids of shape [1, n] with n >= 1");
  const int64_t n = ids.size(1), past = cache.length(), T = past + n;
  if (T > cfg_.max_seq_len)
    throw Error("forward_cached: " + std::to_string(past) + " cached + " + std::to_string(n) +
                    " new tokens exceed the model's max_seq_len " + std::to_string(cfg_.max_seq_len),
                "clear the cache and run the last max_seq_len tokens");
  cache.k.resize(size_t(cfg_.n_layers)), cache.v.resize(size_t(cfg_.n_layers));
  torch::Tensor mask = attention_mask({}, n, past, ids.device());
  torch::Tensor cos = rope_cos_.narrow(0, past, n), sin = rope_sin_.narrow(0, past, n);
  torch::Tensor x = torch::embedding(embed, ids);
  for (size_t i = 0; i < layers->size(); ++i)
    x = block_forward(static_cast<int64_t>(i), *layers[i]->as<BlockImpl>(), x, mask, cos, sin, &cache.k[i], &cache.v[i]);
  return torch::linear(rms_norm(x, final_norm, cfg_.norm_eps), output_weight());
}

void KvCache::truncate(int64_t n) {
  if (n >= length()) return;
  if (n <= 0) return clear();
  for (auto& t : k) t = t.narrow(2, 0, n);
  for (auto& t : v) t = t.narrow(2, 0, n);
}

}  // namespace bkd
