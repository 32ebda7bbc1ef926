#include "core/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/util/error.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {
constexpr int64_t kRowAlign = 16;  // chunks start on whole 4-row kernel tiles
// Regions of attention tasks: at most this many chunks per thread (the size of the score scratch).
constexpr int64_t kMaxChunksPerThread = 16;

// Chunks for `rows` output rows whose work is `work_bytes` (work_chunks in thread_pool.h), none
// smaller than kRowAlign rows.
int64_t row_chunks(int64_t rows, int64_t work_bytes, int threads, int64_t min_bytes) {
  return std::max<int64_t>(1, std::min<int64_t>(work_chunks(work_bytes, threads, min_bytes), rows / kRowAlign));
}

// Over raw pointers: through the vectors' operator[] GCC reloads the data pointer every iteration
// and does not vectorize.
void add_in_place(float* __restrict x, const float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// out = x / rms(x) * gain, the sum of squares in double (the training side's order is irrelevant:
// the parity check's bound, torch/model/engine_parity.h, covers float rounding). Eight partial
// sums: one running sum is a chain of dependent additions, ~4 cycles per element (7B decode:
// ~23 us per layer on one thread, while the other waits).
void rms_norm_row(const float* x, int64_t d, const float* gain, float eps, float* out) {
  constexpr int64_t kPartials = 8;
  double part[kPartials] = {};
  int64_t k = 0;
  for (; k + kPartials <= d; k += kPartials)
    for (int64_t j = 0; j < kPartials; ++j) part[j] += static_cast<double>(x[k + j]) * x[k + j];
  double ss = 0;
  for (; k < d; ++k) ss += static_cast<double>(x[k]) * x[k];
  for (int64_t j = 0; j < kPartials; ++j) ss += part[j];
  const float r = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(d)) + eps);
  for (k = 0; k < d; ++k) out[k] = x[k] * r * gain[k];
}
}  // namespace

Engine::Engine(const PackedModel& model, EngineOptions opts)
    : model_(model), opts_(opts), kernels_(opts.kernels ? opts.kernels : &best_kernels()), pool_(opts.threads) {
  model_.validate();
  const ModelConfig& c = model_.cfg;
  if (opts_.mode == QuantMode::FullPrecision || !c.bitlinear)
    throw Error("the packed engine runs ternary (BitLinear) students only", "use quantization mode a8 or a4");
  max_seq_ = opts_.max_seq_len > 0 ? opts_.max_seq_len : c.max_seq_len;
  const int64_t KV = c.n_kv_heads * c.head_dim(), hd = c.head_dim(), half = hd / 2;
  k_cache_.resize(static_cast<size_t>(c.n_layers * max_seq_ * KV));
  v_cache_.resize(k_cache_.size());
  std::fill_n(k_cache_.data(), k_cache_.size(), 0.0f);
  std::fill_n(v_cache_.data(), v_cache_.size(), 0.0f);
  scores_.assign(static_cast<size_t>(kMaxChunksPerThread * pool_.size() * max_seq_), 0.0f);
  // Same construction as the training side: angles in double, cos/sin rounded to float.
  rope_cos_.resize(static_cast<size_t>(max_seq_ * half));
  rope_sin_.resize(rope_cos_.size());
  for (int64_t i = 0; i < half; ++i) {
    const double inv = std::pow(c.rope_theta, (-static_cast<double>(i) * 2.0) / static_cast<double>(hd));
    for (int64_t p = 0; p < max_seq_; ++p) {
      const double ang = static_cast<double>(p) * inv;
      rope_cos_[p * half + i] = static_cast<float>(std::cos(ang));
      rope_sin_[p * half + i] = static_cast<float>(std::sin(ang));
    }
  }
}

Engine::~Engine() = default;

void Engine::rewind(int64_t pos) {
  if (pos < 0 || pos > pos_)
    throw Error("cannot rewind to position " + std::to_string(pos) + ": the sequence has " + std::to_string(pos_) + " tokens");
  pos_ = pos;
}

void Engine::ensure_capacity(int64_t rows) {
  if (rows <= cap_) return;
  cap_ = rows;
  const ModelConfig& c = model_.cfg;
  const int64_t D = c.d_model, F = c.ffn_dim, KV = c.n_kv_heads * c.head_dim();
  auto sz = [&](int64_t w) { return static_cast<size_t>(rows * w); };
  x_.resize(sz(D));
  h_.resize(sz(std::max(D, F)));
  q_.resize(sz(D));
  k_.resize(sz(KV));
  v_.resize(sz(KV));
  att_.resize(sz(D));
  gate_.resize(sz(F));
  up_.resize(sz(F));
  final_.resize(sz(D));
  acc_.resize(sz(std::max({D + 2 * KV, 2 * F, D})));
}

