#pragma once
// A student started from its teacher (BitDistill, arXiv 2510.13998): the teacher's shape and latent
// weights, with BitNet's parts switched on:
//   - every projection becomes a BitLinear (ternary weights, A8 -> A4 activations) whose latent weight
//     starts as the teacher's full-precision one;
//   - SubLN norms before o_proj and down_proj are inserted (gain 1) where the teacher has none
//     (Hugging Face teachers); the project's own teacher already has them and they are copied;
//   - the teacher must predict its whole vocabulary: a trimmed head (VocabMap, the project's own
//     teacher with TEACHER_VOCAB_MIN_COUNT > 0) is refused. Its rare ids share one class; with tied
//     embeddings and no bias each would start at the class's logit (not that minus log(rare_count)),
//     and that start measured worse than drawn weights (step-0 CE 11.46 against 10.84, tiny preset);
//   - the teacher's other switches (q/k/v biases, q/k RMSNorm, head_dim, RoPE scaling, activation)
//     are kept: the student computes what its teacher computes, up to the quantizers.
// The student must share the teacher's tokenizer (STUDENT_TOKENIZER=teacher): its ids are the teacher's.
#include <functional>
#include <string>

#include "core/model/model_config.h"
#include "torch/model/model.h"

namespace bkd {
class Settings;
struct LoadedModel;

// The student config of the teacher's shape: `teacher` with bitlinear and SubLN on, vocabulary
// `external_vocab`, context `max_seq_len`.
ModelConfig student_config_of_teacher(const ModelConfig& teacher, int64_t external_vocab, int64_t max_seq_len);

// The local teacher's shape (its checkpoint's state or config.json; no weights loaded) as a student config.
ModelConfig teacher_shaped_student_config(const Settings& s, int64_t max_seq_len);

// UsageError when the local teacher has a trimmed head (see above); reads its checkpoint's state only.
void require_full_teacher_head(const Settings& s);

// Copies the teacher's weights into a student made from student_config_of_teacher(teacher.config, ...).
// Throws Error on a parameter the student lacks or a shape that differs (the configs disagree).
void copy_teacher_weights(const LoadedModel& teacher, TransformerImpl& student);

}  // namespace bkd
