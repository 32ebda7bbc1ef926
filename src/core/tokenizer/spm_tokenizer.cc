#include "core/tokenizer/spm_tokenizer.h"

#include <sstream>
#include <thread>
#include <utility>

#include "core/tokenizer/spm_module.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"

namespace bkd {
namespace {

// Frees a buffer the module allocated.
struct ModuleBuffer {
  void* p = nullptr;
  ~ModuleBuffer() {
    if (p) spm_module().free_buffer(p);
  }
};

}  // namespace

SpmTokenizer::~SpmTokenizer() {
  if (sp_) spm_module().free(sp_);
}

std::unique_ptr<SpmTokenizer> SpmTokenizer::from_serialized(const std::string& model_bytes, const std::string& origin) {
  const SpmModule& m = spm_module();
  char err[512] = {0};
  bkd_spm* sp = m.load(model_bytes.data(), model_bytes.size(), err, sizeof err);
  if (!sp)
    throw Error("cannot load SentencePiece model '" + origin + "': " + err,
                "re-create it with `bitnet-kde prepare`, or point STUDENT_TOKENIZER at a valid .model file");
  std::unique_ptr<SpmTokenizer> t(new SpmTokenizer());
  t->sp_ = sp;
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
  const std::vector<std::pair<std::string, std::string>> kw = {
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
  std::vector<const char*> sentences, keys, values;
  for (const auto& l : lines) sentences.push_back(l.c_str());
  for (const auto& [k, v] : kw) keys.push_back(k.c_str()), values.push_back(v.c_str());
  char* model = nullptr;
  size_t model_len = 0;
  char err[1024] = {0};
  if (spm_module().train(sentences.data(), sentences.size(), keys.data(), values.data(), keys.size(), &model,
                         &model_len, err, sizeof err) != 0)
    throw Error(std::string("SentencePiece training failed: ") + err,
                "a vocabulary larger than the corpus supports is the usual cause: lower STUDENT_VOCAB_SIZE");
  ModuleBuffer owner{model};
  return std::string(model, model_len);
}

std::vector<TokenSpan> SpmTokenizer::encode(std::string_view text) const {
  int32_t* ids = nullptr;
  uint32_t *begins = nullptr, *ends = nullptr;
  size_t n = 0;
  char err[512] = {0};
  if (spm_module().encode(sp_, text.data(), text.size(), &ids, &begins, &ends, &n, err, sizeof err) != 0)
    throw Error(std::string("SentencePiece encode failed: ") + err);
  ModuleBuffer a{ids}, b{begins}, c{ends};
  std::vector<TokenSpan> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = {ids[i], begins[i], ends[i]};
  // SentencePiece gives a multi-byte character spelled with byte-fallback tokens one span on its last
  // byte token and empty spans on the others; give each byte token its own byte instead, so spans
  // tile the text one source byte per byte token.
  for (size_t i = 0; i < out.size(); ++i) {
    const uint32_t len = out[i].end - out[i].begin;
    if (len <= 1 || !is_byte(out[i].id) || i + 1 < len) continue;
    bool run = true;
    for (size_t k = i + 1 - len; k < i && run; ++k)
      run = is_byte(out[k].id) && out[k].begin == out[i].begin && out[k].end == out[i].begin;
    if (!run) continue;
    const uint32_t start = out[i].begin;
    for (uint32_t k = 0; k < len; ++k) {
      out[i + 1 - len + k].begin = start + k;
      out[i + 1 - len + k].end = start + k + 1;
    }
  }
  return out;
}

std::string SpmTokenizer::decode(const std::vector<int32_t>& ids) const {
  char* text = nullptr;
  size_t len = 0;
  char err[512] = {0};
  if (spm_module().decode(sp_, ids.data(), ids.size(), &text, &len, err, sizeof err) != 0)
    throw Error(std::string("SentencePiece decode failed: ") + err);
  ModuleBuffer owner{text};
  return std::string(text, len);
}

std::string SpmTokenizer::piece(int32_t id) const { return spm_module().id_to_piece(sp_, id); }

std::string SpmTokenizer::continuation_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) throw Error("token id " + std::to_string(id) + " is outside the student vocabulary");
  if (is_byte(id)) {  // "<0xAB>"
    const std::string p = piece(id);
    return std::string(1, static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16)));
  }
  // Decoded after a visible anchor piece, so SentencePiece keeps the piece's leading space: the
  // difference is what this piece adds to a running text.
  if (anchor_id_ < 0) {
    auto* self = const_cast<SpmTokenizer*>(this);
    for (int32_t a = 0; a < vocab_size() && self->anchor_id_ < 0; ++a) {
      if (is_byte(a)) continue;
      const std::string d = decode({a});
      if (!d.empty() && d.find(' ') == std::string::npos) self->anchor_id_ = a;
    }
    if (anchor_id_ < 0) throw Error("the student tokenizer has no piece that decodes to visible text");
  }
  const std::string anchor = decode({anchor_id_});
  const std::string both = decode({anchor_id_, id});
  if (both.compare(0, anchor.size(), anchor) != 0)
    throw Error("SentencePiece decoded piece " + std::to_string(id) + " into its neighbour's text");
  return both.substr(anchor.size());
}
int32_t SpmTokenizer::vocab_size() const { return spm_module().piece_size(sp_); }
int32_t SpmTokenizer::eos_id() const { return spm_module().eos_id(sp_); }
int32_t SpmTokenizer::unk_id() const { return spm_module().unk_id(sp_); }

SpmTokenizer::Vocab SpmTokenizer::vocab() const {
  const SpmModule& m = spm_module();
  Vocab v;
  const int n = m.piece_size(sp_);
  for (int id = 0; id < n; ++id) {
    v.pieces.emplace_back(m.id_to_piece(sp_, id));
    v.scores.push_back(m.score(sp_, id));
    v.types.push_back(m.piece_type(sp_, id));
  }
  v.bos = m.bos_id(sp_), v.eos = m.eos_id(sp_), v.unk = m.unk_id(sp_);
  return v;
}
bool SpmTokenizer::is_byte(int32_t id) const { return spm_module().is_byte(sp_, id) != 0; }
int32_t SpmTokenizer::piece_to_id(const std::string& piece) const { return spm_module().piece_to_id(sp_, piece.c_str()); }

}  // namespace bkd