void Engine::norm_quantize(const float* x, int64_t rows, int64_t d, const std::vector<float>& gain, ActBits bits) {
  const float eps = static_cast<float>(model_.cfg.norm_eps);
  shape_acts(bits, rows, d, &qa_);
  // A prefill's rows split across the pool; ~20 operations per element count as 8 bytes of work.
  const int64_t chunks = std::min<int64_t>(rows, work_chunks(rows * d * 8, pool_.size(), opts_.parallel_min_bytes));
  pool_.run(chunks, [&](int64_t c) {
    int64_t b, e;
    split_range(rows, chunks, c, 1, &b, &e);
    for (int64_t m = b; m < e; ++m) {
      float* o = h_.data() + m * d;  // the row's own scratch
      rms_norm_row(x + m * d, d, gain.data(), eps, o);
      quantize_act_row(o, m, &qa_, kernels_->quantize_a8, kernels_->quantize_a4);
    }
  });
  // Once per region rather than once per chunk (the AMX set's activation layout).
  if (rows > 1 && kernels_->prepare_gemm) kernels_->prepare_gemm(qa_);
}

void Engine::bitlinear(int64_t layer, std::initializer_list<Projection> list, const QuantizedActs& x) {
  constexpr size_t kMaxProjs = 3;
  const Projection* projs = list.begin();
  const size_t np = list.size();
  if (np > kMaxProjs) throw Error("internal: a fused BitLinear region takes at most 3 projections");
  int64_t total = 0, bytes = 0, row_off[kMaxProjs], acc_off[kMaxProjs];
  for (size_t j = 0; j < np; ++j) {
    row_off[j] = total;
    acc_off[j] = total * x.rows;
    total += projs[j].w->rows;
    bytes += static_cast<int64_t>(projs[j].w->bytes());
  }
  const TernaryKernelFn fn = kernels_->ternary_for(x);
  const Timer timer;
  // A GEMM over x.rows tokens does x.rows times a GEMV's arithmetic.
  const int64_t chunks = row_chunks(total, bytes * x.rows, pool_.size(), opts_.parallel_min_bytes);
  pool_.run(chunks, [&](int64_t c) {
    int64_t b, e;
    split_range(total, chunks, c, kRowAlign, &b, &e);
    for (size_t j = 0; j < np; ++j) {
      const int64_t rows = projs[j].w->rows;
      const int64_t n0 = std::max(b, row_off[j]) - row_off[j], n1 = std::min(e, row_off[j] + rows) - row_off[j];
      if (n0 >= n1) continue;
      TernaryGemmArgs a;
      a.w = projs[j].w;
      a.x = &x;
      a.n0 = n0;
      a.n1 = n1;
      a.acc = acc_.data() + acc_off[j];
      a.acc_stride = rows;
      fn(a);
      scale_accumulators(a.acc + n0, x.rows, n1 - n0, rows, projs[j].w->scale, x, projs[j].out + n0,
                         projs[j].out_stride);
    }
  });
  times_.projections_s += timer.seconds();
  if (observer_)
    for (size_t j = 0; j < np; ++j)
      observer_->on_bitlinear(layer, projs[j].name, x, *projs[j].w, acc_.data() + acc_off[j], projs[j].w->rows);
}

