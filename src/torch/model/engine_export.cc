#include "torch/model/engine_export.h"

#include "core/util/error.h"
#include "torch/model/checkpoint.h"

namespace bkd {
namespace {
std::vector<float> to_vec(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
}  // namespace

FloatModelWeights float_weights_of(Transformer& m) {
  FloatModelWeights w;
  w.cfg = m->config();
  w.embed = to_vec(m->embed);
  if (!w.cfg.tie_embeddings) w.lm_head = to_vec(m->lm_head);
  w.final_norm = to_vec(m->final_norm);
  for (const auto& mod : *m->layers) {
    const BlockImpl& b = *mod->as<BlockImpl>();
    w.layers.push_back({to_vec(b.attn_norm), to_vec(b.wq), to_vec(b.wk), to_vec(b.wv), to_vec(b.attn_sub_norm),
                        to_vec(b.wo), to_vec(b.ffn_norm), to_vec(b.w_gate), to_vec(b.w_up), to_vec(b.ffn_sub_norm),
                        to_vec(b.w_down)});
  }
  return w;
}

StudentCheckpoint load_student_checkpoint(const std::string& dir) {
  const nlohmann::json st = load_checkpoint_state(dir);
  StudentCheckpoint c;
  c.dir = dir;
  const ModelConfig cfg = st.at("model_config").get<ModelConfig>();
  c.mode = quant_mode_from_string(st.at("quant_mode").get<std::string>());
  c.step = st.value("step", int64_t(0));
  if (!cfg.bitlinear || c.mode == QuantMode::FullPrecision)
    throw Error("checkpoint " + dir + " is a full-precision model", "export packs BitNet (ternary) students only");
  c.model = Transformer(cfg, c.mode);
  load_model_weights(dir, c.model, false);
  c.model->eval();
  return c;
}

PackedModel pack_student(StudentCheckpoint& ckpt, TableFormat tables) {
  PackedModel p = pack_model(float_weights_of(ckpt.model), tables);
  p.trained_mode = ckpt.mode;
  return p;
}

}  // namespace bkd
