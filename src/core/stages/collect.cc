#include "core/stages/collect.h"

#include <cmath>
#include <cstdio>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/teacher/provider.h"
#include "core/teacher/provider_factory.h"
#include "core/tokenizer/run_tokenizers.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"
#include "core/util/log.h"
#include "core/util/ordered_prefetch.h"
#include "core/util/progress.h"
#include "core/report/report.h"

namespace bkd {
namespace {
using json = nlohmann::json;

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
             std::to_string(q.end) + "/" + std::to_string(q.prompt_end) + (q.doc_start ? "^" : "") + "\n");
  }
  return h.hex_digest();
}

const char* mode_name(bool generate) { return generate ? "generate" : "score"; }

// ---- step 1: the teacher and K -------------------------------------------------------------------

struct Teacher {
  std::unique_ptr<Provider> owned;
  Provider* provider = nullptr;
  Capabilities caps;
  int k = 0;  // what the teacher is asked for
};

Teacher open_teacher(const Settings& s, const CollectSettings& cs, Provider* given) {
  Teacher t;
  t.provider = given;
  if (!t.provider) {
    t.owned = make_provider(s);
    t.provider = t.owned.get();
  }
  t.caps = t.provider->capabilities();
  if (cs.samples > 0) {
    if (cs.generate)
      throw UsageError("sampled KD (KD_SAMPLES=" + std::to_string(cs.samples) + ") draws from the teacher on given text, "
                       "and KD_MODE is generate", "set KD_MODE=score, or KD_SAMPLES=0 for top-K traces");
    if (!t.caps.sampled_scoring) t.provider->score_sampled("", cs.samples, 0);  // throws, saying why and what to use
    t.k = cs.samples;  // at most this many distinct tokens per position
    return t;
  }
  if (cs.generate) {
    require_logprobs(*t.provider, "collect KD traces");
  } else if (!t.caps.scoring) {
    throw UsageError("teacher '" + t.provider->name() + "' cannot score given text (KD_MODE=score)",
                     "use TEACHER_PROVIDER=local or an OpenAI-compatible vLLM server, or set KD_MODE=generate");
  }
  t.k = top_k_within_limit(t.caps, cs.top_k, t.provider->name() + "/" + t.provider->model());
  return t;
}

// ---- step 2: resume --------------------------------------------------------------------------------

// The shards of this worker that an abandoned plan left (starting over): nothing names them any more.
void remove_abandoned_shards(const KdTraceDir& traces, const CollectOptions& opts) {
  int removed = 0;
  for (int i = 0; file_exists(traces.shard(opts.worker, opts.workers, i)); ++i)
    removed += std::remove(traces.shard(opts.worker, opts.workers, i).c_str()) == 0;
  if (removed > 0) log_info("collect: removed " + std::to_string(removed) + " shard(s) of the earlier plan");
}

// The manifest this worker continues: the shards an earlier run finished (still on disk, same
// identity), or a fresh one. `next` is the index into this worker's part of the plan to go on from.
json resume_manifest(const KdTraceDir& traces, const CollectOptions& opts, const KdIdentity& id, size_t& next) {
  json manifest = id.to_json();
  manifest.update({{"worker", opts.worker}, {"workers", opts.workers}, {"shards", json::array()}, {"complete", false}});
  next = 0;
  const std::string path = traces.manifest(opts.worker, opts.workers);
  if (opts.restart) remove_abandoned_shards(traces, opts);
  if (opts.restart || !file_exists(path)) return manifest;
  json old;
  try {
    old = json::parse(read_file(path));
  } catch (const json::exception& e) {
    log_warn("collect: unreadable manifest " + path + " (" + e.what() + "); starting over");
    return manifest;
  }
  KdIdentity had;
  try {
    had = KdIdentity::from_json(old, path);
  } catch (const Error&) {
    log_warn("collect: " + path + " is from an older version; starting over");
    return manifest;
  }
  if (!had.differences(id).empty() || had.k != id.k) {
    log_warn("collect: earlier shards were made for another plan or teacher; starting over");
    remove_abandoned_shards(traces, opts);
    return manifest;
  }
  for (const auto& sh : old["shards"]) {
    if (!file_exists(traces.entry(sh["file"].get<std::string>()))) break;
    manifest["shards"].push_back(sh);
    next = sh["last_part_index"].get<size_t>() + 1;
  }
  if (next > 0) log_info("collect: resuming after " + std::to_string(next) + " finished sequences");
  return manifest;
}

