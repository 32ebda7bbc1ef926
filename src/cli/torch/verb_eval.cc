// `eval` (seed M4): held-out quality of the teacher and the students in bits per byte, agreement with
// the teacher on held-out KD rows, student decode TPS through the packed engine, memory, QEI and
// QEIspeed (measured quality, and the seed's placeholder), the CE-only ablation and the cost of the
// A8->A4 flip -> REPORTS_DIR/mini_evaluation_report.json and REPORTS_DIR/report.html.
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "cli/cli.h"
#include "core/data/corpus.h"
#include "core/data/layout.h"
#include "core/engine/decode_timing.h"
#include "core/report/html_report.h"
#include "core/stages/collect.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/report.h"
#include "core/util/sysinfo.h"
#include "torch/checkpoint.h"
#include "torch/engine_export.h"
#include "torch/eval_quality.h"
#include "torch/kd_shard_source.h"

namespace bkd::cli {
namespace {
using json = nlohmann::json;

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

// The teacher's decode speed from its baseline report (the median request).
double teacher_tps(const Settings& s, json& source) {
  const std::string path = join_path(s.str("REPORTS_DIR"), "teacher_baseline.json");
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

struct StudentResult {
  json j;
  double bpb = std::numeric_limits<double>::quiet_NaN();
};

StudentResult eval_student(const std::string& role_dir, const std::vector<std::string>& chunks, const SpmTokenizer& spm,
                           const std::vector<std::vector<KdPosition>>& held_out_kd, int64_t seq_len, int64_t batch,
                           bool flip_cost) {
  StudentResult r;
  LoadedModel m = load_model(role_dir);
  const QuantMode trained = m.mode;
  const TextScore final_score = score_texts(m, chunks, spm, spm.eos_id());
  r.bpb = final_score.bits_per_byte();
  r.j = {{"checkpoint", m.checkpoint},
         {"seen_tokens", m.state.value("seen_tokens", int64_t(0))},
         {"mode", to_string(trained)},
         {"quality", score_json(final_score)}};
  if (!held_out_kd.empty()) r.j["agreement"] = agreement_json(kd_agreement(m, held_out_kd, seq_len, batch));
  // The flip's cost in quality: the same weights with 8-bit activations everywhere.
  if (flip_cost && trained == QuantMode::TernaryA4) {
    m.model->set_quant_mode(QuantMode::TernaryA8);
    const TextScore a8 = score_texts(m, chunks, spm, spm.eos_id());
    r.j["same_weights_a8"] = score_json(a8);
    m.model->set_quant_mode(trained);
  }
  return r;
}

json run_eval(const Settings& s) {
  Report report("mini_evaluation_report", &s);
  const int64_t seq_len = s.i64("SEQ_LEN"), batch = s.i64("BATCH_SIZE");
  const int threads = int(s.i64("THREADS"));
  const std::string ckpt = s.str("CKPT_DIR");
  const std::string test_path = split_text_path(s, Split::Test);
  if (!file_exists(test_path)) throw Error("no held-out split at " + test_path, "run `bitnet-kde prepare` first");
  if (!latest_checkpoint(join_path(ckpt, "student")))
    throw Error("no student checkpoint in " + join_path(ckpt, "student"), "run `bitnet-kde train` first");

  // The held-out text: chunks of SEQ_LEN student tokens of the test split, EVAL_TOKENS in all.
  auto spm = SpmTokenizer::load(student_tokenizer_path(s));
  if (spm->eos_id() < 0) throw Error("the student tokenizer has no end-of-text token", "run `bitnet-kde prepare` again");
  std::vector<std::string> texts;
  for (const auto& d : read_split_jsonl(test_path)) texts.push_back(d.text);
  std::vector<std::string> chunks;
  for (const auto& q : plan_sequences(texts, *spm, seq_len, s.i64("EVAL_TOKENS"), 0, false))
    chunks.push_back(texts[q.doc].substr(q.begin, q.end - q.begin));
  if (chunks.empty()) throw Error("the held-out split " + test_path + " is empty", "prepare a larger corpus");

  json& b = report.body();
  b["held_out"] = {{"split", "test"}, {"chunks", chunks.size()}, {"eval_tokens_setting", s.i64("EVAL_TOKENS")}};

  // Held-out KD rows: the teacher's distributions on the same chunks, projected like training data.
  std::vector<std::vector<KdPosition>> held_out_kd;
  try {
    CollectOptions co;
    co.split = Split::Test;
    co.out_dir = join_path(s.str("DATA_DIR"), "eval_kd");
    co.target_positions = s.i64("EVAL_TOKENS");
    co.report_name = "eval_collect";
    const json cr = run_collect(s, co);
    std::vector<std::string> shards;
    for (const auto& sh : cr["manifest"]["shards"]) shards.push_back(join_path(co.out_dir, sh["file"].get<std::string>()));
    held_out_kd = read_kd_sequences(shards, seq_len);
    b["held_out"]["kd_rows"] = cr.value("rows", int64_t(0));
    b["held_out"]["kd_dir"] = co.out_dir;
  } catch (const std::exception& e) {
    log_warn(std::string("eval: no held-out KD rows (top-1 agreement and KL are skipped): ") + e.what());
    b["held_out"]["kd_rows_error"] = e.what();
  }

  // Teacher: quality and memory.
  const bool local = s.str("TEACHER_PROVIDER") == "local";
  // Decode speed: the first held-out chunk as the prompt, at most PROMPT_TOKENS of it, then up to
  // MAX_NEW_TOKENS greedy steps (half the context at most), for the student and the local teacher alike.
  auto decode_setup = [&](std::vector<int32_t> ids, int64_t max_seq_len) {
    const int64_t n_new = std::min<int64_t>(s.i64("MAX_NEW_TOKENS"), max_seq_len / 2);
    ids.resize(size_t(std::max<int64_t>(
        1, std::min<int64_t>({int64_t(ids.size()), s.i64("PROMPT_TOKENS"), max_seq_len - n_new - 1}))));
    return std::make_pair(ids, n_new);
  };
  double bpb_t = std::numeric_limits<double>::quiet_NaN(), mem_t = 0;
  std::optional<DecodeTiming> teacher_decode;
  json teacher = {{"provider", s.str("TEACHER_PROVIDER")}};
  if (local) {
    LoadedModel t = load_model(join_path(ckpt, "teacher"));
    auto gpt2 = Gpt2Bpe::load(gpt2_encoder_json_path(s), gpt2_vocab_bpe_path(s));
    const TextScore ts = score_texts(t, chunks, *gpt2, gpt2->eos_id());
    bpb_t = ts.bits_per_byte();
    mem_t = double(model_bytes(t));
    teacher["checkpoint"] = t.checkpoint;
    teacher["quality"] = score_json(ts);
    teacher["parameters"] = t.config.parameter_count();
    teacher["memory"] = {{"bytes", mem_t}, {"method", "measured: parameters and buffers of the loaded teacher (float32)"}};
    const auto [tprompt, tn] = decode_setup(gpt2->encode_ids(chunks.front()), t.config.max_seq_len);
    teacher_decode = measure_torch_decode_tps(t, tprompt, tn);
    teacher["decode"] = timing_json(*teacher_decode);
  } else {
    teacher["quality"] = {{"note", "an API teacher is not scored on held-out text here; QEI uses the placeholder quality"}};
    mem_t = s.f64("TEACHER_PARAMS") * s.f64("TEACHER_BYTES_PER_PARAM");
    teacher["memory"] = {{"bytes", mem_t}, {"method", "settings: TEACHER_PARAMS x TEACHER_BYTES_PER_PARAM"}};
    if (mem_t <= 0)
      throw UsageError("TEACHER_PARAMS is not set: the memory of an API teacher is unknown",
                       "set TEACHER_PARAMS (e.g. 70e9) and TEACHER_BYTES_PER_PARAM (e.g. 2) for QEI");
  }
  json tps_source;
  const double tps_baseline = teacher_tps(s, tps_source);
  double tps_t = tps_baseline;
  if (teacher_decode) {  // the local teacher: timed here like the student, not through the provider
    tps_t = teacher_decode->decode_tokens_per_s;
    teacher["baseline_decode_tokens_per_s"] = tps_baseline;
    teacher["baseline_decode_tokens_per_s_source"] = tps_source;
    tps_source = {{"method", "measured in eval: LibTorch greedy decode with a key/value cache, one timed step per "
                             "token, the same held-out prompt and caps as the student (teacher.decode)"}};
  }
  teacher["decode_tokens_per_s"] = tps_t;
  teacher["decode_tokens_per_s_source"] = tps_source;
  b["teacher"] = teacher;

  // Students: the KD student and, when trained, the CE-only ablation at the same budget.
  StudentResult kd = eval_student(join_path(ckpt, "student"), chunks, *spm, held_out_kd, seq_len, batch, true);
  b["student"] = kd.j;
  const std::string ce_dir = join_path(ckpt, "student_ce");
  if (latest_checkpoint(ce_dir)) {
    StudentResult ce = eval_student(ce_dir, chunks, *spm, held_out_kd, seq_len, batch, false);
    b["ablation_ce_only"] = ce.j;
    b["ablation_ce_only"]["kd_gain_bits_per_byte"] = ce.bpb - kd.bpb;
  } else {
    b["ablation_ce_only"] = {{"status", "not run"}, {"hint", "bitnet-kde train --role student_ce (make eval runs it)"}};
  }

  // Student speed and memory through the packed engine.
  StudentCheckpoint sc = load_student_checkpoint(*latest_checkpoint(join_path(ckpt, "student")));
  const PackedModel packed = pack_student(sc, TableFormat::F32);
  const auto [prompt, n_new] = decode_setup(spm->encode_ids(chunks.front()), packed.cfg.max_seq_len);
  const DecodeTiming dt = measure_decode_tps(packed, prompt, n_new, threads);
  json speed = {{"trained_mode", timing_json(dt)}};
  if (dt.mode == QuantMode::TernaryA4)
    speed["a8"] = timing_json(measure_decode_tps(packed, prompt, n_new, threads, QuantMode::TernaryA8));
  const double mem_s = double(packed.ternary_bytes() + packed.table_bytes());
  b["student"]["decode"] = speed;
  b["student"]["memory"] = {{"bytes", mem_s},
                            {"ternary_bytes", packed.ternary_bytes()},
                            {"table_bytes", packed.table_bytes()},
                            {"tables", "f32"},
                            {"method", "packed engine weights: 2-bit ternary projections + embedding/head tables"}};
  if (b["student"].contains("same_weights_a8")) {
    b["flip_cost"] = {
        {"bits_per_byte_a4", kd.bpb},
        {"bits_per_byte_a8_same_weights", b["student"]["same_weights_a8"]["bits_per_byte"]},
        {"quality_cost_bits_per_byte", kd.bpb - b["student"]["same_weights_a8"]["bits_per_byte"].get<double>()},
        {"decode_tokens_per_s_a4", dt.decode_tokens_per_s},
        {"decode_tokens_per_s_a8", speed.contains("a8") ? speed["a8"]["decode_tokens_per_s"] : json(nullptr)}};
  }

  // QEI = (q_s / q_t) / (mem_s / mem_t); QEIspeed = QEI x TPS_s / TPS_t.
  const double tps_s = dt.decode_tokens_per_s;
  auto qei_json = [&](double q_ratio, const std::string& quality) {
    const double qei = q_ratio / (mem_s / mem_t);
    const double qei_speed = qei * tps_s / tps_t;
    return json{{"quality", quality},       {"quality_ratio", q_ratio}, {"memory_ratio", mem_s / mem_t},
                {"tps_ratio", tps_s / tps_t}, {"qei", qei},               {"qei_speed", qei_speed},
                {"qei_target", 0.20},        {"qei_speed_target", 0.10}, {"met", qei >= 0.20 && qei_speed >= 0.10}};
  };
  const double q_s = s.f64("QUALITY_PLACEHOLDER_STUDENT"), q_t = s.f64("QUALITY_PLACEHOLDER_TEACHER");
  b["qei"]["placeholder"] = qei_json(q_s / q_t, "the seed's placeholder: student " + std::to_string(q_s).substr(0, 4) +
                                                    " vs teacher " + std::to_string(q_t).substr(0, 4));
  if (std::isfinite(bpb_t) && std::isfinite(kd.bpb) && kd.bpb > 0)
    b["qei"]["measured"] = qei_json(bpb_t / kd.bpb, "measured: teacher bits/byte over student bits/byte on held-out text");
  b["qei"]["definition"] = "QEI = (q_s/q_t)/(mem_s/mem_t); QEIspeed = QEI x TPS_s/TPS_t";
  b["peak_rss_bytes_eval_process"] = peak_rss_bytes();
  const json written = report.write(join_path(s.str("REPORTS_DIR"), "mini_evaluation_report.json"));
  write_html_report(s);
  return written;
}

void print_summary(const json& r) {
  auto num = [](const json& j, const char* fmt) {
    char buf[64];
    if (!j.is_number()) return std::string("-");
    std::snprintf(buf, sizeof buf, fmt, j.get<double>());
    return std::string(buf);
  };
  auto at = [](const json& j, std::initializer_list<const char*> path) {
    const json* p = &j;
    for (const char* k : path) {
      if (!p->is_object() || !p->contains(k)) return json(nullptr);
      p = &(*p)[k];
    }
    return *p;
  };
  std::printf("%-22s %12s %12s %12s %14s %12s\n", "model", "bits/byte", "top-1 agr", "KL", "decode tok/s", "memory MB");
  std::printf("%-22s %12s %12s %12s %14s %12s\n", "teacher", num(at(r, {"teacher", "quality", "bits_per_byte"}), "%.4f").c_str(),
              "-", "-", num(at(r, {"teacher", "decode_tokens_per_s"}), "%.1f").c_str(),
              num(json(at(r, {"teacher", "memory", "bytes"}).get<double>() / 1e6), "%.2f").c_str());
  std::printf("%-22s %12s %12s %12s %14s %12s\n", "student (KD)", num(at(r, {"student", "quality", "bits_per_byte"}), "%.4f").c_str(),
              num(at(r, {"student", "agreement", "top1_agreement"}), "%.3f").c_str(),
              num(at(r, {"student", "agreement", "kl_teacher_student"}), "%.3f").c_str(),
              num(at(r, {"student", "decode", "trained_mode", "decode_tokens_per_s"}), "%.1f").c_str(),
              num(json(at(r, {"student", "memory", "bytes"}).get<double>() / 1e6), "%.2f").c_str());
  if (r["ablation_ce_only"].contains("quality"))
    std::printf("%-22s %12s %12s %12s %14s %12s\n", "student (CE only)",
                num(at(r, {"ablation_ce_only", "quality", "bits_per_byte"}), "%.4f").c_str(),
                num(at(r, {"ablation_ce_only", "agreement", "top1_agreement"}), "%.3f").c_str(),
                num(at(r, {"ablation_ce_only", "agreement", "kl_teacher_student"}), "%.3f").c_str(), "-", "-");
  for (const char* k : {"measured", "placeholder"})
    if (r["qei"].contains(k))
      std::printf("QEI (%s quality): %.3f (>= 0.20: %s)   QEIspeed: %.3f (>= 0.10: %s)\n", k,
                  r["qei"][k]["qei"].get<double>(), r["qei"][k]["qei"].get<double>() >= 0.2 ? "yes" : "NO",
                  r["qei"][k]["qei_speed"].get<double>(), r["qei"][k]["qei_speed"].get<double>() >= 0.1 ? "yes" : "NO");
}

void setup_eval(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("eval", "evaluate student vs teacher: bits/byte, agreement, TPS, memory, QEI");
  sub->callback([&cli] {
    const Settings& s = cli.settings();
    const json r = run_eval(s);
    print_summary(r);
    std::printf("report: %s\nhtml:   %s\n", join_path(s.str("REPORTS_DIR"), "mini_evaluation_report.json").c_str(),
                join_path(s.str("REPORTS_DIR"), "report.html").c_str());
  });
}

RegisterVerb reg_eval("eval", 70, setup_eval);

}  // namespace
}  // namespace bkd::cli