uint64_t Engine::stream_weights(ProbeReads reads) {
  const Timer total;
  times_ = {};
  const int threads = pool_.size();
  probe_sink_.assign(static_cast<size_t>(16 * threads), 0);
  const bool pattern = reads == ProbeReads::KernelPattern && kernels_->read_ternary;
  uint64_t total_bytes = 0;
  auto stream_group = [&](std::initializer_list<const TernaryMatrix*> group) {
    int64_t total = 0, bytes = 0;
    for (const TernaryMatrix* w : group) total += w->rows, bytes += static_cast<int64_t>(w->bytes());
    const int64_t chunks = row_chunks(total, bytes, threads, opts_.parallel_min_bytes);
    const Timer timer;
    pool_.run(chunks, [&](int64_t c) {
      int64_t b, e, off = 0;
      split_range(total, chunks, c, kRowAlign, &b, &e);
      for (const TernaryMatrix* w : group) {
        const int64_t n0 = std::max(b, off) - off, n1 = std::min(e, off + w->rows) - off;
        if (n0 < n1)
          probe_sink_[c % probe_sink_.size()] += pattern ? kernels_->read_ternary(*w, n0, n1)
                                                         : kernels_->read_bytes(w->rows_from(n0), (n1 - n0) * w->row_bytes());
        off += w->rows;
      }
    });
    times_.projections_s += timer.seconds();
    total_bytes += static_cast<uint64_t>(bytes);
  };
  for (const PackedLayer& L : model_.layers) {
    stream_group({&L.wq, &L.wk, &L.wv});
    stream_group({&L.wo});
    stream_group({&L.w_gate, &L.w_up});
    stream_group({&L.w_down});
  }
  const EmbeddingTable& t = model_.head();
  const int64_t row_bytes = static_cast<int64_t>(t.cols * t.element_bytes());
  const int64_t chunks = row_chunks(t.rows, static_cast<int64_t>(t.bytes()), threads, opts_.parallel_min_bytes);
  const Timer head_timer;
  pool_.run(chunks, [&](int64_t c) {
    int64_t b, e;
    split_range(t.rows, chunks, c, kRowAlign, &b, &e);
    if (b < e) probe_sink_[c % probe_sink_.size()] += kernels_->read_bytes(t.row_data(b), (e - b) * row_bytes);
  });
  times_.head_s = head_timer.seconds();
  times_.total_s = total.seconds();
  return total_bytes + static_cast<uint64_t>(t.rows * row_bytes);
}

void Engine::attention(int64_t layer, int64_t rows) {
  const ModelConfig& c = model_.cfg;
  const int64_t D = c.d_model, H = c.n_heads, hd = c.head_dim(), group = H / c.n_kv_heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const int64_t tasks = rows * H;
  // Each task reads its keys and values up to its position: ~2 * (pos + rows) * hd floats.
  const int64_t work = tasks * (pos_ + rows) * hd * 2 * static_cast<int64_t>(sizeof(float));
  const int64_t chunks = std::min<int64_t>({tasks, work_chunks(work, pool_.size(), opts_.parallel_min_bytes), kMaxChunksPerThread * pool_.size()});
  pool_.run(chunks, [&](int64_t ci) {
    int64_t b, e;
    split_range(tasks, chunks, ci, 1, &b, &e);
    AttendArgs aa;
    aa.k_stride = hd;
    aa.v_stride = hd;
    aa.head_dim = hd;
    aa.scale = scale;
    aa.scores = scores_.data() + ci * max_seq_;
    // Task t is query row t / H, head t % H: its KV head's rows, and how many it attends to.
    auto rows_of = [&](int64_t t, const float** k, const float** v, int64_t* n) {
      const int64_t at = kv_offset(layer, t % H / group, 0);
      *k = k_cache_.data() + at, *v = v_cache_.data() + at, *n = pos_ + t / H + 1;
    };
    for (int64_t task = b; task < e; ++task) {
      const int64_t m = task / H, h = task % H;
      aa.q = q_.data() + m * D + h * hd;
      aa.out = att_.data() + m * D + h * hd;
      rows_of(task, &aa.k, &aa.v, &aa.n);
      aa.next_k = aa.next_v = nullptr, aa.next_n = 0;
      if (task + 1 < e) rows_of(task + 1, &aa.next_k, &aa.next_v, &aa.next_n);  // for the kernel to prefetch
      kernels_->attend(aa);
    }
  });
}

void Engine::head(const float* h, int64_t rows, float* logits) {
  const Timer timer;
  const EmbeddingTable& t = model_.head();
  const int64_t chunks = row_chunks(t.rows, static_cast<int64_t>(t.bytes()) * rows, pool_.size(), opts_.parallel_min_bytes);
  pool_.run(chunks, [&](int64_t c) {
    HeadArgs a;
    a.table = &t;
    a.x = h;
    a.rows = rows;
    a.x_stride = model_.cfg.d_model;
    split_range(t.rows, chunks, c, kRowAlign, &a.n0, &a.n1);
    a.out = logits;
    a.out_stride = t.rows;
    if (a.n0 < a.n1) kernels_->head(a);
  });
  times_.head_s += timer.seconds();
}