// Half-written shards and manifests of a killed run (temp files) are garbage: the manifest decides.
void remove_temp_files(const KdTraceDir& traces, const CollectOptions& opts) {
  for (const auto& name : list_dir(traces.dir()))
    if (traces.is_temp_of(name, opts.worker, opts.workers)) std::remove(join_path(traces.dir(), name).c_str());
}

// ---- step 3: the teacher's part of one sequence (runs one sequence ahead) ---------------------------

struct TeacherPart {
  std::string text;
  std::vector<GeneratedToken> tokens;
  std::vector<TokenSpan> tspans;
  uint32_t kd_begin = 0;
  bool aligned = true;
  double seconds = 0;
};

TeacherPart ask_teacher(Provider& provider, const CollectSettings& cs, int k, const std::string& doc, const KdSequence& q) {
  TeacherPart t;
  Timer timer;
  if (cs.generate) {
    GenerateRequest req;
    req.prompt = doc.substr(q.begin, q.prompt_end - q.begin);
    req.instruction = kContinuationInstruction;
    req.max_tokens = cs.max_new_tokens;
    req.top_k = k;
    req.temperature = cs.temperature;
    req.seed = cs.seed + static_cast<uint64_t>(q.seq_id);
    Generation g = provider.generate(req);
    t.text = req.prompt + g.text;
    t.kd_begin = static_cast<uint32_t>(req.prompt.size());
    t.tokens = std::move(g.tokens);
    t.aligned = teacher_spans(t.text, t.kd_begin, t.tokens, t.tspans);
  } else {
    t.text = doc.substr(q.begin, q.end - q.begin);
    // Sampled KD: the draws depend only on the text, SEED and the sequence (a resumed run redraws the same).
    Scoring sc = cs.samples > 0 ? provider.score_sampled(t.text, cs.samples, cs.seed + static_cast<uint64_t>(q.seq_id))
                                : provider.score(t.text, k);
    t.tokens = std::move(sc.tokens);
    t.aligned = teacher_spans(t.text, 0, t.tokens, t.tspans);
    // Nothing predicts the teacher's first token: KD starts after it.
    if (t.aligned && !t.tspans.empty()) t.kd_begin = t.tspans[0].end;
  }
  t.seconds = timer.seconds();
  return t;
}

// ---- step 4: project and write ---------------------------------------------------------------------

// The student rows of one sequence from the teacher's part.
std::vector<ProjectedPosition> project_sequence(StudentProjector& projector, const Tokenizer& student,
                                                const TeacherPart& part, const KdSequence& q, bool generate,
                                                ProjectionStats& stats) {
  const auto st = student.encode(part.text);
  if (part.aligned) return projector.project(part.text, st, part.tspans, part.tokens, part.kd_begin, &stats);
  // The teacher's token bytes do not spell the text: no position can be aligned (CE only, counted as
  // misaligned). In score mode nothing predicts the first token either way.
  log_warn("collect: sequence " + std::to_string(q.seq_id) + ": teacher tokens do not spell the text; CE only");
  uint32_t kd_begin = part.kd_begin;
  if (!generate)
    for (const auto& t : st)
      if (t.end > t.begin) {
        kd_begin = t.end;
        break;
      }
  return projector.unaligned(st, kd_begin, &stats);
}

struct WriteTotals {
  ProjectionStats run_stats;
  double teacher_seconds = 0;
  uint64_t teacher_tokens = 0;
};

