#include "torch/stages/experiment.h"

#include <cmath>
#include <map>
#include <sstream>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/kd/kd_accounting.h"
#include "core/kd/kd_manifest.h"
#include "core/stages/collect.h"
#include "core/report/intervals.h"
#include "core/report/report.h"
#include "core/stages/prepare.h"
#include "core/tokenizer/run_tokenizers.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "torch/eval/eval_quality.h"
#include "torch/model/checkpoint.h"
#include "torch/model/model_api.h"
#include "torch/stages/held_out.h"
#include "torch/stages/train.h"

namespace bkd {
namespace {
using json = nlohmann::json;

using Changes = std::map<std::string, std::string>;
// The arms with the teacher's tokenizer share one data folder: prepared, collected and held out once.
constexpr const char* kTeacherTokenizerSet = "teacher_tokenizer";
// A student started from a teacher needs the teacher's whole vocabulary: with a trimmed teacher head
// (student_from_teacher.h) init and its control take the full-head teacher, for their traces too.
constexpr const char* kFullHeadTeacherTokenizerSet = "teacher_tokenizer_full_head";

const std::vector<ExperimentArm>& all_arms() {
  static const std::vector<ExperimentArm> arms = {
      {"kd", "KD student: KL + CE + format loss, ternary, A8 -> A4 flip", [](TrainOptions&) {}},
      {"ce", "the same token stream and loss without the KL term", [](TrainOptions& o) { o.loss.kd = 0.0; }},
      {"a8", "KD, 8-bit activations throughout (no flip)", [](TrainOptions& o) { o.flip_enabled = false; }},
      {"fp", "KD, full-precision weights and activations, same shape",
       [](TrainOptions& o) {
         o.model.bitlinear = false;
         o.start_mode = QuantMode::FullPrecision;
         o.flip_enabled = false;
       }},
      {"k100", "KD on top-100 + Other traces (the others: TOP_K)", [](TrainOptions&) {},
       [](const Settings&) { return Changes{{"TOP_K", "100"}}; }, "k100"},
      {"rskd", "sampled KD: EXPERIMENT_RSKD_DRAWS draws per position from the teacher's full distribution",
       [](TrainOptions&) {}, [](const Settings& s) { return Changes{{"KD_SAMPLES", s.str("EXPERIMENT_RSKD_DRAWS")}}; },
       "rskd"},
      {"mid", "KD with mid-token rows (KD_MID_TOKEN): rows inside a teacher token get its conditioned distribution",
       [](TrainOptions&) {}, [](const Settings&) { return Changes{{"KD_MID_TOKEN", "true"}}; }, "mid"},
      {"tok", "KD with the teacher's tokenizer (identity projection), the student's shape", [](TrainOptions&) {},
       [](const Settings&) { return Changes{{"STUDENT_TOKENIZER", kStudentTokenizerIsTeacher}}; }, kTeacherTokenizerSet},
      {"tshape", "the teacher's tokenizer and shape, drawn weights (the control for init; its teacher: init's)", [](TrainOptions&) {},
       [](const Settings&) { return Changes{{"STUDENT_TOKENIZER", kStudentTokenizerIsTeacher}, {"STUDENT_INIT", "teacher-shape"}}; },
       kFullHeadTeacherTokenizerSet, true},
      {"init", "the teacher's tokenizer, shape and weights (SubLN inserted), then ternary KD; the teacher with its full head",
       [](TrainOptions&) {},
       [](const Settings&) { return Changes{{"STUDENT_TOKENIZER", kStudentTokenizerIsTeacher}, {"STUDENT_INIT", "teacher"}}; },
       kFullHeadTeacherTokenizerSet, true},
  };
  return arms;
}

// Scores cached beside a run are reused only when made with this scoring (held_out.h, score_texts).
constexpr const char* kScoring = "chunks-in-document-context";

// The score kept beside a run (eval.json), when it was made for this checkpoint, these chunks and this
// scoring; null otherwise.
json cached_score(const std::string& path, const std::string& checkpoint, size_t chunks) {
  if (!file_exists(path)) return nullptr;
  json cached = json::parse(read_file(path));
  if (cached.value("checkpoint", "") == checkpoint && cached.value("chunks", size_t(0)) == chunks &&
      cached.value("scoring", "") == kScoring)
    return cached;
  return nullptr;
}

struct RunScore {
  double bpb = 0, top1 = 0, kl = 0;
  json j;
};

// What an arm trains and is scored with: its settings, its student tokenizer, and the held-out text
// (the same chunks for every arm) with the teacher's rows on its tokenizer's positions.
struct ArmInputs {
  Settings settings;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const HeldOut> held_out;
};

// Trains (or finds finished) one arm at one seed and scores it; the score is kept beside the run and
// reused while its checkpoint is the same.
RunScore run_arm(const ArmInputs& in, const RunLayout& layout, const ExperimentArm& arm, int64_t seed, int64_t budget,
                 const EvalSettings& es) {
  const Settings& s = in.settings;
  const HeldOut& h = *in.held_out;
  const std::string dir = layout.experiment_run(arm.name, seed);
  TrainStageOptions t;
  t.role = "student";
  t.resume = true;  // an interrupted run continues
  t.adjust = [&](TrainOptions& o) {
    o.seed = uint64_t(seed);
    o.budget_tokens = budget;
    o.ckpt_dir = dir;
    o.progress = false;
    o.metric_sinks = false;  // the role's TensorBoard folder belongs to the pipeline's run
    arm.apply(o);
  };
  const TrainStageResult tr = run_train_stage(s, t);
  const std::string score_path = join_path(dir, "eval.json");
  const auto checkpoint = latest_checkpoint(tr.role_dir);
  if (!checkpoint) throw Error("experiment: no checkpoint in " + tr.role_dir + " after training");
  RunScore r;
  r.j = cached_score(score_path, *checkpoint, h.chunks.size());
  if (r.j.is_null()) {  // the model is loaded only to score it
    LoadedModel m = load_model(*checkpoint);
    torch::NoGradGuard ng;
    const TextScore ts = score_texts(m, h.chunks, *in.tokenizer, in.tokenizer->eos_id());
    r.j = {{"arm", arm.name},
           {"seed", seed},
           {"checkpoint", m.checkpoint},
           {"chunks", h.chunks.size()},
           {"scoring", kScoring},
           {"mode", to_string(m.mode)},
           {"seen_tokens", m.state.value("seen_tokens", int64_t(0))},
           {"bits_per_byte", ts.bits_per_byte()},
           {"train_tokens_per_s", tr.already_finished ? json(nullptr) : json(tr.train.tokens_per_s)}};
    if (!h.kd.empty()) {
      const KdAgreement a = kd_agreement(m, h.kd, es.seq_len, es.batch);
      r.j["top1_agreement"] = a.top1();
      r.j["kl_teacher_student"] = a.kl();
    }
    write_file_atomic(score_path, r.j.dump(2) + "\n");
  }
  r.bpb = r.j["bits_per_byte"];
  r.top1 = r.j.value("top1_agreement", std::nan(""));
  r.kl = r.j.value("kl_teacher_student", std::nan(""));
  log_info("experiment: " + arm.name + " seed " + std::to_string(seed) + ": " + std::to_string(r.bpb) + " bits/byte, top-1 " +
           std::to_string(r.top1) + ", KL " + std::to_string(r.kl));
  return r;
}

// What a collection stores: bytes per position on disk (all shards over all rows) and what its rows carry.
json trace_storage(const KdTraceDir& dir) {
  const KdManifest m = read_kd_manifest(dir);
  uint64_t bytes = 0;
  for (const auto& p : m.shard_paths) bytes += file_size(p);
  const KdRowCounts c = KdRowCounts::from_json(m.json["row_accounting"]);
  double other = 0, rows_kd = 0;
  for (const auto& sh : m.json["shards"]) {
    const double kd = sh["stats"].value("rows_kd", 0.0);
    other += sh["stats"].value("mean_other_mass", 0.0) * kd;
    rows_kd += kd;
  }
  return {{"manifest", m.path},
          {"identity", m.identity.to_json()},
          {"rows", m.rows},
          {"bytes", bytes},
          {"bytes_per_position", m.rows ? double(bytes) / double(m.rows) : 0.0},
          {"kd_fraction", c.kd_fraction()},
          {"no_teacher_boundary_rate", c.no_teacher_boundary_rate()},
          {"mean_other_mass", rows_kd > 0 ? other / rows_kd : 0.0}};
}

// Whether the teacher is the project's own with a trimmed head (TEACHER_VOCAB_MIN_COUNT > 0).
bool own_teacher_with_trimmed_head(const Settings& s) {
  return s.str("TEACHER_PROVIDER") == "local" && s.str("TEACHER_MODEL_DIR").empty() && s.i64("TEACHER_VOCAB_MIN_COUNT") > 0;
}

// The project's own teacher retrained with its full head (TEACHER_VOCAB_MIN_COUNT=0, one seed: SEED) in
// CKPT_DIR/experiment/teacher_full_head, or found there; returns the settings it is the teacher of.
Settings full_head_teacher(const Settings& s, const RunLayout& layout) {
  const std::string dir = layout.experiment_teacher();
  const Settings ts = s.with({{"TEACHER_VOCAB_MIN_COUNT", "0"}, {"CKPT_DIR", dir}});
  TrainStageOptions t;
  t.role = "teacher";
  t.resume = true;
  t.adjust = [](TrainOptions& o) {
    o.progress = false;
    o.metric_sinks = false;
  };
  log_info("experiment: the teacher with its full head (TEACHER_VOCAB_MIN_COUNT=0) in " + dir);
  const TrainStageResult tr = run_train_stage(ts, t);
  if (!latest_checkpoint(tr.role_dir)) throw Error("experiment: no checkpoint in " + tr.role_dir + " after training the full-head teacher");
  return ts;
}

// The settings an arm trains with: the experiment's, or (an arm that changes settings) those with the
// changes and its trace set's own KD_DIR, after collecting (or finding) those traces. A change of the
// student tokenizer changes what prepare makes: the set then has a data folder of its own (DATA_DIR,
// REPORTS_DIR for its prepare and collect reports), prepared first.
Settings arm_settings(const Settings& s, const RunLayout& layout, const ExperimentArm& arm) {
  if (!arm.changes) return s;
  Changes changes = arm.changes(s);
  const std::string dir = layout.experiment_traces(arm.trace_set);
  if (arm.full_head_teacher && own_teacher_with_trimmed_head(s)) {
    const Settings teacher = full_head_teacher(s, layout);  // trained first, or found
    changes["TEACHER_VOCAB_MIN_COUNT"] = "0";
    changes["CKPT_DIR"] = RunLayout(teacher).checkpoints();
  }
  changes["KD_DIR"] = dir;
  const bool own_data = changes.count("STUDENT_TOKENIZER") > 0;
  if (own_data) {
    changes["DATA_DIR"] = dir;
    changes["REPORTS_DIR"] = join_path(dir, "reports");
  }
  const Settings ts = s.with(changes);
  log_info("experiment: KD traces of arm " + arm.name + " in " + dir);
  if (own_data) run_prepare(ts);
  CollectOptions co;
  co.report_name = "experiment_collect_" + arm.trace_set;
  run_collect(ts, co);
  return ts;
}

// What the arms of one data folder share: the student tokenizer its prepare used and the held-out
// text, with the teacher's rows on that tokenizer's positions (the chunks are the experiment's for every
// folder, so every arm scores the same text).
struct DataInputs {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const HeldOut> held_out;
};

// An arm's inputs; each data folder's tokenizer and held-out rows are made once, for its first arm.
ArmInputs arm_inputs(const Settings& s, const RunLayout& layout, const ExperimentArm& arm, const EvalSettings& es,
                     const std::shared_ptr<const HeldOut>& h, std::map<std::string, DataInputs>& of_data) {
  ArmInputs in{arm_settings(s, layout, arm), nullptr, nullptr};
  const RunLayout arm_layout(in.settings);
  DataInputs& d = of_data[arm_layout.data()];
  if (!d.tokenizer) {
    d.tokenizer = load_student_tokenizer(in.settings);
    if (arm_layout.data() == layout.data()) {
      d.held_out = h;
    } else {
      auto ho = std::make_shared<HeldOut>(held_out_text(in.settings, arm_layout, es));
      ho->chunks = h->chunks;  // the same text as every other arm
      ho->j = h->j;
      d.held_out = ho;
    }
  }
  in.tokenizer = d.tokenizer, in.held_out = d.held_out;
  return in;
}

// The full-head teacher scored on the held-out chunks; NaN when the teacher is not the project's own or
// already has a full head.
double full_head_teacher_bpb(const Settings& s, const RunLayout& layout, const HeldOut& h) {
  if (!own_teacher_with_trimmed_head(s) || !s.flag("EXPERIMENT_FULL_HEAD_TEACHER")) return std::nan("");
  const Settings ts = full_head_teacher(s, layout);
  const std::string checkpoint = *latest_checkpoint(RunLayout(ts).role_checkpoints("teacher"));
  const std::string score_path = join_path(layout.experiment_teacher(), "eval.json");
  if (const json cached = cached_score(score_path, checkpoint, h.chunks.size()); !cached.is_null())
    return cached["bits_per_byte"].get<double>();
  LocalTeacherModel teacher = load_local_teacher(ts);  // that checkpoint, with the teacher's tokenizer
  torch::NoGradGuard ng;
  const double bpb = score_texts(teacher.model, h.chunks, *teacher.tokenizer, teacher.bos).bits_per_byte();
  write_file_atomic(score_path,
                    json{{"checkpoint", checkpoint}, {"chunks", h.chunks.size()}, {"scoring", kScoring}, {"bits_per_byte", bpb}}.dump(2) + "\n");
  return bpb;
}

std::string fmt(double v, int digits = 4) {
  if (!std::isfinite(v)) return "–";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::string interval_text(const Interval& i, int digits = 4) {
  return fmt(i.mean, digits) + " [" + fmt(i.lo, digits) + ", " + fmt(i.hi, digits) + "]";
}

// One row per comparison: (name, arm a, arm b, meaning): the per-seed difference a - b.
struct Comparison {
  std::string name, a, b, meaning;
};

const std::vector<Comparison>& comparisons() {
  static const std::vector<Comparison> c = {
      {"kd_gain", "ce", "kd", "what KD buys: CE-only minus KD (positive: KD is better)"},
      {"flip_cost", "kd", "a8", "what the A8->A4 flip costs: KD (flipped) minus KD trained A8 throughout"},
      {"ternary_cost", "kd", "fp", "what ternary costs: ternary KD minus full-precision KD"},
      {"k100_gain", "kd", "k100", "what top-100 buys over the default top-K: KD minus KD on top-100 traces"},
      {"rskd_gain", "kd", "rskd", "what sampled KD buys over top-K: KD minus sampled KD"},
      {"mid_token_gain", "kd", "mid", "what mid-token rows buy: KD minus KD with KD_MID_TOKEN"},
      {"same_tokenizer_gain", "kd", "tok",
       "what the teacher's tokenizer buys over the student's own with projection: KD minus KD with the teacher's tokenizer "
       "(the vocabularies differ, so do the embedding tables and the bytes a token budget covers)"},
      {"init_gain", "tshape", "init", "what starting from the teacher buys: the teacher's shape drawn minus started from the teacher"},
  };
  return c;
}

// An SVG dot plot of bits per byte: each seed a dot, each arm's mean with its 95% interval.
std::string svg_plot(const std::vector<std::string>& arms, const std::map<std::string, std::vector<double>>& values,
                     const std::map<std::string, Interval>& iv, double teacher) {
  double lo = 1e9, hi = -1e9;
  for (const auto& a : arms) {
    for (double v : values.at(a)) lo = std::min(lo, v), hi = std::max(hi, v);
    lo = std::min(lo, iv.at(a).lo), hi = std::max(hi, iv.at(a).hi);
  }
  if (std::isfinite(teacher)) lo = std::min(lo, teacher), hi = std::max(hi, teacher);
  const double pad = std::max(1e-3, (hi - lo) * 0.1);
  lo -= pad, hi += pad;
  const int W = 120 * int(arms.size()) + 80, H = 260;
  auto y = [&](double v) { return 20.0 + (H - 50) * (hi - v) / (hi - lo); };
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='11'>";
  o << "<line x1='60' y1='20' x2='60' y2='" << H - 30 << "' stroke='#888'/>";
  for (int k = 0; k <= 4; ++k) {
    const double v = lo + (hi - lo) * k / 4;
    o << "<text x='55' y='" << y(v) + 4 << "' text-anchor='end'>" << fmt(v, 3) << "</text>";
  }
  if (std::isfinite(teacher))
    o << "<line x1='60' x2='" << W - 10 << "' y1='" << y(teacher) << "' y2='" << y(teacher)
      << "' stroke='#c44' stroke-dasharray='4 3'/><text x='" << W - 12 << "' y='" << y(teacher) - 4
      << "' text-anchor='end' fill='#c44'>teacher</text>";
  for (size_t i = 0; i < arms.size(); ++i) {
    const double x = 100 + 120.0 * double(i);
    const Interval& c = iv.at(arms[i]);
    o << "<line x1='" << x << "' x2='" << x << "' y1='" << y(c.lo) << "' y2='" << y(c.hi) << "' stroke='#226' stroke-width='2'/>";
    o << "<rect x='" << x - 8 << "' y='" << y(c.mean) - 1 << "' width='16' height='2' fill='#226'/>";
    for (size_t k = 0; k < values.at(arms[i]).size(); ++k)
      o << "<circle cx='" << x + 14 + 5 * double(k) << "' cy='" << y(values.at(arms[i])[k]) << "' r='3' fill='#8ab'/>";
    o << "<text x='" << x << "' y='" << H - 12 << "' text-anchor='middle'>" << arms[i] << "</text>";
  }
  o << "<text x='10' y='12'>held-out bits per byte (lower is better): mean, 95% interval, seeds</text></svg>";
  return o.str();
}

}  // namespace

std::vector<ExperimentArm> experiment_arms(const std::string& list) {
  std::vector<ExperimentArm> out;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    const ExperimentArm* found = nullptr;
    for (const auto& a : all_arms())
      if (a.name == name) found = &a;
    if (!found) throw UsageError("EXPERIMENT_ARMS names an unknown arm '" + name + "'", "use any of kd, ce, a8, fp, k100, rskd, mid, tok, tshape, init");
    for (const auto& a : out)
      if (a.name == name) throw UsageError("EXPERIMENT_ARMS names '" + name + "' twice");
    out.push_back(*found);
  }
  if (out.empty()) throw UsageError("EXPERIMENT_ARMS is empty", "use for example kd,ce,a8,fp");
  return out;
}

json run_experiment(const Settings& s) {
  const RunLayout layout(s);
  const EvalSettings es = EvalSettings::from(s);
  const auto arms = experiment_arms(s.str("EXPERIMENT_ARMS"));
  const int64_t seeds = s.i64("EXPERIMENT_SEEDS"), seed0 = s.i64("SEED");
  const int64_t budget = s.i64("EXPERIMENT_BUDGET_TOKENS") > 0 ? s.i64("EXPERIMENT_BUDGET_TOKENS") : s.i64("BUDGET_TOKENS");
  if (!student_tokenizer_is_teacher(s) && !file_exists(layout.student_tokenizer()))
    throw Error("no student tokenizer at " + layout.student_tokenizer(), "run `make collect` (prepare, teacher, collect) first");
  Report rep("experiment", &s);
  const auto held_out = std::make_shared<const HeldOut>(held_out_text(s, layout, es));
  const HeldOut& h = *held_out;
  if (h.kd.empty()) log_warn("experiment: no held-out KD rows: top-1 agreement and KL are left out");

  double teacher_bpb = std::nan("");
  if (es.local_teacher) {
    torch::NoGradGuard ng;
    LocalTeacherModel t = load_local_teacher(s);
    teacher_bpb = score_texts(t.model, h.chunks, *t.tokenizer, t.bos).bits_per_byte();
  }

  const double teacher_full_bpb = full_head_teacher_bpb(s, layout, h);

  // Every arm's settings (arms with traces of their own collect them first) and what its traces store.
  std::map<std::string, ArmInputs> inputs_of;
  std::map<std::string, DataInputs> of_data;
  json storage = json::object();
  for (const auto& arm : arms) {
    inputs_of.emplace(arm.name, arm_inputs(s, layout, arm, es, held_out, of_data));
    const std::string traces = arm.changes ? arm.trace_set : "pipeline";
    if (!storage.contains(traces)) storage[traces] = trace_storage(RunLayout(inputs_of.at(arm.name).settings).kd_traces());
  }

  // Seed-major: after each seed every arm has one more run, so a cut-short experiment is balanced.
  std::map<std::string, std::vector<double>> bpb, top1, kl;
  json runs = json::array();
  for (int64_t k = 0; k < seeds; ++k)
    for (const auto& arm : arms) {
      const RunScore r = run_arm(inputs_of.at(arm.name), layout, arm, seed0 + k, budget, es);
      bpb[arm.name].push_back(r.bpb), top1[arm.name].push_back(r.top1), kl[arm.name].push_back(r.kl);
      runs.push_back(r.j);
    }

  json per_arm = json::object();
  std::map<std::string, Interval> bpb_iv;
  std::vector<std::string> names;
  for (const auto& arm : arms) {
    names.push_back(arm.name);
    bpb_iv[arm.name] = mean_interval(bpb[arm.name]);
    per_arm[arm.name] = {{"what", arm.what},
                         {"bits_per_byte", to_json(bpb_iv[arm.name])},
                         {"top1_agreement", to_json(mean_interval(top1[arm.name]))},
                         {"kl_teacher_student", to_json(mean_interval(kl[arm.name]))}};
  }
  json diffs = json::object();
  for (const auto& c : comparisons()) {
    if (!bpb.count(c.a) || !bpb.count(c.b)) continue;
    diffs[c.name] = {{"meaning", c.meaning},
                     {"bits_per_byte", to_json(paired_difference(bpb[c.a], bpb[c.b]))},
                     {"top1_agreement", to_json(paired_difference(top1[c.a], top1[c.b]))},
                     {"kl_teacher_student", to_json(paired_difference(kl[c.a], kl[c.b]))}};
  }
  if (std::isfinite(teacher_bpb) && bpb.count("kd")) {
    std::vector<double> gap;
    for (double v : bpb["kd"]) gap.push_back(v - teacher_bpb);
    diffs["student_minus_teacher"] = {{"meaning", "KD student minus the teacher (one teacher: the interval is over student seeds)"},
                                      {"bits_per_byte", to_json(mean_interval(gap))}};
  }
  auto finite_or_null = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  rep.body() = {{"arms", per_arm},
                {"differences", diffs},
                {"teacher_bits_per_byte", finite_or_null(teacher_bpb)},
                {"teacher_full_head_bits_per_byte", finite_or_null(teacher_full_bpb)},
                {"trimmed_head_cost_bits_per_byte", finite_or_null(teacher_bpb - teacher_full_bpb)},
                {"kd_trace_storage", storage},
                {"seeds", seeds},
                {"first_seed", seed0},
                {"budget_tokens", budget},
                {"held_out", h.j},
                {"runs", runs},
                {"protocol",
                 "every arm trains on the KD manifest's sequences; within a seed all arms share data order and initial "
                 "weights; differences are per-seed (paired) with a 95% Student-t interval; a difference is claimed only "
                 "when its interval excludes zero"}};
  json out = rep.write(layout.experiment_report());

  // The page: a table per arm, the differences, and the plot.
  std::ostringstream html;
  html << "<!doctype html><meta charset='utf-8'><title>bitnet-kde experiment</title><body style='font-family:sans-serif'>"
       << "<h1>Controlled experiment</h1><p>" << seeds << " seeds per arm (SEED " << seed0 << ".." << seed0 + seeds - 1
       << "), " << budget << " training tokens per run, " << h.chunks.size()
       << " held-out chunks. Means with 95% Student-t intervals; differences are paired per seed.</p>"
       << "<table border='1' cellpadding='4' style='border-collapse:collapse'><tr><th>arm</th><th>what</th>"
       << "<th>bits/byte</th><th>top-1 agreement</th><th>KL(teacher‖student)</th></tr>";
  for (const auto& arm : arms)
    html << "<tr><td>" << arm.name << "</td><td>" << arm.what << "</td><td>" << interval_text(bpb_iv[arm.name]) << "</td><td>"
         << interval_text(mean_interval(top1[arm.name]), 3) << "</td><td>" << interval_text(mean_interval(kl[arm.name]), 3)
         << "</td></tr>";
  if (std::isfinite(teacher_bpb)) html << "<tr><td>teacher</td><td>local teacher</td><td>" << fmt(teacher_bpb) << "</td><td></td><td></td></tr>";
  if (std::isfinite(teacher_full_bpb))
    html << "<tr><td>teacher, full head</td><td>the teacher retrained with its full head (one seed); the trimmed head costs "
         << fmt(teacher_bpb - teacher_full_bpb) << " bits/byte</td><td>" << fmt(teacher_full_bpb) << "</td><td></td><td></td></tr>";
  html << "</table><h2>Differences (bits/byte)</h2><ul>";
  for (auto it = diffs.begin(); it != diffs.end(); ++it) {
    const json& d = it.value()["bits_per_byte"];
    html << "<li><b>" << it.key() << "</b> (" << it.value()["meaning"].get<std::string>() << "): " << fmt(d["mean"].get<double>())
         << " [" << fmt(d["ci95"][0].get<double>()) << ", " << fmt(d["ci95"][1].get<double>()) << "] — "
         << (d["excludes_zero"].get<bool>() ? "the interval excludes zero" : "no difference shown") << "</li>";
  }
  html << "</ul><h2>KD traces: what each stores</h2><table border='1' cellpadding='4' style='border-collapse:collapse'>"
       << "<tr><th>traces</th><th>bytes per position</th><th>rows with KD</th><th>mean Other mass</th></tr>";
  for (auto it = storage.begin(); it != storage.end(); ++it)
    html << "<tr><td>" << it.key() << "</td><td>" << fmt(it.value()["bytes_per_position"].get<double>(), 1) << "</td><td>"
         << fmt(it.value()["kd_fraction"].get<double>(), 4) << "</td><td>" << fmt(it.value()["mean_other_mass"].get<double>(), 3)
         << "</td></tr>";
  html << "</table>" << svg_plot(names, bpb, bpb_iv, teacher_bpb) << "</body>";
  write_file_atomic(layout.experiment_html(), html.str());
  return out;
}

}  // namespace bkd
