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

namespace {
// The state of the project's own teacher's latest checkpoint.
nlohmann::json own_teacher_state(const Settings& s) {
  const std::string role_dir = RunLayout(s).role_checkpoints("teacher");
  const auto ck = latest_checkpoint(role_dir);
  if (!ck)
    throw Error("a student of the teacher's shape needs the teacher, and " + role_dir + " has no checkpoint",
                "train the teacher first: `bitnet-kde train --role teacher` (or `make teacher`)");
  return load_checkpoint_state(*ck);
}

std::string trimmed_head_refusal(const std::string& teacher, int64_t rare) {
  return "the teacher " + teacher + " has a trimmed head (" + std::to_string(rare) +
         " ids share one class): a student started from it would give each of them the whole class's logit, a start "
         "worse than drawn weights";
}
constexpr const char* kTrimmedHeadFix = "train the teacher with its full head (TEACHER_VOCAB_MIN_COUNT=0) to start a student from it";
}  // namespace

ModelConfig teacher_shaped_student_config(const Settings& s, int64_t max_seq_len) {
  if (const std::string dir = s.str("TEACHER_MODEL_DIR"); !dir.empty()) {
    const HfModelInfo info = read_hf_config(dir);
    return student_config_of_teacher(info.config, info.config.vocab_size, max_seq_len);
  }
  const nlohmann::json st = own_teacher_state(s);
  const ModelConfig teacher = st.at("model_config").get<ModelConfig>();
  const int64_t vocab = st.contains("vocab_map") ? VocabMap::from_json(st.at("vocab_map")).full_size : teacher.vocab_size;
  return student_config_of_teacher(teacher, vocab, max_seq_len);
}

void require_full_teacher_head(const Settings& s) {
  if (!s.str("TEACHER_MODEL_DIR").empty()) return;
  const nlohmann::json st = own_teacher_state(s);
  if (st.contains("vocab_map"))
    throw UsageError(trimmed_head_refusal(RunLayout(s).role_checkpoints("teacher"), VocabMap::from_json(st.at("vocab_map")).rare_count()),
                     kTrimmedHeadFix);
}

void copy_teacher_weights(const LoadedModel& teacher, TransformerImpl& student) {
  torch::NoGradGuard ng;
  const auto from = teacher.model->named_parameters(true);
  const std::string where = " (teacher " + teacher.checkpoint + ")";
  if (teacher.vocab_map.enabled()) throw UsageError(trimmed_head_refusal(teacher.checkpoint, teacher.vocab_map.rare_count()), kTrimmedHeadFix);
  for (const auto& p : from) {
    torch::Tensor* to = student.named_parameters(true).find(p.key());
    if (!to)
      throw Error("starting the student from its teacher: the student has no parameter '" + p.key() + "'" + where,
                  "the student config must be student_config_of_teacher of the teacher's");
    torch::Tensor v = p.value().detach().to(torch::kCPU, torch::kFloat);
    if (v.sizes() != to->sizes())
      throw Error("starting the student from its teacher: '" + p.key() + "' is " + c10::str(v.sizes()) + " in the teacher, " +
                  c10::str(to->sizes()) + " in the student" + where);
    to->copy_(v.to(to->device(), to->scalar_type()));
  }
}

}  // namespace bkd
