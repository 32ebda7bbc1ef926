#include "core/tokenizer/spm_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <sstream>
#include <thread>
#include <unordered_map>

#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"

namespace bkd {
namespace {

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& v_;
  size_t i_ = 0;
};

}  // namespace

SpmTokenizer::~SpmTokenizer() = default;

std::unique_ptr<SpmTokenizer> SpmTokenizer::from_serialized(const std::string& model_bytes, const std::string& origin) {
  std::unique_ptr<SpmTokenizer> t(new SpmTokenizer());
  t->sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  auto st = t->sp_->LoadFromSerializedProto(model_bytes);
  if (!st.ok())
    throw Error("cannot load SentencePiece model '" + origin + "': " + st.ToString(),
                "re-create it with `bitnet-kde prepare`, or point STUDENT_TOKENIZER at a valid .model file");
  t->model_bytes_ = model_bytes;
  t->hash_ = sha256_hex(model_bytes);
  return t;
}

std::unique_ptr<SpmTokenizer> SpmTokenizer::load(const std::string& model_path) {
  if (!file_exists(model_path))
    throw Error("student tokenizer '" + model_path + "' does not exist",
                "run `bitnet-kde prepare` to train it, or set STUDENT_TOKENIZER to an existing .model file");
  return from_serialized(read_file(model_path), model_path);
}

std::string SpmTokenizer::train(const std::vector<std::string>& documents, const SpmTrainOptions& opts) {
  // SentencePiece trains on "sentences"; paragraphs (lines) keep newlines out of the vocabulary: a newline
  // is encoded as the byte token <0x0A>, which the format loss can name.
  std::vector<std::string> lines;
  for (const auto& d : documents) {
    std::istringstream in(d);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) lines.push_back(line);
  }
  if (lines.empty()) throw Error("cannot train the student tokenizer: no text in the training split");
  const int threads = opts.threads > 0 ? opts.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::unordered_map<std::string, std::string> kw = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(opts.vocab_size)},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"byte_fallback", "true"},
      {"character_coverage", "0.9999"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"max_sentence_length", "65536"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"num_threads", std::to_string(threads)},
      {"minloglevel", "2"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
  };
  VectorIterator it(lines);
  std::string model;
  auto st = sentencepiece::SentencePieceTrainer::Train(kw, &it, &model);
  if (!st.ok())
    throw Error("SentencePiece training failed: " + st.ToString(),
                "a vocabulary larger than the corpus supports is the usual cause: lower STUDENT_VOCAB_SIZE");
  return model;
}

std::vector<TokenSpan> SpmTokenizer::encode(std::string_view text) const {
  sentencepiece::ImmutableSentencePieceText spt;
  auto st = sp_->Encode(absl::string_view(text.data(), text.size()), spt.mutable_proto());
  if (!st.ok()) throw Error("SentencePiece encode failed: " + st.ToString());
  std::vector<TokenSpan> out;
  out.reserve(spt.pieces_size());
  for (size_t i = 0; i < spt.pieces_size(); ++i) {
    auto p = spt.pieces(static_cast<int>(i));
    out.push_back({static_cast<int32_t>(p.id()), p.begin(), p.end()});
  }
  // SentencePiece gives a multi-byte character spelled with byte-fallback tokens one span on its last
  // byte token and empty spans on the others; give each byte token its own byte instead, so spans
  // tile the text one source byte per byte token.
  for (size_t i = 0; i < out.size(); ++i) {
    const uint32_t len = out[i].end - out[i].begin;
    if (len <= 1 || !sp_->IsByte(out[i].id) || i + 1 < len) continue;
    bool run = true;
    for (size_t k = i + 1 - len; k < i && run; ++k)
      run = sp_->IsByte(out[k].id) && out[k].begin == out[i].begin && out[k].end == out[i].begin;
    if (!run) continue;
    const uint32_t b = out[i].begin;
    for (uint32_t k = 0; k < len; ++k) {
      out[i + 1 - len + k].begin = b + k;
      out[i + 1 - len + k].end = b + k + 1;
    }
  }
  return out;
}

std::string SpmTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  std::vector<int> v(ids.begin(), ids.end());
  auto st = sp_->Decode(v, &out);
  if (!st.ok()) throw Error("SentencePiece decode failed: " + st.ToString());
  return out;
}

std::string SpmTokenizer::piece(int32_t id) const { return sp_->IdToPiece(id); }
int32_t SpmTokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int32_t SpmTokenizer::eos_id() const { return sp_->eos_id(); }
int32_t SpmTokenizer::unk_id() const { return sp_->unk_id(); }
bool SpmTokenizer::is_byte(int32_t id) const { return sp_->IsByte(id); }
int32_t SpmTokenizer::piece_to_id(const std::string& piece) const { return sp_->PieceToId(piece); }

}  // namespace bkd
