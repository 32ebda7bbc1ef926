// TrainOptions from the settings table, per role.
#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "torch/train/trainer.h"

namespace bkd {
namespace {

// One role's model shape, every key spelled out (the settings-key test checks each against the table).
struct ModelShape {
  int64_t d_model, layers, heads, kv_heads, ffn;
};

ModelShape teacher_shape(const Settings& s) {
  const int64_t heads = s.i64("TEACHER_HEADS");
  return {s.i64("TEACHER_D_MODEL"), s.i64("TEACHER_LAYERS"), heads, heads, s.i64("TEACHER_FFN")};
}

ModelShape student_shape(const Settings& s) {
  return {s.i64("STUDENT_D_MODEL"), s.i64("STUDENT_LAYERS"), s.i64("STUDENT_HEADS"), s.i64("STUDENT_KV_HEADS"),
          s.i64("STUDENT_FFN")};
}

}  // namespace

TrainOptions train_options_from_settings(const Settings& s, const std::string& role, int64_t vocab_size) {
  TrainOptions o;
  o.role = role;
  const bool teacher = role == "teacher";
  const ModelShape shape = teacher ? teacher_shape(s) : student_shape(s);
  o.model.vocab_size = vocab_size;
  o.model.d_model = shape.d_model;
  o.model.n_layers = shape.layers;
  o.model.n_heads = shape.heads;
  o.model.n_kv_heads = shape.kv_heads;
  o.model.ffn_dim = shape.ffn;
  o.seq_len = s.i64("SEQ_LEN");
  // The teacher scores text in GPT-2 tokens, which can outnumber student tokens: give RoPE room.
  o.model.max_seq_len = teacher ? 2 * o.seq_len : o.seq_len;
  o.model.rope_theta = s.f64("ROPE_THETA");
  o.model.tie_embeddings = teacher ? true : s.flag("TIE_EMBEDDINGS");
  o.model.ffn_activation = teacher ? FfnActivation::Relu2 : ffn_activation_from_string(s.str("STUDENT_FFN_ACTIVATION"));
  o.model.bitlinear = !teacher;
  o.start_mode = teacher ? QuantMode::FullPrecision : QuantMode::TernaryA8;
  o.flip_enabled = !teacher;
  o.flip_at = s.f64("FLIP_AT");
  o.budget_tokens = teacher ? s.i64("TEACHER_BUDGET_TOKENS") : s.i64("BUDGET_TOKENS");
  o.batch_size = s.i64("BATCH_SIZE");
  o.grad_accum = s.i64("GRAD_ACCUM");
  o.schedule.kind = s.str("SCHEDULE");
  o.schedule.lr = s.f64("LR");
  o.schedule.min_lr_ratio = s.f64("MIN_LR_RATIO");
  o.schedule.warmup_steps = s.i64("WARMUP_STEPS");
  o.schedule.weight_decay = s.f64("WEIGHT_DECAY");
  o.clip_norm = s.f64("CLIP_NORM");
  o.loss.kd = s.f64("KD_WEIGHT");
  o.loss.ce = s.f64("CE_WEIGHT");
  o.loss.format = teacher ? 0.0 : s.f64("FORMAT_WEIGHT");
  o.loss.temperature = s.f64("KD_TEMPERATURE");
  o.ckpt_every = s.i64("CKPT_EVERY");
  o.ckpt_keep = s.i64("CKPT_KEEP");
  o.seed = uint64_t(s.i64("SEED"));
  o.threads = int(s.i64("THREADS"));
  o.device = s.str("DEVICE");
  o.precision = s.str("PRECISION");
  o.dist_bucket_bytes = s.i64("DIST_BUCKET_MIB") << 20;
  o.ckpt_dir = RunLayout(s).checkpoints();
  o.settings = &s;
  return o;
}

}  // namespace bkd
