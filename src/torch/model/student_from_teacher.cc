#include "torch/model/student_from_teacher.h"

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/model/hf_config.h"
#include "core/util/error.h"
#include "torch/model/checkpoint.h"
#include "torch/model/model_api.h"
#include "torch/model/vocab_map.h"

namespace bkd {

ModelConfig student_config_of_teacher(const ModelConfig& teacher, int64_t external_vocab, int64_t max_seq_len) {
  ModelConfig c = teacher;
  c.vocab_size = external_vocab;
  c.max_seq_len = max_seq_len;
  c.bitlinear = true;
  c.sub_norm = true;
  c.validate();
  return c;
}

ModelConfig teacher_shaped_student_config(const Settings& s, int64_t max_seq_len) {
  if (const std::string dir = s.str("TEACHER_MODEL_DIR"); !dir.empty()) {
    const HfModelInfo info = read_hf_config(dir);
    return student_config_of_teacher(info.config, info.config.vocab_size, max_seq_len);
  }
  const std::string role_dir = RunLayout(s).role_checkpoints("teacher");
  const auto ck = latest_checkpoint(role_dir);
  if (!ck)
    throw Error("a student of the teacher's shape needs the teacher, and " + role_dir + " has no checkpoint",
                "train the teacher first: `bitnet-kde train --role teacher` (or `make teacher`)");
  const nlohmann::json st = load_checkpoint_state(*ck);
  const ModelConfig teacher = st.at("model_config").get<ModelConfig>();
  const int64_t vocab = st.contains("vocab_map") ? VocabMap::from_json(st.at("vocab_map")).full_size : teacher.vocab_size;
  return student_config_of_teacher(teacher, vocab, max_seq_len);
}

void copy_teacher_weights(const LoadedModel& teacher, TransformerImpl& student) {
  torch::NoGradGuard ng;
  const auto from = teacher.model->named_parameters(true);
  const std::string where = " (teacher " + teacher.checkpoint + ")";
  // Rows of the external vocabulary: each id takes its model class's row.
  const torch::Tensor rows = teacher.vocab_map.enabled() ? teacher.vocab_map.to_model_lut() : torch::Tensor();
  for (const auto& p : from) {
    torch::Tensor* to = student.named_parameters(true).find(p.key());
    if (!to)
      throw Error("starting the student from its teacher: the student has no parameter '" + p.key() + "'" + where,
                  "the student config must be student_config_of_teacher of the teacher's");
    torch::Tensor v = p.value().detach().to(torch::kCPU, torch::kFloat);
    const bool vocab_rows = p.key() == "embed" || p.key() == "lm_head";
    if (vocab_rows && rows.defined()) v = v.index_select(0, rows);
    if (v.sizes() != to->sizes())
      throw Error("starting the student from its teacher: '" + p.key() + "' is " + c10::str(v.sizes()) + " in the teacher, " +
                  c10::str(to->sizes()) + " in the student" + where);
    to->copy_(v.to(to->device(), to->scalar_type()));
  }
}

}  // namespace bkd
