// libbkd_spm: the thin C wrapper around libsentencepiece (see spm_shim.h for why it is separate).
#include "spm_shim/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

struct bkd_spm {
  sentencepiece::SentencePieceProcessor proc;
};

namespace {

void set_err(char* err, size_t len, const std::string& msg) {
  if (!err || len == 0) return;
  std::snprintf(err, len, "%s", msg.c_str());
}

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  VectorIterator(const char* const* s, size_t n) : s_(s), n_(n) {
    if (n_) cur_ = s_[0];
  }
  bool done() const override { return i_ >= n_; }
  void Next() override {
    if (++i_ < n_) cur_ = s_[i_];
  }
  const std::string& value() const override { return cur_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const char* const* s_;
  size_t n_, i_ = 0;
  std::string cur_;
};

template <class T>
T* copy_out(const std::vector<T>& v) {
  T* p = static_cast<T*>(std::malloc(std::max<size_t>(1, v.size()) * sizeof(T)));
  if (p && !v.empty()) std::memcpy(p, v.data(), v.size() * sizeof(T));
  return p;
}

}  // namespace

extern "C" {

bkd_spm* bkd_spm_load(const char* model, size_t model_len, char* err, size_t err_len) {
  auto* sp = new bkd_spm();
  auto st = sp->proc.LoadFromSerializedProto(std::string(model, model_len));
  if (!st.ok()) {
    set_err(err, err_len, st.ToString());
    delete sp;
    return nullptr;
  }
  return sp;
}

void bkd_spm_free(bkd_spm* sp) { delete sp; }

int bkd_spm_train(const char* const* sentences, size_t n_sentences, const char* const* keys, const char* const* values,
                  size_t n_kw, char** model_out, size_t* model_len, char* err, size_t err_len) {
  std::unordered_map<std::string, std::string> kw;
  for (size_t i = 0; i < n_kw; ++i) kw[keys[i]] = values[i];
  VectorIterator it(sentences, n_sentences);
  std::string model;
  auto st = sentencepiece::SentencePieceTrainer::Train(kw, &it, &model);
  if (!st.ok()) {
    set_err(err, err_len, st.ToString());
    return 1;
  }
  *model_out = static_cast<char*>(std::malloc(model.size()));
  std::memcpy(*model_out, model.data(), model.size());
  *model_len = model.size();
  return 0;
}

int bkd_spm_encode(const bkd_spm* sp, const char* text, size_t len, int32_t** ids, uint32_t** begins, uint32_t** ends,
                   size_t* count, char* err, size_t err_len) {
  sentencepiece::ImmutableSentencePieceText spt;
  auto st = sp->proc.Encode(absl::string_view(text, len), spt.mutable_proto());
  if (!st.ok()) {
    set_err(err, err_len, st.ToString());
    return 1;
  }
  const size_t n = spt.pieces_size();
  std::vector<int32_t> i(n);
  std::vector<uint32_t> b(n), e(n);
  for (size_t k = 0; k < n; ++k) {
    auto p = spt.pieces(static_cast<int>(k));
    i[k] = static_cast<int32_t>(p.id());
    b[k] = p.begin();
    e[k] = p.end();
  }
  *ids = copy_out(i);
  *begins = copy_out(b);
  *ends = copy_out(e);
  *count = n;
  return 0;
}

int bkd_spm_decode(const bkd_spm* sp, const int32_t* ids, size_t n, char** text_out, size_t* text_len, char* err,
                   size_t err_len) {
  std::vector<int> v(ids, ids + n);
  std::string out;
  auto st = sp->proc.Decode(v, &out);
  if (!st.ok()) {
    set_err(err, err_len, st.ToString());
    return 1;
  }
  *text_out = static_cast<char*>(std::malloc(std::max<size_t>(1, out.size())));
  std::memcpy(*text_out, out.data(), out.size());
  *text_len = out.size();
  return 0;
}

int bkd_spm_piece_size(const bkd_spm* sp) { return sp->proc.GetPieceSize(); }
const char* bkd_spm_id_to_piece(const bkd_spm* sp, int id) { return sp->proc.IdToPiece(id).c_str(); }
int bkd_spm_piece_to_id(const bkd_spm* sp, const char* piece) { return sp->proc.PieceToId(piece); }
int bkd_spm_is_byte(const bkd_spm* sp, int id) { return sp->proc.IsByte(id) ? 1 : 0; }
int bkd_spm_eos_id(const bkd_spm* sp) { return sp->proc.eos_id(); }
int bkd_spm_unk_id(const bkd_spm* sp) { return sp->proc.unk_id(); }
int bkd_spm_bos_id(const bkd_spm* sp) { return sp->proc.bos_id(); }
float bkd_spm_score(const bkd_spm* sp, int id) { return sp->proc.GetScore(id); }
int bkd_spm_piece_type(const bkd_spm* sp, int id) {
  const auto& p = sp->proc;
  if (p.IsUnknown(id)) return 2;
  if (p.IsControl(id)) return 3;
  if (p.IsUnused(id)) return 5;
  if (p.IsByte(id)) return 6;
  return 1;  // normal (user-defined pieces are not used by the student tokenizer's training options)
}
void bkd_spm_free_buffer(void* p) { std::free(p); }

}  // extern "C"
