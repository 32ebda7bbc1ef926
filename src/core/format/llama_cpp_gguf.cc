#include "core/format/llama_cpp_gguf.h"

#include "core/format/ggml_blocks.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/util/error.h"

namespace bkd {
namespace {

constexpr const char* kArch = "bitnet";

// Where a ternary matrix goes: TQ blocks when its rows fit, else exact Q4_0 (when allowed).
GgmlType ternary_type_for(int64_t cols, const LlamaCppExportOptions& o) {
  if (ggml_fits_rows(o.ternary, cols)) return o.ternary;
  return GgmlType::Q4_0;
}

}  // namespace

std::vector<std::string> llama_cpp_export_problems(const ModelConfig& c, const LlamaCppExportOptions& o) {
  std::vector<std::string> p;
  if (o.ternary != GgmlType::TQ2_0 && o.ternary != GgmlType::TQ1_0)
    p.push_back(std::string("ternary type ") + to_string(o.ternary) + " is not TQ2_0 or TQ1_0");
  if (!c.bitlinear) p.push_back("the model is a full-precision teacher, not a BitNet student");
  if (c.ffn_activation != FfnActivation::Silu)
    p.push_back("the student's FFN uses " + to_string(c.ffn_activation) +
                "; llama.cpp's bitnet graph computes silu(gate) * up (node-llama-cpp 3.21.1's llama.cpp ignores "
                "bitnet.hidden_activation, and no llama.cpp release maps a value to squared ReLU), so the file would "
                "load and compute another function (train with STUDENT_FFN_ACTIVATION=silu)");
  if (!c.tie_embeddings)
    p.push_back("the student has an untied LM head; llama.cpp's bitnet graph uses token_embd as the head (train with "
                "TIE_EMBEDDINGS=true)");
  for (const auto& [what, cols] : {std::pair<const char*, int64_t>{"d_model", c.d_model}, {"ffn_dim", c.ffn_dim}}) {
    if ((o.ternary == GgmlType::TQ2_0 || o.ternary == GgmlType::TQ1_0) && !ggml_fits_rows(o.ternary, cols)) {
      if (!o.allow_q4_0_rows)
        p.push_back(std::string(what) + " = " + std::to_string(cols) + " is not a multiple of 256, so its rows cannot be " +
                    to_string(o.ternary) + " blocks (use a multiple of 256, or allow exact Q4_0 rows)");
      else if (cols % 32 != 0)
        p.push_back(std::string(what) + " = " + std::to_string(cols) + " is not a multiple of 32: no ggml block type holds its rows");
    }
  }
  return p;
}

GgufVocab gguf_vocab(const SpmTokenizer::Vocab& v) {
  GgufVocab g;
  g.model = "llama", g.pre = "default";
  g.pieces = v.pieces, g.scores = v.scores, g.types = v.types;
  g.bos = v.bos, g.eos = v.eos, g.unk = v.unk;
  g.add_space_prefix = true;  // SentencePiece's dummy prefix "▁"
  return g;
}

GgufVocab gguf_vocab(const Tokenizer& tok) {
  if (const auto* spm = dynamic_cast<const SpmTokenizer*>(&tok)) return gguf_vocab(spm->vocab());
  const auto* gpt2 = dynamic_cast<const Gpt2Bpe*>(&tok);
  if (!gpt2)
    throw UsageError("the llama.cpp export writes SentencePiece and GPT-2 vocabularies, and this student uses a " + tok.kind() +
                         " tokenizer (STUDENT_TOKENIZER=teacher with a Hugging Face teacher): that vocabulary is not written yet",
                     "export with --format bitnet-kde (the packed engine and `serve --engine` run it)");
  GgufVocab g;
  g.model = "gpt2", g.pre = "gpt-2";  // llama.cpp's GPT-2 pre-tokenizer: the same regex as GPT-2's
  const int32_t n = gpt2->vocab_size();
  g.pieces.reserve(size_t(n));
  for (int32_t id = 0; id < n; ++id) g.pieces.push_back(gpt2->piece(id));
  g.types.assign(size_t(n), 1);
  g.types[size_t(gpt2->eos_id())] = 3;  // <|endoftext|>: control, never produced from text
  g.merges = gpt2->merges();
  g.bos = g.eos = gpt2->eos_id();  // GPT-2 has one special token for both
  return g;
}

LlamaCppExport write_llama_cpp_gguf(const PackedModel& m, const GgufVocab& vocab, const std::string& path,
                                    const LlamaCppExportOptions& o) {
  m.validate();
  const ModelConfig& c = m.cfg;
  const std::vector<std::string> problems = llama_cpp_export_problems(c, o);
  if (!problems.empty()) {
    std::string why;
    for (const auto& s : problems) why += (why.empty() ? "" : "; ") + s;
    throw UsageError("cannot export this student for llama.cpp: " + why,
                     "export it with --format bitnet-kde (the packed engine runs it), or change the student config");
  }
  if (static_cast<int64_t>(vocab.pieces.size()) != c.vocab_size)
    throw Error("the student tokenizer has " + std::to_string(vocab.pieces.size()) + " pieces but the model's vocabulary is " +
                    std::to_string(c.vocab_size),
                "export with the tokenizer the student was trained with (STUDENT_TOKENIZER)");
  const bool spm = vocab.model == "llama";
  if ((spm && vocab.scores.size() != vocab.pieces.size()) || vocab.types.size() != vocab.pieces.size() ||
      (!spm && (vocab.model != "gpt2" || vocab.merges.empty())))
    throw Error("the tokenizer vocabulary is inconsistent: model '" + vocab.model + "', " + std::to_string(vocab.pieces.size()) +
                " pieces, " + std::to_string(vocab.scores.size()) + " scores, " + std::to_string(vocab.types.size()) + " types, " +
                std::to_string(vocab.merges.size()) + " merges");

  GgufWriter w;
  w.add_string("general.architecture", kArch);
  w.add_string("general.name", "bitnet-kde student");
  w.add_u32("general.quantization_version", 2);
  const std::string a = kArch;
  w.add_u32(a + ".context_length", static_cast<uint32_t>(c.max_seq_len));
  w.add_u32(a + ".embedding_length", static_cast<uint32_t>(c.d_model));
  w.add_u32(a + ".block_count", static_cast<uint32_t>(c.n_layers));
  w.add_u32(a + ".feed_forward_length", static_cast<uint32_t>(c.ffn_dim));
  w.add_u32(a + ".attention.head_count", static_cast<uint32_t>(c.n_heads));
  w.add_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  w.add_u32(a + ".rope.dimension_count", static_cast<uint32_t>(c.head_dim()));
  w.add_f32(a + ".rope.freq_base", static_cast<float>(c.rope_theta));
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(c.norm_eps));
  w.add_u32(a + ".vocab_size", static_cast<uint32_t>(c.vocab_size));
  // llama.cpp's bitnet graph computes silu(gate) * up; newer releases read this key, and every
  // spelling they map SiLU from gives the same function ("silu" -> SwiGLU with a parallel gate).
  w.add_string(a + ".hidden_activation", "silu");