void Engine::forward(const int32_t* tokens, int64_t n, float* logits, bool all_logits) {
  const Timer total;
  times_ = {};
  const ModelConfig& c = model_.cfg;
  if (n <= 0) throw Error("forward needs at least one token");
  if (pos_ + n > max_seq_)
    throw Error("sequence would reach " + std::to_string(pos_ + n) + " tokens, past the engine's context of " +
                    std::to_string(max_seq_),
                "reset() the engine or construct it with a larger max_seq_len");
  for (int64_t m = 0; m < n; ++m)
    if (tokens[m] < 0 || tokens[m] >= c.vocab_size)
      throw Error("token id " + std::to_string(tokens[m]) + " at index " + std::to_string(m) + " is outside the vocabulary [0, " +
                  std::to_string(c.vocab_size) + ")");
  ensure_capacity(n);
  const int64_t D = c.d_model, F = c.ffn_dim, hd = c.head_dim(), half = hd / 2, KV = c.n_kv_heads * hd;
  const ActBits in_bits = opts_.mode == QuantMode::TernaryA4 ? ActBits::A4 : ActBits::A8;

  for (int64_t m = 0; m < n; ++m) model_.embed.lookup(tokens[m], x_.data() + m * D);

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const PackedLayer& L = model_.layers[l];
    // Attention block.
    norm_quantize(x_.data(), n, D, L.attn_norm, in_bits);
    bitlinear(l, {{"wq", &L.wq, q_.data(), D}, {"wk", &L.wk, k_.data(), KV}, {"wv", &L.wv, v_.data(), KV}}, qa_);
    for (int64_t m = 0; m < n; ++m) {
      const int64_t p = pos_ + m;
      const float* cs = rope_cos_.data() + p * half;
      const float* sn = rope_sin_.data() + p * half;
      auto rotate = [&](float* v, int64_t heads) {
        for (int64_t h = 0; h < heads; ++h) {
          float* x = v + h * hd;
          for (int64_t i = 0; i < half; ++i) {
            const float x1 = x[i], x2 = x[i + half];
            x[i] = x1 * cs[i] - x2 * sn[i];
            x[i + half] = x2 * cs[i] + x1 * sn[i];
          }
        }
      };
      rotate(q_.data() + m * D, c.n_heads);
      rotate(k_.data() + m * KV, c.n_kv_heads);
      for (int64_t g = 0; g < c.n_kv_heads; ++g) {
        const int64_t at = kv_offset(l, g, p);
        std::copy_n(k_.data() + m * KV + g * hd, hd, k_cache_.data() + at);
        std::copy_n(v_.data() + m * KV + g * hd, hd, v_cache_.data() + at);
      }
    }
    attention(l, n);
    norm_quantize(att_.data(), n, D, L.attn_sub_norm, ActBits::A8);
    bitlinear(l, {{"wo", &L.wo, q_.data(), D}}, qa_);
    add_in_place(x_.data(), q_.data(), n * D);
    if (observer_) observer_->on_residual(l, "wo", x_.data(), n, D);

    // Gated FFN: relu(g)^2 * u, or silu(g) * u.
    norm_quantize(x_.data(), n, D, L.ffn_norm, in_bits);
    bitlinear(l, {{"w_gate", &L.w_gate, gate_.data(), F}, {"w_up", &L.w_up, up_.data(), F}}, qa_);
    if (model_.cfg.ffn_activation == FfnActivation::Silu) {
      kernels_->silu_gate(gate_.data(), up_.data(), n * F);
    } else {
      kernels_->relu2_gate(gate_.data(), up_.data(), n * F);
    }
    norm_quantize(gate_.data(), n, F, L.ffn_sub_norm, ActBits::A8);
    bitlinear(l, {{"w_down", &L.w_down, q_.data(), D}}, qa_);
    add_in_place(x_.data(), q_.data(), n * D);
    if (observer_) observer_->on_residual(l, "w_down", x_.data(), n, D);
  }

  const float eps = static_cast<float>(c.norm_eps);
  for (int64_t m = 0; m < n; ++m) rms_norm_row(x_.data() + m * D, D, model_.final_norm.data(), eps, final_.data() + m * D);
  if (observer_) observer_->on_final_hidden(final_.data(), n, D);
  pos_ += n;
  if (logits) {
    if (all_logits) head(final_.data(), n, logits);
    else head(final_.data() + (n - 1) * D, 1, logits);
  }
  times_.total_s = total.seconds();
}

}  // namespace bkd