// Writes this worker's sequences from `next` on, shard by shard; each finished shard enters the
// manifest (written atomically) before the next one starts.
void write_shards(const KdTraceDir& traces, const CollectOptions& opts, const CollectSettings& cs, const KdPlan& plan,
                  const std::vector<const KdSequence*>& mine, size_t next, Teacher& teacher,
                  const Tokenizer& student, const KdShardMeta& meta, json& manifest, WriteTotals& totals) {
  const std::string manifest_path = traces.manifest(opts.worker, opts.workers);
  StudentProjector projector(student, cs.mid_token, cs.identity);
  Progress progress("collect", mine.size() - std::min(mine.size(), next), "seqs");
  // The teacher works on sequence i + 1 while this thread projects and writes sequence i (one provider
  // call at a time, in plan order; nothing reaches a shard out of order, so resume is unchanged).
  OrderedPrefetch<TeacherPart> ahead(next, mine.size(), [&](size_t i) {
    return ask_teacher(*teacher.provider, cs, teacher.k, plan.docs[mine[i]->doc].text, *mine[i]);
  });
  size_t idx = next;
  while (idx < mine.size()) {
    const int shard_index = static_cast<int>(manifest["shards"].size());
    const std::string path = traces.shard(opts.worker, opts.workers, shard_index);
    KdShardWriter writer(path, meta, cs.writer);
    ProjectionStats shard_stats;
    const size_t first = idx;
    while (idx < mine.size() && writer.rows() < cs.shard_rows) {
      const KdSequence& q = *mine[idx];
      TeacherPart part = ahead.take();
      totals.teacher_seconds += part.seconds;
      totals.teacher_tokens += part.tokens.size();
      ProjectionStats seq_stats;
      const auto rows = project_sequence(projector, student, part, q, cs.generate, seq_stats);
      int32_t pos = 0;
      if (q.doc_start) {  // the document starts after end-of-text: an input row, nothing to predict
        writer.append(q.seq_id, pos++, student.eos_id(), false, nullptr, nullptr, 0, 0.0f);
        ++seq_stats.positions;  // outside the KD range
      }
      shard_stats.add(seq_stats);
      for (const auto& r : rows)
        writer.append(q.seq_id, pos++, r.token_id, r.kd_valid, r.ids.data(), r.logprobs.data(), r.ids.size(),
                      r.other_logprob);
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
    totals.run_stats.add(shard_stats);
    const json js = projection_stats_json(shard_stats);
    json entry = {{"file", traces.shard_file_name(opts.worker, opts.workers, shard_index)},
                  {"rows", writer.rows()},
                  {"first_seq_id", mine[first]->seq_id},
                  {"last_seq_id", mine[idx - 1]->seq_id},
                  {"first_part_index", first},
                  {"last_part_index", idx - 1},
                  {"stats", js}};
    manifest["shards"].push_back(entry);
    write_json_atomic(manifest_path, manifest);
    log_info("collect: " + entry["file"].get<std::string>() + ": " + std::to_string(writer.rows()) +
             " rows; of the rows in range: KD " + std::to_string(js["kd_fraction"].get<double>()) +
             ", no teacher boundary (CE only) " + std::to_string(js["no_teacher_boundary_rate"].get<double>()) +
             ", invalid (teacher failures) " + std::to_string(js["invalid_row_rate"].get<double>()) +
             "; mean Other mass " + std::to_string(js["mean_other_mass"].get<double>()));
  }
  progress.finish();
}

// ---- step 5: finish the manifest and report --------------------------------------------------------

int64_t finish_manifest(const KdTraceDir& traces, const CollectOptions& opts, json& manifest) {
  KdRowCounts all;
  int64_t rows = 0;
  for (const auto& sh : manifest["shards"]) {
    rows += sh["rows"].get<int64_t>();
    all.add(KdRowCounts::from_json(sh["stats"]));
  }
  manifest["rows"] = rows;
  manifest["row_accounting"] = all.to_json();
  manifest["complete"] = true;
  write_json_atomic(traces.manifest(opts.worker, opts.workers), manifest);
  return rows;
}

}  // namespace

CollectSettings CollectSettings::from(const Settings& s) {
  CollectSettings c;
  c.generate = s.str("KD_MODE") == "generate";
  c.top_k = static_cast<int>(s.i64("TOP_K"));
  c.seq_len = s.i64("SEQ_LEN");
  c.kd_target_tokens = s.i64("KD_TARGET_TOKENS");
  c.prompt_tokens = s.i64("PROMPT_TOKENS");
  c.shard_rows = s.i64("KD_SHARD_ROWS");
  c.max_new_tokens = static_cast<int>(s.i64("MAX_NEW_TOKENS"));
  c.temperature = s.f64("TEACHER_TEMPERATURE");
  c.seed = static_cast<uint64_t>(s.i64("SEED"));
  c.sample_seed = static_cast<uint64_t>(s.i64("SAMPLE_SEED"));
  c.teacher_provider = s.str("TEACHER_PROVIDER");
  c.teacher_model = teacher_model_id(s);
  c.mid_token = s.flag("KD_MID_TOKEN");
  c.identity = student_tokenizer_is_teacher(s);
  c.samples = static_cast<int>(s.i64("KD_SAMPLES"));
  c.writer = KdWriterOptions::from_settings(s);
  return c;
}

std::string CollectSettings::projection_name() const {
  std::string n = identity ? "identity" : "";
  if (mid_token) n += n.empty() ? "mid-token" : "+mid-token";
  return n;
}

