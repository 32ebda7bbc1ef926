#pragma once
// The tokenizers a run uses, chosen by its settings; every stage loads them here.
//   teacher: the local teacher's own tokenizer: TEACHER_MODEL_DIR's (tokenizer.json / tokenizer.model),
//            else GPT-2's byte-level BPE (GPT2_BPE_DIR), which the project's own teacher reads.
//   student: STUDENT_TOKENIZER names it:
//              empty        the SentencePiece model prepare trains (DATA_DIR/tokenizer/student.model)
//              a .model     that SentencePiece model
//              "teacher"    the teacher's tokenizer (same-tokenizer KD: the projection is the identity)
#include <memory>
#include <string>

#include "core/tokenizer/tokenizer.h"

namespace bkd {
class Settings;

inline constexpr const char* kStudentTokenizerIsTeacher = "teacher";

std::unique_ptr<Tokenizer> load_teacher_tokenizer(const Settings& s);

// STUDENT_TOKENIZER=teacher. Refuses (UsageError) a teacher whose tokenizer this project cannot read:
// one behind an API (TEACHER_PROVIDER other than local).
bool student_tokenizer_is_teacher(const Settings& s);
std::unique_ptr<Tokenizer> load_student_tokenizer(const Settings& s);

// A tokenizer named by a path: a folder (Hugging Face: tokenizer.json or tokenizer.model, as an export
// with --format hf writes) or a SentencePiece .model file. For `serve --tokenizer`.
std::unique_ptr<Tokenizer> load_tokenizer_path(const std::string& path);

}  // namespace bkd
