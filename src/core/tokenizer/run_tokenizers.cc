#include "core/tokenizer/run_tokenizers.h"

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/tokenizer/hf_folder_tokenizer.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {

std::unique_ptr<Tokenizer> load_teacher_tokenizer(const Settings& s) {
  if (const std::string dir = s.str("TEACHER_MODEL_DIR"); !dir.empty()) return load_hf_folder_tokenizer(dir);
  const RunLayout layout(s);
  return Gpt2Bpe::load(layout.gpt2_encoder_json(), layout.gpt2_vocab_bpe());
}

bool student_tokenizer_is_teacher(const Settings& s) {
  if (s.str("STUDENT_TOKENIZER") != kStudentTokenizerIsTeacher) return false;
  if (s.str("TEACHER_PROVIDER") != "local")
    throw UsageError("STUDENT_TOKENIZER=teacher needs the teacher's tokenizer, and TEACHER_PROVIDER=" +
                         s.str("TEACHER_PROVIDER") + " does not give one",
                     "use TEACHER_PROVIDER=local (the project's own teacher or TEACHER_MODEL_DIR), or leave "
                     "STUDENT_TOKENIZER empty to train a SentencePiece student tokenizer");
  return true;
}

std::unique_ptr<Tokenizer> load_student_tokenizer(const Settings& s) {
  if (student_tokenizer_is_teacher(s)) return load_teacher_tokenizer(s);
  return SpmTokenizer::load(RunLayout(s).student_tokenizer());
}

std::unique_ptr<Tokenizer> load_tokenizer_path(const std::string& path) {
  if (dir_exists(path)) return load_hf_folder_tokenizer(path);
  return SpmTokenizer::load(path);
}

}  // namespace bkd
