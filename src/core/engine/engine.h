#pragma once
// The packed inference engine: the BitNet student forward pass (src/torch/model/model.h, same math) over
// a PackedModel, with a KV cache, the training-time activation quantizers (A8, or the A4 hybrid:
// 4-bit on the q/k/v and gate/up inputs, 8-bit on the wo and w_down inputs), integer ternary
// kernels and a fork-join thread pool. Tokens are appended at position() and later calls continue
// the same sequence until reset().
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "core/engine/act_quant.h"
#include "core/engine/kernels.h"
#include "core/engine/packed_model.h"
#include "core/engine/thread_pool.h"

namespace bkd {

struct EngineOptions {
  QuantMode mode = QuantMode::TernaryA8;  // TernaryA8 or TernaryA4 (the packed engine has no fp mode)
  int threads = 0;                        // 0: one per online CPU
  int64_t max_seq_len = 0;                // KV cache length; 0: the model's max_seq_len
  const KernelSet* kernels = nullptr;     // nullptr: best_kernels()
  // Regions with less work run on the calling thread (work_chunks in thread_pool.h); 0 splits
  // every region (tests of the parallel paths on tiny models).
  int64_t parallel_min_bytes = kParallelMinBytes;
};

// Sees the internals of a forward pass (the dry-run's statistics, debugging). Called on the
// calling thread, after each step completes.
class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  // A BitLinear ran: its quantized input (x.rows tokens) and exact int32 accumulators.
  virtual void on_bitlinear(int64_t layer, const char* name, const QuantizedActs& x, const TernaryMatrix& w,
                            const int32_t* acc, int64_t acc_stride) {}
  // The residual stream right after a projection's output was added to it (`after`: "wo" or
  // "w_down"): rows x d.
  virtual void on_residual(int64_t layer, const char* after, const float* x, int64_t rows, int64_t d) {}
  // The final hidden states (after final_norm, the head's input): rows x d.
  virtual void on_final_hidden(const float* h, int64_t rows, int64_t d) {}
};

// Where the wall time of the last forward() or stream_weights() went: the regions that stream the
// ternary projections, the head's region, and the whole call (the rest ran between regions: norms,
// quantizers, RoPE, the KV cache, attention). The dry-run sets a step's parts against its probe's.
struct StepTimes {
  double projections_s = 0, head_s = 0, total_s = 0;
};

class Engine {
 public:
  Engine(const PackedModel& model, EngineOptions opts = {});
  ~Engine();

  // Runs n tokens at positions position() .. position()+n-1. logits receives vocab floats for the
  // last token, or n * vocab for every token when all_logits (nullptr: skip the head).
  void forward(const int32_t* tokens, int64_t n, float* logits, bool all_logits = false);
  void reset() { pos_ = 0; }
  // Forgets every token at or after `pos` (<= position()): the next token is written at `pos`.
  void rewind(int64_t pos);
  int64_t position() const { return pos_; }
  int64_t max_seq_len() const { return max_seq_; }
  const ModelConfig& config() const { return model_.cfg; }
  const KernelSet& kernels() const { return *kernels_; }
  int threads() const { return pool_.size(); }
  QuantMode mode() const { return opts_.mode; }
  void set_observer(ForwardObserver* o) { observer_ = o; }
  // The bandwidth probe of the dry-run: streams every weight byte a one-token forward reads (each
  // projection group's packed rows, then the head table), in the same regions, chunks and threads
  // as forward() uses, and no arithmetic. Returns the bytes read. The projections go through the
  // kernel set's read_bytes (`plain`) or its read_ternary, the GEMV's own loads and prefetches
  // (read_bytes where the set has none); the head always through read_bytes.
  enum class ProbeReads { Plain, KernelPattern };
  uint64_t stream_weights(ProbeReads reads = ProbeReads::KernelPattern);
  const StepTimes& last_times() const { return times_; }

 private:
  struct Projection {
    const char* name;
    const TernaryMatrix* w;
    float* out;
    int64_t out_stride;
  };
  // One region for the projections that share an input (q|k|v, gate|up): their rows are one range.
  void bitlinear(int64_t layer, std::initializer_list<Projection> projs, const QuantizedActs& x);
  // RMSNorm of each row followed by its activation quantizer, row by row while the row is in L1.
  void norm_quantize(const float* x, int64_t rows, int64_t d, const std::vector<float>& gain, ActBits bits);
  void attention(int64_t layer, int64_t rows);
  // Where position pos of one KV head of a layer starts in k_cache_ / v_cache_ (the one owner of
  // their layout, below).
  int64_t kv_offset(int64_t layer, int64_t kv_head, int64_t pos) const {
    return ((layer * model_.cfg.n_kv_heads + kv_head) * max_seq_ + pos) * model_.cfg.head_dim();
  }
  void head(const float* h, int64_t rows, float* logits);

  const PackedModel& model_;
  EngineOptions opts_;
  const KernelSet* kernels_;
  ThreadPool pool_;
  ForwardObserver* observer_ = nullptr;
  StepTimes times_;
  int64_t max_seq_ = 0, pos_ = 0;
  // K and V are [layer][kv_head][pos][head_dim]: each head's positions are one run, which attention
  // streams with its prefetch (a transposed K took one cache line per element written; by position,
  // each head read 512 bytes at a 16 KiB stride). Huge pages when large. docs/ENGINE.md has figures.
  AlignedBuffer<float> k_cache_, v_cache_;
  std::vector<float> scores_;  // attention scratch: [chunk][max_seq]
  std::vector<uint64_t> probe_sink_;  // keeps stream_weights()' reads live
  std::vector<float> rope_cos_, rope_sin_;  // [pos][head_dim / 2]
  // Scratch for up to `cap_` tokens.
  int64_t cap_ = 0;
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, final_;
  std::vector<int32_t> acc_;
  QuantizedActs qa_;
  void ensure_capacity(int64_t rows);
};

}  // namespace bkd
