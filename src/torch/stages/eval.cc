#include "torch/stages/eval.h"

#include <cmath>
#include <limits>
#include <optional>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/engine/decode_timing.h"
#include "core/report/html_report.h"
#include "core/report/report.h"
#include "core/stages/collect.h"
#include "core/tokenizer/run_tokenizers.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"
#include "torch/eval/eval_quality.h"
#include "torch/model/checkpoint.h"
#include "torch/model/engine_export.h"
#include "torch/stages/held_out.h"
#include "torch/train/kd_shard_source.h"

namespace bkd {
namespace {
using json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json score_json(const TextScore& t) {
  return {{"bits_per_byte", t.bits_per_byte()}, {"nats_per_token", t.nats_per_token()}, {"tokens", t.tokens},
          {"bytes", t.bytes}, {"texts", t.texts}, {"seconds", t.seconds}};
}

json agreement_json(const KdAgreement& a) {
  return {{"top1_agreement", a.top1()}, {"kl_teacher_student", a.kl()}, {"kd_positions", a.positions},
          {"top1_positions", a.top1_rows}, {"seconds", a.seconds}};
}

json timing_json(const DecodeTiming& d) {
  return {{"decode_tokens_per_s", d.decode_tokens_per_s}, {"ms_per_token_median", d.ms_per_token_median},
          {"ms_per_token_best", d.ms_per_token_best}, {"prefill_tokens_per_s", d.prefill_tokens_per_s},
          {"prompt_tokens", d.prompt_tokens}, {"decode_tokens", d.decode_tokens}, {"threads", d.threads},
          {"kernels", d.kernels}, {"mode", to_string(d.mode)}};
}

// ---- step 1: the held-out text and its KD rows (held_out.h) ----------------------------------------

// Decode speed: the first held-out chunk as the prompt, at most PROMPT_TOKENS of it, then up to
// MAX_NEW_TOKENS greedy steps (half the context at most), for the student and the local teacher alike.
std::pair<std::vector<int32_t>, int64_t> decode_setup(const EvalSettings& es, std::vector<int32_t> ids, int64_t max_seq_len) {
  const int64_t n_new = std::min<int64_t>(es.max_new_tokens, max_seq_len / 2);
  ids.resize(size_t(std::max<int64_t>(1, std::min<int64_t>({int64_t(ids.size()), es.prompt_tokens, max_seq_len - n_new - 1}))));
  return {ids, n_new};
}

// ---- step 2: the teacher ---------------------------------------------------------------------------

struct TeacherEval {
  json j;
  double bpb = kNaN, memory = 0, tps = 0;
  double bytes_per_token = kNaN;  // on the held-out chunks, with the teacher's tokenizer (local teacher)
};

// The teacher's decode speed from its baseline report (the median request).
double baseline_tps(const RunLayout& layout, json& source) {
  const std::string path = layout.teacher_baseline_report();
  if (!file_exists(path))
    throw Error("no teacher baseline report at " + path, "run `bitnet-kde teacher` (or `make teacher`) first");
  const json b = json::parse(read_file(path));
  for (const char* key : {"decode_tokens_per_s", "end_to_end_tokens_per_s"}) {
    if (b.contains(key) && b[key].is_object() && b[key].value("p50", 0.0) > 0) {
      source = {{"report", path}, {"field", std::string(key) + ".p50"}, {"provider", b.value("provider", "")},
                {"model", b.value("model", "")}};
      return b[key]["p50"].get<double>();
    }
  }
  throw Error("the teacher baseline " + path + " has no decode speed", "run `bitnet-kde teacher` again");
}

TeacherEval eval_teacher(const Settings& s, const RunLayout& layout, const EvalSettings& es, const HeldOut& h) {
  TeacherEval t;
  t.j = {{"provider", es.teacher_provider}};
  std::optional<DecodeTiming> timed;
  if (es.local_teacher) {
    LocalTeacherModel teacher = load_local_teacher(s);
    LoadedModel& m = teacher.model;
    const Tokenizer& tok = *teacher.tokenizer;
    const TextScore ts = score_texts(m, h.chunks, tok, teacher.bos);
    t.bpb = ts.bits_per_byte();
    t.bytes_per_token = ts.tokens > 0 ? double(ts.bytes) / double(ts.tokens) : kNaN;
    t.memory = double(model_bytes(m));
    t.j["checkpoint"] = m.checkpoint;
    t.j["quality"] = score_json(ts);
    t.j["parameters"] = m.config.parameter_count();
    t.j["memory"] = {{"bytes", t.memory}, {"method", "measured: parameters and buffers of the loaded teacher"}};
    const auto [prompt, n_new] = decode_setup(es, tok.encode_ids(h.chunks.front().text), m.config.max_seq_len);
    timed = measure_torch_decode_tps(m, prompt, n_new);
    t.j["decode"] = timing_json(*timed);
  } else {
    t.j["quality"] = {{"note", "an API teacher is not scored on held-out text here; QEI uses the placeholder quality"}};
    t.memory = es.teacher_params * es.teacher_bytes_per_param;
    t.j["memory"] = {{"bytes", t.memory}, {"method", "settings: TEACHER_PARAMS x TEACHER_BYTES_PER_PARAM"}};
    if (t.memory <= 0)
      throw UsageError("TEACHER_PARAMS is not set: the memory of an API teacher is unknown",
                       "set TEACHER_PARAMS (e.g. 70e9) and TEACHER_BYTES_PER_PARAM (e.g. 2) for QEI");
  }
  json source;
  const double from_baseline = baseline_tps(layout, source);
  t.tps = from_baseline;
  if (timed) {  // the local teacher: timed here like the student, not through the provider
    t.tps = timed->decode_tokens_per_s;
    t.j["baseline_decode_tokens_per_s"] = from_baseline;
    t.j["baseline_decode_tokens_per_s_source"] = source;
    source = {{"method", "measured in eval: LibTorch greedy decode with a key/value cache, one timed step per "
                         "token, the same held-out prompt and caps as the student (teacher.decode)"}};
  }
  t.j["decode_tokens_per_s"] = t.tps;
  t.j["decode_tokens_per_s_source"] = source;
  if (std::isfinite(t.bytes_per_token)) {
    t.j["bytes_per_token"] = t.bytes_per_token;
    t.j["decode_bytes_per_s"] = t.tps * t.bytes_per_token;
  }
  return t;
}

// ---- step 3: the students --------------------------------------------------------------------------

struct StudentEval {
  json j;
  double bpb = kNaN;
  double bytes_per_token = kNaN;  // on the held-out chunks, with the student's tokenizer
};

StudentEval eval_student(const std::string& role_dir, const EvalSettings& es, const HeldOut& h, const Tokenizer& spm,
                         bool flip_cost) {
  StudentEval r;
  LoadedModel m = load_model(role_dir);
  const QuantMode trained = m.mode;
  const TextScore final_score = score_texts(m, h.chunks, spm, spm.eos_id());
  r.bpb = final_score.bits_per_byte();
  r.bytes_per_token = final_score.tokens > 0 ? double(final_score.bytes) / double(final_score.tokens) : kNaN;
  r.j = {{"checkpoint", m.checkpoint},
         {"seen_tokens", m.state.value("seen_tokens", int64_t(0))},
         {"mode", to_string(trained)},
         {"quality", score_json(final_score)}};
  if (!h.kd.empty()) r.j["agreement"] = agreement_json(kd_agreement(m, h.kd, es.seq_len, es.batch));
  // The flip's cost in quality: the same weights with 8-bit activations everywhere.
  if (flip_cost && trained == QuantMode::TernaryA4) {
    m.model->set_quant_mode(QuantMode::TernaryA8);
    r.j["same_weights_a8"] = score_json(score_texts(m, h.chunks, spm, spm.eos_id()));
    m.model->set_quant_mode(trained);
  }
  return r;
}

// ---- step 4: the student through the packed engine: speed and memory ------------------------------

struct EngineEval {
  json speed, memory;
  double tps = 0, bytes = 0;
};

EngineEval eval_engine(const RunLayout& layout, const EvalSettings& es, const HeldOut& h, const Tokenizer& spm) {
  EngineEval e;
  StudentCheckpoint sc = load_student_checkpoint(*latest_checkpoint(layout.role_checkpoints("student")));
  const PackedModel packed = pack_student(sc, TableFormat::F32);
  const auto [prompt, n_new] = decode_setup(es, spm.encode_ids(h.chunks.front().text), packed.cfg.max_seq_len);
  const DecodeTiming dt = measure_decode_tps(packed, prompt, n_new, es.threads);
  e.tps = dt.decode_tokens_per_s;
  e.speed = {{"trained_mode", timing_json(dt)}};
  if (dt.mode == QuantMode::TernaryA4)
    e.speed["a8"] = timing_json(measure_decode_tps(packed, prompt, n_new, es.threads, QuantMode::TernaryA8));
  e.bytes = double(packed.ternary_bytes() + packed.table_bytes());
  e.memory = {{"bytes", e.bytes},
              {"ternary_bytes", packed.ternary_bytes()},
              {"table_bytes", packed.table_bytes()},
              {"tables", "f32"},
              {"method", "packed engine weights: 2-bit ternary projections + embedding/head tables"}};
  return e;
}

// ---- step 5: QEI -----------------------------------------------------------------------------------

// QEI = (q_s / q_t) / (mem_s / mem_t); QEIspeed = QEI x TPS_s / TPS_t. Tokens of two tokenizers hold
// different amounts of text, so QEIspeed also comes in bytes per second (BPS_s / BPS_t, each model's
// decode rate times its own bytes per token on the same held-out text) when both are known.
json qei_json(double q_ratio, const std::string& quality, double mem_s, double mem_t, double tps_s, double tps_t,
              double bps_s, double bps_t) {
  const double qei = q_ratio / (mem_s / mem_t);
  const double qei_speed = qei * tps_s / tps_t;
  json j{{"quality", quality},         {"quality_ratio", q_ratio}, {"memory_ratio", mem_s / mem_t},
         {"tps_ratio", tps_s / tps_t}, {"qei", qei},               {"qei_speed", qei_speed},
         {"qei_target", 0.20},         {"qei_speed_target", 0.10}, {"met", qei >= 0.20 && qei_speed >= 0.10}};
  if (std::isfinite(bps_s) && std::isfinite(bps_t) && bps_t > 0) {
    j["bytes_per_s_ratio"] = bps_s / bps_t;
    j["qei_speed_bytes"] = qei * bps_s / bps_t;
  }
  return j;
}

json qei_section(const EvalSettings& es, const TeacherEval& t, const StudentEval& kd, const EngineEval& e) {
  json q;
  const double bps_s = e.tps * kd.bytes_per_token, bps_t = t.tps * t.bytes_per_token;
  const double q_s = es.placeholder_student, q_t = es.placeholder_teacher;
  q["placeholder"] = qei_json(q_s / q_t, "the seed's placeholder: student " + std::to_string(q_s).substr(0, 4) +
                                             " vs teacher " + std::to_string(q_t).substr(0, 4),
                              e.bytes, t.memory, e.tps, t.tps, bps_s, bps_t);
  if (std::isfinite(t.bpb) && std::isfinite(kd.bpb) && kd.bpb > 0)
    q["measured"] = qei_json(t.bpb / kd.bpb, "measured: teacher bits/byte over student bits/byte on held-out text", e.bytes,
                             t.memory, e.tps, t.tps, bps_s, bps_t);
  q["definition"] = "QEI = (q_s/q_t)/(mem_s/mem_t); QEIspeed = QEI x TPS_s/TPS_t; qei_speed_bytes = QEI x BPS_s/BPS_t "
                    "(decode bytes per second: tokens per second x the model's bytes per token on the held-out text)";
  return q;
}

json flip_cost_section(const StudentEval& kd, const EngineEval& e) {
  const json& a8 = kd.j["same_weights_a8"];
  return {{"bits_per_byte_a4", kd.bpb},
          {"bits_per_byte_a8_same_weights", a8["bits_per_byte"]},
          {"quality_cost_bits_per_byte", kd.bpb - a8["bits_per_byte"].get<double>()},
          {"decode_tokens_per_s_a4", e.tps},
          {"decode_tokens_per_s_a8", e.speed.contains("a8") ? e.speed["a8"]["decode_tokens_per_s"] : json(nullptr)}};
}

}  // namespace

EvalSettings EvalSettings::from(const Settings& s) {
  EvalSettings e;
  e.seq_len = s.i64("SEQ_LEN");
  e.batch = s.i64("BATCH_SIZE");
  e.eval_tokens = s.i64("EVAL_TOKENS");
  e.prompt_tokens = s.i64("PROMPT_TOKENS");
  e.max_new_tokens = s.i64("MAX_NEW_TOKENS");
  e.threads = static_cast<int>(s.i64("THREADS"));
  e.teacher_provider = s.str("TEACHER_PROVIDER");
  e.local_teacher = e.teacher_provider == "local";
  e.teacher_params = s.f64("TEACHER_PARAMS");
  e.teacher_bytes_per_param = s.f64("TEACHER_BYTES_PER_PARAM");
  e.placeholder_student = s.f64("QUALITY_PLACEHOLDER_STUDENT");
  e.placeholder_teacher = s.f64("QUALITY_PLACEHOLDER_TEACHER");
  return e;
}

json run_eval(const Settings& s) {
  const RunLayout layout(s);
  const EvalSettings es = EvalSettings::from(s);
  Report report("mini_evaluation_report", &s);
  const std::string test_path = layout.corpus_split(Split::Test);
  if (!file_exists(test_path)) throw Error("no held-out split at " + test_path, "run `bitnet-kde prepare` first");
  if (!latest_checkpoint(layout.role_checkpoints("student")))
    throw Error("no student checkpoint in " + layout.role_checkpoints("student"), "run `bitnet-kde train` first");
  auto spm = load_student_tokenizer(s);
  if (spm->eos_id() < 0) throw Error("the student tokenizer has no end-of-text token", "run `bitnet-kde prepare` again");

  json& b = report.body();
  const HeldOut h = held_out_text(s, layout, es);
  b["held_out"] = h.j;
  const TeacherEval teacher = eval_teacher(s, layout, es, h);
  b["teacher"] = teacher.j;

  // Students: the KD student and, when trained, the CE-only ablation at the same budget.
  const StudentEval kd = eval_student(layout.role_checkpoints("student"), es, h, *spm, true);
  b["student"] = kd.j;
  const std::string ce_dir = layout.role_checkpoints("student_ce");
  if (latest_checkpoint(ce_dir)) {
    const StudentEval ce = eval_student(ce_dir, es, h, *spm, false);
    b["ablation_ce_only"] = ce.j;
    b["ablation_ce_only"]["kd_gain_bits_per_byte"] = ce.bpb - kd.bpb;
  } else {
    b["ablation_ce_only"] = {{"status", "not run"}, {"hint", "bitnet-kde train --role student_ce (make eval runs it)"}};
  }

  const EngineEval engine = eval_engine(layout, es, h, *spm);
  b["student"]["decode"] = engine.speed;
  if (std::isfinite(kd.bytes_per_token)) {
    b["student"]["bytes_per_token"] = kd.bytes_per_token;
    b["student"]["decode_bytes_per_s"] = engine.tps * kd.bytes_per_token;
  }
  b["student"]["memory"] = engine.memory;
  if (kd.j.contains("same_weights_a8")) b["flip_cost"] = flip_cost_section(kd, engine);
  b["qei"] = qei_section(es, teacher, kd, engine);
  b["peak_rss_bytes_eval_process"] = peak_rss_bytes();
  const json written = report.write(layout.eval_report());
  write_html_report(s);
  return written;
}

}  // namespace bkd