nlohmann::json projection_stats_json(const ProjectionStats& st) {
  // Row classes and rates: one definition for collect, the shard metadata and inspect (kd_accounting.h).
  nlohmann::json j = st.row_counts().to_json();
  j["mean_other_mass"] = st.kd_positions ? st.sum_other_mass / st.kd_positions : 0.0;
  j["mean_topk_coverage"] = st.kd_positions ? st.sum_topk_mass / st.kd_positions : 0.0;
  j["candidates"] = st.candidates;
  j["dedup_merges"] = st.merged;
  j["dedup_merge_rate"] = st.candidates ? double(st.merged) / double(st.candidates) : 0.0;
  j["candidates_to_other"] = st.to_other;
  j["mid_token_rows"] = st.mid_token;
  return j;
}

std::vector<KdSequence> plan_sequences(const std::vector<std::string>& docs, const Tokenizer& student,
                                       int64_t seq_len, int64_t target_positions, int64_t prompt_tokens,
                                       bool generate_mode, int64_t max_new_tokens) {
  std::vector<KdSequence> plan;
  int64_t covered = 0;
  const int64_t per_prompt = max_new_tokens >= 0 ? std::min(seq_len - prompt_tokens, max_new_tokens) : seq_len - prompt_tokens;
  for (size_t d = 0; d < docs.size() && covered < target_positions; ++d) {
    const auto toks = student.encode(docs[d]);
    // Chunks start and end on student token boundaries; the last short chunk of a document is kept
    // when it has at least 8 tokens.
    for (size_t a = 0; a < toks.size() && covered < target_positions; a += static_cast<size_t>(seq_len)) {
      const size_t b = std::min(toks.size(), a + static_cast<size_t>(seq_len));
      if (b - a < 8) break;
      KdSequence q{static_cast<int64_t>(plan.size()), d, toks[a].begin, toks[b - 1].end, toks[a].begin, a == 0};
      if (generate_mode) {
        const size_t p = std::min(b - 1, a + static_cast<size_t>(prompt_tokens));
        q.prompt_end = toks[p].begin;
        q.end = q.prompt_end;  // the teacher writes the rest
      }
      if (q.end <= q.begin && !generate_mode) continue;
      plan.push_back(q);
      covered += generate_mode ? 0 : static_cast<int64_t>(b - a);
      if (generate_mode) covered += std::max<int64_t>(1, per_prompt);  // what is asked; the teacher may stop sooner
    }
  }
  return plan;
}

KdPlan plan_collection(const Settings& s, Split split, int64_t target_positions, bool score_chunks) {
  const RunLayout layout(s);
  const CollectSettings cs = CollectSettings::from(s);
  KdPlan p;
  const std::string split_path = layout.corpus_split(split);
  if (!file_exists(split_path))
    throw Error("the " + std::string(split_name(split)) + " split " + split_path + " does not exist",
                "run `bitnet-kde prepare` first");
  p.docs = in_sample_order(read_split_jsonl(split_path), cs.sample_seed);
  p.student = load_student_tokenizer(s);
  p.student_tokenizer_hash = p.student->hash();
  std::vector<std::string> texts;
  texts.reserve(p.docs.size());
  for (const auto& d : p.docs) texts.push_back(d.text);
  p.sequences = plan_sequences(texts, *p.student, cs.seq_len, target_positions >= 0 ? target_positions : cs.kd_target_tokens,
                               cs.prompt_tokens, cs.generate && !score_chunks, cs.max_new_tokens);
  p.hash = plan_hash(p.sequences, p.docs);
  return p;
}

KdIdentity expected_kd_identity(const Settings& s) {
  const CollectSettings cs = CollectSettings::from(s);
  const KdPlan plan = plan_collection(s, Split::Train, -1);
  KdIdentity id;
  id.plan_hash = plan.hash;
  id.teacher = cs.teacher_provider;
  id.model = cs.teacher_model;
  id.mode = mode_name(cs.generate);
  id.k_requested = cs.top_k;
  id.student_tokenizer_hash = plan.student_tokenizer_hash;
  id.projection = cs.projection_name();
  id.samples = cs.samples;
  return id;
}

