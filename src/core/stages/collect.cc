#include "core/stages/collect.h"

#include <cmath>
#include <cstdio>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "core/config/dirs.h"
#include "core/config/settings.h"
#include "core/data/corpus.h"
#include "core/data/layout.h"
#include "core/kd/kd_shard.h"
#include "core/teacher/provider.h"
#include "core/teacher/provider_factory.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"
#include "core/util/log.h"
#include "core/util/progress.h"
#include "core/util/report.h"

namespace bkd {
namespace {

std::string worker_tag(int worker, int workers) {
  return workers == 1 ? "" : "w" + std::to_string(worker) + "of" + std::to_string(workers) + "_";
}

// Byte spans of the teacher's tokens, from their exact bytes; false when they do not spell `text`
// from `offset` on (the teacher's tokens cannot be aligned with the text).
bool teacher_spans(const std::string& text, uint32_t offset, const std::vector<GeneratedToken>& tokens,
                   std::vector<TokenSpan>& spans) {
  spans.clear();
  uint32_t pos = offset;
  for (const auto& t : tokens) {
    if (text.compare(pos, t.bytes.size(), t.bytes) != 0) return false;
    spans.push_back({t.id, pos, static_cast<uint32_t>(pos + t.bytes.size())});
    pos += static_cast<uint32_t>(t.bytes.size());
  }
  return true;
}

std::string plan_hash(const std::vector<KdSequence>& plan, const std::vector<Document>& docs) {
  Sha256 h;
  for (const auto& q : plan) {
    h.update(std::to_string(q.seq_id) + ":" + docs[q.doc].id + ":" + std::to_string(q.begin) + "-" +
             std::to_string(q.end) + "/" + std::to_string(q.prompt_end) + "\n");
  }
  return h.hex_digest();
}

}  // namespace

nlohmann::json projection_stats_json(const ProjectionStats& st) {
  // Row classes and rates: one definition for collect, the shard metadata and inspect (kd_accounting.h).
  nlohmann::json j = st.row_counts().to_json();
  j["mean_other_mass"] = st.kd_positions ? st.sum_other_mass / st.kd_positions : 0.0;
  j["mean_topk_coverage"] = st.kd_positions ? st.sum_topk_mass / st.kd_positions : 0.0;
  j["candidates"] = st.candidates;
  j["dedup_merges"] = st.merged;
  j["dedup_merge_rate"] = st.candidates ? double(st.merged) / double(st.candidates) : 0.0;
  j["candidates_to_other"] = st.to_other;
  return j;
}

std::vector<KdSequence> plan_sequences(const std::vector<std::string>& docs, const SpmTokenizer& student,
                                       int64_t seq_len, int64_t target_positions, int64_t prompt_tokens,
                                       bool generate_mode) {
  std::vector<KdSequence> plan;
  int64_t covered = 0;
  for (size_t d = 0; d < docs.size() && covered < target_positions; ++d) {
    const auto toks = student.encode(docs[d]);
    // Chunks start and end on student token boundaries; the last short chunk of a document is kept
    // when it has at least 8 tokens.
    for (size_t a = 0; a < toks.size() && covered < target_positions; a += static_cast<size_t>(seq_len)) {
      const size_t b = std::min(toks.size(), a + static_cast<size_t>(seq_len));
      if (b - a < 8) break;
      KdSequence q{static_cast<int64_t>(plan.size()), d, toks[a].begin, toks[b - 1].end, toks[a].begin};
      if (generate_mode) {
        const size_t p = std::min(b - 1, a + static_cast<size_t>(prompt_tokens));
        q.prompt_end = toks[p].begin;
        q.end = q.prompt_end;  // the teacher writes the rest
      }
      if (q.end <= q.begin && !generate_mode) continue;
      plan.push_back(q);
      covered += generate_mode ? 0 : static_cast<int64_t>(b - a);
      if (generate_mode) covered += seq_len - prompt_tokens;  // estimate; the teacher decides the length
    }
  }
  return plan;
}

namespace {
std::string manifest_in(const std::string& dir, int worker, int workers) {
  return join_path(dir, "kd_" + worker_tag(worker, workers) + "manifest.json");
}
std::string shard_in(const std::string& dir, int worker, int workers, int index) {
  char name[64];
  std::snprintf(name, sizeof name, "kd_%sshard_%03d.parquet", worker_tag(worker, workers).c_str(), index);
  return join_path(dir, name);
}
}  // namespace

std::string kd_manifest_path(const Settings& s, int worker, int workers) {
  return manifest_in(s.str("DATA_DIR"), worker, workers);
}

std::string kd_shard_path(const Settings& s, int worker, int workers, int index) {
  return shard_in(s.str("DATA_DIR"), worker, workers, index);
}

nlohmann::json run_collect(const Settings& s, const CollectOptions& opts) {
  if (opts.workers < 1 || opts.worker < 0 || opts.worker >= opts.workers)
    throw UsageError("--worker " + std::to_string(opts.worker) + "/" + std::to_string(opts.workers) +
                     " is not a valid partition", "use --worker i/n with 0 <= i < n");
  ensure_dirs(s);
  Report report("collect", &s);
  const std::string out_dir = opts.out_dir.empty() ? s.str("DATA_DIR") : opts.out_dir;
  ensure_dir(out_dir);

  if (opts.merge) {
    // Combine every worker's manifest: shards, sequence counts and statistics.
    nlohmann::json merged = {{"workers", opts.workers}, {"shards", nlohmann::json::array()}};
    KdRowCounts total;
    int64_t rows = 0;
    for (int w = 0; w < opts.workers; ++w) {
      const std::string mp = manifest_in(out_dir, w, opts.workers);
      if (!file_exists(mp))
        throw Error("worker manifest '" + mp + "' is missing", "run `bitnet-kde collect --worker " +
                                                                    std::to_string(w) + "/" +
                                                                    std::to_string(opts.workers) + "` first");
      auto m = nlohmann::json::parse(read_file(mp));
      if (!m.value("complete", false))
        throw Error("worker " + std::to_string(w) + " has not finished (" + mp + ")",
                    "run that worker again; it resumes where it stopped");
      for (auto& sh : m["shards"]) {
        rows += sh["rows"].get<int64_t>();
        total.add(KdRowCounts::from_json(sh["stats"]));
        merged["shards"].push_back(sh);
      }
      for (const char* k : {"plan_hash", "teacher", "model", "mode", "k"}) merged[k] = m[k];
    }
    merged["rows"] = rows;
    merged["row_accounting"] = total.to_json();
    merged["complete"] = true;
    write_json_atomic(join_path(out_dir, "kd_manifest.json"), merged);
    report.body() = merged;
    return report.write(join_path(s.str("REPORTS_DIR"), opts.report_name + "_merge.json"));
  }

  // The teacher.
  std::unique_ptr<Provider> owned;
  Provider* provider = opts.provider;
  if (!provider) {
    owned = make_provider(s);
    provider = owned.get();
  }
  const bool generate = s.str("KD_MODE") == "generate";
  const int k = static_cast<int>(s.i64("TOP_K"));
  Capabilities caps = provider->capabilities();
  if (generate) {
    require_logprobs(*provider, "collect KD traces");
  } else if (!caps.scoring) {
    throw UsageError("teacher '" + provider->name() + "' cannot score given text (KD_MODE=score)",
                     "use TEACHER_PROVIDER=local or an OpenAI-compatible vLLM server, or set KD_MODE=generate");
  }

  // Inputs: the training split (never val/test) and the student tokenizer.
  const auto docs = read_split_jsonl(split_text_path(s, opts.split));
  auto student = SpmTokenizer::load(student_tokenizer_path(s));
  std::vector<std::string> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  Timer t_plan;
  const auto plan = plan_sequences(texts, *student, s.i64("SEQ_LEN"),
                                   opts.target_positions >= 0 ? opts.target_positions : s.i64("KD_TARGET_TOKENS"),
                                   s.i64("PROMPT_TOKENS"), generate);
  const std::string phash = plan_hash(plan, docs);
  log_info("collect: " + std::to_string(plan.size()) + " sequences planned (" + (generate ? "generate" : "score") +
           " mode, teacher " + provider->name() + "/" + provider->model() + ", K=" + std::to_string(k) + ")");

  // Resume: what earlier runs of this worker finished.
  const std::string manifest_path = manifest_in(out_dir, opts.worker, opts.workers);
  nlohmann::json manifest = {{"plan_hash", phash},        {"teacher", provider->name()},
                             {"model", provider->model()}, {"mode", generate ? "generate" : "score"},
                             {"k", k},                     {"worker", opts.worker},
                             {"workers", opts.workers},    {"shards", nlohmann::json::array()},
                             {"complete", false}};
  int64_t next_seq = 0;  // index into this worker's part of the plan
  if (!opts.restart && file_exists(manifest_path)) {
    auto old = nlohmann::json::parse(read_file(manifest_path));
    if (old.value("plan_hash", "") != phash || old.value("teacher", "") != provider->name() ||
        old.value("model", "") != provider->model() || old.value("k", 0) != k) {
      log_warn("collect: earlier shards were made for another plan or teacher; starting over");
    } else {
      for (const auto& sh : old["shards"]) {
        if (!file_exists(join_path(out_dir, sh["file"].get<std::string>()))) break;
        manifest["shards"].push_back(sh);
        next_seq = sh["last_part_index"].get<int64_t>() + 1;
      }
      if (next_seq > 0) log_info("collect: resuming after " + std::to_string(next_seq) + " finished sequences");
    }
  }
  // Half-written shards and manifests of a killed run (temp files) are garbage: the manifest decides.
  const std::string shard_prefix = "kd_" + worker_tag(opts.worker, opts.workers) + "shard_";
  const std::string manifest_tmp = manifest_path.substr(parent_dir(manifest_path).size() + 1) + ".tmp";
  for (const auto& name : list_dir(out_dir))
    if ((name.rfind(shard_prefix, 0) == 0 && name.find(".parquet.tmp") != std::string::npos) ||
        name.rfind(manifest_tmp, 0) == 0)
      std::remove(join_path(out_dir, name).c_str());
  std::vector<const KdSequence*> mine;
  for (const auto& q : plan)
    if (q.seq_id % opts.workers == opts.worker) mine.push_back(&q);

  KdShardMeta meta;
  meta.teacher = provider->name();
  meta.model = provider->model();
  meta.k = k;
  meta.temperature = generate ? std::max(s.f64("TEACHER_TEMPERATURE"), 0.0) : 1.0;
  meta.student_tokenizer_hash = student->hash();
  meta.extra["mode"] = generate ? "generate" : "score";
  meta.extra["plan_hash"] = phash;
  meta.extra["worker"] = std::to_string(opts.worker) + "/" + std::to_string(opts.workers);
  const auto writer_opts = KdWriterOptions::from_settings(s);
  const int64_t shard_rows = s.i64("KD_SHARD_ROWS");

  StudentProjector projector(*student);
  ProjectionStats run_stats;
  Timer t_run;
  double teacher_seconds = 0;
  uint64_t teacher_tokens = 0;
  Progress progress("collect", mine.size() - std::min<size_t>(mine.size(), next_seq), "seqs");

  // The teacher's part of one sequence. It runs one sequence ahead on a second thread, so the teacher
  // works on sequence i + 1 while this thread projects and writes sequence i (one provider call at a
  // time, in plan order; nothing reaches a shard out of order, so resume is unchanged).
  struct TeacherPart {
    std::string text;
    std::vector<GeneratedToken> tokens;
    std::vector<TokenSpan> tspans;
    uint32_t kd_begin = 0;
    bool aligned = true;
    double seconds = 0;
  };
  const int max_new_tokens = static_cast<int>(s.i64("MAX_NEW_TOKENS"));
  const double temperature = s.f64("TEACHER_TEMPERATURE");
  const uint64_t seed = static_cast<uint64_t>(s.i64("SEED"));
  auto ask_teacher = [&, provider](const KdSequence& q) {
    TeacherPart t;
    const std::string& doc = texts[q.doc];
    Timer t_teacher;
    if (generate) {
      GenerateRequest req;
      req.prompt = doc.substr(q.begin, q.prompt_end - q.begin);
      req.max_tokens = max_new_tokens;
      req.top_k = k;
      req.temperature = temperature;
      req.seed = seed + static_cast<uint64_t>(q.seq_id);
      Generation g = provider->generate(req);
      t.text = req.prompt + g.text;
      t.kd_begin = static_cast<uint32_t>(req.prompt.size());
      t.tokens = std::move(g.tokens);
      t.aligned = teacher_spans(t.text, t.kd_begin, t.tokens, t.tspans);
    } else {
      t.text = doc.substr(q.begin, q.end - q.begin);
      Scoring sc = provider->score(t.text, k);
      t.tokens = std::move(sc.tokens);
      t.aligned = teacher_spans(t.text, 0, t.tokens, t.tspans);
      // Nothing predicts the teacher's first token: KD starts after it.
      if (t.aligned && !t.tspans.empty()) t.kd_begin = t.tspans[0].end;
    }
    t.seconds = t_teacher.seconds();
    return t;
  };
  size_t idx = static_cast<size_t>(next_seq);
  // One long-lived thread (LibTorch / OpenMP keep per-thread pools) fills a one-slot queue in plan order.
  struct Ahead {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<TeacherPart> slot;
    std::exception_ptr error;
    bool stop = false;
    std::thread th;
    ~Ahead() {
      {
        std::lock_guard<std::mutex> lock(mu);
        stop = true;
      }
      cv.notify_all();
      if (th.joinable()) th.join();
    }
    TeacherPart take() {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return slot.has_value() || error; });
      if (!slot) std::rethrow_exception(error);
      TeacherPart t = std::move(*slot);
      slot.reset();
      cv.notify_all();
      return t;
    }
  } ahead;
  ahead.th = std::thread([&, first = idx] {
    try {
      for (size_t i = first; i < mine.size(); ++i) {
        TeacherPart t = ask_teacher(*mine[i]);
        std::unique_lock<std::mutex> lock(ahead.mu);
        ahead.cv.wait(lock, [&] { return !ahead.slot.has_value() || ahead.stop; });
        if (ahead.stop) return;
        ahead.slot = std::move(t);
        ahead.cv.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(ahead.mu);
      ahead.error = std::current_exception();
      ahead.cv.notify_all();
    }
  });
  while (idx < mine.size()) {
    const int shard_index = static_cast<int>(manifest["shards"].size());
    const std::string path = shard_in(out_dir, opts.worker, opts.workers, shard_index);
    KdShardWriter writer(path, meta, writer_opts);
    ProjectionStats shard_stats;
    const size_t first = idx;
    while (idx < mine.size() && writer.rows() < shard_rows) {
      const KdSequence& q = *mine[idx];
      TeacherPart part = ahead.take();
      const std::string& text = part.text;
      const std::vector<GeneratedToken>& tokens = part.tokens;
      const std::vector<TokenSpan>& tspans = part.tspans;
      uint32_t kd_begin = part.kd_begin;
      const bool aligned = part.aligned;
      teacher_seconds += part.seconds;
      teacher_tokens += tokens.size();
      const auto st = student->encode(text);
      ProjectionStats seq_stats;
      std::vector<ProjectedPosition> rows;
      if (aligned) {
        rows = projector.project(text, st, tspans, tokens, kd_begin, &seq_stats);
      } else {
        // The teacher's token bytes do not spell the text: no position can be aligned (CE only, counted
        // as misaligned). In score mode nothing predicts the first token either way.
        log_warn("collect: sequence " + std::to_string(q.seq_id) + ": teacher tokens do not spell the text; CE only");
        if (!generate)
          for (const auto& t : st)
            if (t.end > t.begin) {
              kd_begin = t.end;
              break;
            }
        rows = projector.unaligned(st, kd_begin, &seq_stats);
      }
      shard_stats.add(seq_stats);
      for (size_t p = 0; p < rows.size(); ++p) {
        const auto& r = rows[p];
        writer.append(q.seq_id, static_cast<int32_t>(p), r.token_id, r.kd_valid, r.ids.data(), r.logprobs.data(),
                      r.ids.size(), r.other_logprob);
      }
      ++idx;
      progress.add(1, "rows " + std::to_string(writer.rows()));
    }
    // The shard records its own row accounting, so `inspect` reports what collect reported.
    const KdRowCounts counts = shard_stats.row_counts();
    if (counts.rows != writer.rows())
      throw Error("collect: internal error: " + std::to_string(counts.rows) + " rows accounted, " +
                  std::to_string(writer.rows()) + " written to " + path);
    for (const auto& kv : counts.to_key_values()) writer.set_metadata(kv.key, kv.value);
    writer.close();
    run_stats.add(shard_stats);
    nlohmann::json entry = {{"file", path.substr(parent_dir(path).size() + 1)},
                            {"rows", writer.rows()},
                            {"first_seq_id", mine[first]->seq_id},
                            {"last_seq_id", mine[idx - 1]->seq_id},
                            {"first_part_index", first},
                            {"last_part_index", idx - 1},
                            {"stats", projection_stats_json(shard_stats)}};
    manifest["shards"].push_back(entry);
    write_json_atomic(manifest_path, manifest);
    const auto js = projection_stats_json(shard_stats);
    log_info("collect: " + entry["file"].get<std::string>() + ": " + std::to_string(writer.rows()) +
             " rows; of the rows in range: KD " + std::to_string(js["kd_fraction"].get<double>()) +
             ", no teacher boundary (CE only) " + std::to_string(js["no_teacher_boundary_rate"].get<double>()) +
             ", invalid (teacher failures) " + std::to_string(js["invalid_row_rate"].get<double>()) +
             "; mean Other mass " + std::to_string(js["mean_other_mass"].get<double>()));
  }
  progress.finish();
  // The manifest and the report cover every shard of this worker (resumed runs included).
  KdRowCounts all;
  int64_t rows = 0;
  for (const auto& sh : manifest["shards"]) {
    rows += sh["rows"].get<int64_t>();
    all.add(KdRowCounts::from_json(sh["stats"]));
  }
  manifest["row_accounting"] = all.to_json();
  manifest["complete"] = true;
  write_json_atomic(manifest_path, manifest);
  auto& b = report.body();
  b["manifest"] = manifest;
  b["rows"] = rows;
  b["sequences_planned"] = plan.size();
  b["this_run"] = projection_stats_json(run_stats);
  b["this_run_seconds"] = t_run.seconds();
  b["teacher_seconds"] = teacher_seconds;
  b["teacher_tokens"] = teacher_tokens;
  b["capabilities"] = caps.to_json();
  return report.write(join_path(s.str("REPORTS_DIR"),
                                opts.report_name + std::string(opts.workers > 1 ? "_" + worker_tag(opts.worker, opts.workers) : "") +
                                    ".json"));
}

}  // namespace bkd
