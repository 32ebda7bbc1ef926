#pragma once
// Where each stage's files live under the configured directories. One place, so stages agree.
#include <string>

namespace bkd {
class Settings;

enum class Split { Train, Val, Test };
const char* split_name(Split s);  // "train" | "val" | "test"

// DATA_DIR/corpus/<split>.jsonl: one {"id", "source", "text"} object per document (normalized text).
std::string split_text_path(const Settings& s, Split split);
// The student SentencePiece model: STUDENT_TOKENIZER if set, else DATA_DIR/tokenizer/student.model.
std::string student_tokenizer_path(const Settings& s);
// DATA_DIR/tokens/<split>.<student|teacher>.tok (see token_file.h).
std::string token_file_path(const Settings& s, Split split, const std::string& which);
// GPT-2 BPE files for the offline teacher.
std::string gpt2_encoder_json_path(const Settings& s);
std::string gpt2_vocab_bpe_path(const Settings& s);
// REPORTS_DIR/prepare.json
std::string prepare_report_path(const Settings& s);

}  // namespace bkd