  // The student's vocabulary: SentencePiece (BPE with byte fallback, dummy prefix "▁") or GPT-2's BPE.
  w.add_string("tokenizer.ggml.model", vocab.model);
  w.add_string("tokenizer.ggml.pre", vocab.pre);
  w.add_strings("tokenizer.ggml.tokens", vocab.pieces);
  if (spm) w.add_f32s("tokenizer.ggml.scores", vocab.scores);
  w.add_i32s("tokenizer.ggml.token_type", vocab.types);
  if (!spm) w.add_strings("tokenizer.ggml.merges", vocab.merges);
  if (vocab.bos >= 0) w.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab.bos));
  if (vocab.eos >= 0) w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab.eos));
  if (vocab.unk >= 0) w.add_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(vocab.unk));
  // The student is trained on documents separated by EOS and never sees BOS (serve adds none either):
  // a BOS prepended by llama.cpp would feed it an embedding it never learned.
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  w.add_bool("tokenizer.ggml.add_eos_token", false);
  w.add_bool("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix);

  LlamaCppExport r;
  r.path = path;
  auto add = [&](const std::string& name, std::vector<uint64_t> dims, GgmlType type, const void* data, uint64_t bytes) {
    w.add_tensor(name, std::move(dims), type, data, bytes);
    r.tensors.push_back({name, type, bytes});
    r.bytes += bytes;
  };
  auto floats = [&](const std::string& name, const std::vector<float>& v) {
    add(name, {v.size()}, GgmlType::F32, v.data(), v.size() * 4);
  };
  auto ternary = [&](const std::string& name, const TernaryMatrix& t) {
    const GgmlType type = ternary_type_for(t.cols, o);
    const std::string bytes = encode_ternary_blocks(t, type);
    add(name, {static_cast<uint64_t>(t.cols), static_cast<uint64_t>(t.rows)}, type, bytes.data(), bytes.size());
    if (type == GgmlType::Q4_0) r.q4_0_tensors.push_back(name);
  };

  // token_embd: the table as stored (f32 or bf16); an int8 table is written dequantized (f32), so
  // llama.cpp computes exactly the values the engine uses.
  const EmbeddingTable& e = m.embed;
  const std::vector<uint64_t> edims = {static_cast<uint64_t>(e.cols), static_cast<uint64_t>(e.rows)};
  if (e.format == TableFormat::I8) {
    std::vector<float> deq(static_cast<size_t>(e.rows * e.cols));
    for (int64_t r0 = 0; r0 < e.rows; ++r0) e.lookup(r0, deq.data() + r0 * e.cols);
    add("token_embd.weight", edims, GgmlType::F32, deq.data(), deq.size() * 4);
  } else {
    add("token_embd.weight", edims, e.format == TableFormat::F32 ? GgmlType::F32 : GgmlType::BF16, e.data.data(), e.data.bytes());
  }
  floats("output_norm.weight", m.final_norm);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const PackedLayer& l = m.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    floats(p + "attn_norm.weight", l.attn_norm);
    ternary(p + "attn_q.weight", l.wq);
    ternary(p + "attn_k.weight", l.wk);
    ternary(p + "attn_v.weight", l.wv);
    floats(p + "attn_sub_norm.weight", l.attn_sub_norm);
    ternary(p + "attn_output.weight", l.wo);
    floats(p + "ffn_norm.weight", l.ffn_norm);
    ternary(p + "ffn_gate.weight", l.w_gate);
    ternary(p + "ffn_up.weight", l.w_up);
    floats(p + "ffn_sub_norm.weight", l.ffn_sub_norm);
    ternary(p + "ffn_down.weight", l.w_down);
  }
  w.write(path);
  return r;
}

}  // namespace bkd
