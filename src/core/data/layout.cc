#include "core/data/layout.h"

#include "core/config/settings.h"
#include "core/util/fs.h"

namespace bkd {

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Val: return "val";
    case Split::Test: return "test";
  }
  return "?";
}

std::string split_text_path(const Settings& s, Split split) {
  return join_path(s.str("DATA_DIR"), std::string("corpus/") + split_name(split) + ".jsonl");
}

std::string student_tokenizer_path(const Settings& s) {
  const std::string& given = s.str("STUDENT_TOKENIZER");
  return given.empty() ? join_path(s.str("DATA_DIR"), "tokenizer/student.model") : given;
}

std::string token_file_path(const Settings& s, Split split, const std::string& which) {
  return join_path(s.str("DATA_DIR"), std::string("tokens/") + split_name(split) + "." + which + ".tok");
}

std::string gpt2_encoder_json_path(const Settings& s) { return join_path(s.str("GPT2_BPE_DIR"), "encoder.json"); }
std::string gpt2_vocab_bpe_path(const Settings& s) { return join_path(s.str("GPT2_BPE_DIR"), "vocab.bpe"); }
std::string prepare_report_path(const Settings& s) { return join_path(s.str("REPORTS_DIR"), "prepare.json"); }

}  // namespace bkd