nlohmann::json run_collect(const Settings& s, const CollectOptions& opts) {
  if (opts.workers < 1 || opts.worker < 0 || opts.worker >= opts.workers)
    throw UsageError("--worker " + std::to_string(opts.worker) + "/" + std::to_string(opts.workers) +
                     " is not a valid partition", "use --worker i/n with 0 <= i < n");
  const RunLayout layout(s);
  layout.ensure_folders();
  const KdTraceDir traces = opts.eval_traces ? layout.eval_kd_traces() : layout.kd_traces();
  ensure_dir(traces.dir());
  Report report("collect", &s);

  if (opts.merge) {
    if (opts.workers < 2)
      throw UsageError("--merge combines the manifests of `collect --worker i/n` runs, and no worker count was given",
                       "pass the number of workers: `bitnet-kde collect --merge --worker 0/N`");
    report.body() = merge_kd_manifests(traces, opts.workers);
    return report.write(layout.collect_merge_report(opts.report_name));
  }

  const CollectSettings cs = CollectSettings::from(s);
  Teacher teacher = open_teacher(s, cs, opts.provider);
  // The plan: the chosen split (never val/test for training) and the student tokenizer.
  const KdPlan plan = plan_collection(s, opts.split, opts.target_positions);
  log_info("collect: " + std::to_string(plan.sequences.size()) + " sequences planned (" + mode_name(cs.generate) +
           " mode, teacher " + teacher.provider->name() + "/" + teacher.provider->model() +
           (cs.samples > 0 ? ", " + std::to_string(cs.samples) + " draws per position" : ", K=" + std::to_string(teacher.k)) + ")");
  KdIdentity id;
  id.plan_hash = plan.hash;
  id.teacher = teacher.provider->name();
  id.model = teacher.provider->model();
  id.mode = mode_name(cs.generate);
  id.k_requested = cs.top_k;
  id.k = teacher.k;
  id.student_tokenizer_hash = plan.student_tokenizer_hash;
  id.projection = cs.projection_name();
  id.samples = cs.samples;

  size_t next = 0;
  json manifest = resume_manifest(traces, opts, id, next);
  remove_temp_files(traces, opts);
  std::vector<const KdSequence*> mine;
  for (const auto& q : plan.sequences)
    if (q.seq_id % opts.workers == opts.worker) mine.push_back(&q);

  KdShardMeta meta;
  meta.teacher = id.teacher;
  meta.model = id.model;
  meta.k = teacher.k;
  meta.temperature = cs.generate ? std::max(cs.temperature, 0.0) : 1.0;
  meta.student_tokenizer_hash = id.student_tokenizer_hash;
  meta.extra["mode"] = id.mode;
  meta.extra["plan_hash"] = id.plan_hash;
  if (!id.projection.empty()) meta.extra["projection"] = id.projection;
  if (cs.samples > 0) meta.extra["samples"] = std::to_string(cs.samples);
  meta.extra["worker"] = std::to_string(opts.worker) + "/" + std::to_string(opts.workers);
  if (cs.generate) meta.extra["teacher_instruction"] = kContinuationInstruction;

  Timer t_run;
  WriteTotals totals;
  write_shards(traces, opts, cs, plan, mine, next, teacher, *plan.student, meta, manifest, totals);
  // A run whose rows all lack the teacher's distribution taught nothing: fail, and leave the manifest
  // incomplete so that training refuses it.
  if (const KdRowCounts run = totals.run_stats.row_counts(); run.in_range() > 0 && run.kd == 0)
    throw Error("collect: none of this run's " + std::to_string(run.in_range()) + " rows in the KD range carries the "
                    "teacher's distribution (misaligned " + std::to_string(run.misaligned) + ", no logprobs " +
                    std::to_string(run.no_logprobs) + ", not finite " + std::to_string(run.not_finite) +
                    ", no teacher boundary " + std::to_string(run.no_teacher_boundary) + ")",
                "the teacher's replies do not line up with the text: check TEACHER_PROVIDER, TEACHER_MODEL and the "
                "server (collect.json and the shards' row accounting say which rows failed how)");
  const int64_t rows = finish_manifest(traces, opts, manifest);

  auto& b = report.body();
  b["manifest"] = manifest;
  b["rows"] = rows;
  b["sequences_planned"] = plan.sequences.size();
  // What was asked for and what this worker's rows reached (generate mode: the teacher may stop early).
  b["target_positions"] = opts.target_positions >= 0 ? opts.target_positions : cs.kd_target_tokens;
  b["rows_in_kd_range"] = KdRowCounts::from_json(manifest["row_accounting"]).in_range();
  b["this_run"] = projection_stats_json(totals.run_stats);
  b["this_run_seconds"] = t_run.seconds();
  b["teacher_seconds"] = totals.teacher_seconds;
  b["teacher_tokens"] = totals.teacher_tokens;
  b["capabilities"] = teacher.caps.to_json();
  return report.write(layout.collect_report(opts.report_name, opts.worker, opts.workers));
}

}  // namespace bkd
