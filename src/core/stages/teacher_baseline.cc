#include "core/stages/teacher_baseline.h"

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/teacher/baseline.h"
#include "core/teacher/provider_factory.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/report/report.h"

namespace bkd {

nlohmann::json run_teacher_baseline(const Settings& s, const TeacherBaselineOptions& opts) {
  const RunLayout layout(s);
  // The provider first: a missing key or an untrained local teacher fails before any work.
  std::unique_ptr<Provider> owned;
  Provider* provider = opts.provider;
  if (!provider) {
    owned = make_provider(s);
    provider = owned.get();
  }
  const auto prompts = draw_baseline_prompts(layout.corpus_split(Split::Val), static_cast<int>(s.i64("BASELINE_PROMPTS")),
                                             static_cast<int>(s.i64("PROMPT_TOKENS")),
                                             static_cast<uint64_t>(s.i64("SAMPLE_SEED")));
  BaselineOptions o;
  o.max_new_tokens = static_cast<int>(s.i64("MAX_NEW_TOKENS"));
  o.top_k = static_cast<int>(s.i64("TOP_K"));
  o.temperature = s.f64("TEACHER_TEMPERATURE");
  o.seed = static_cast<uint64_t>(s.i64("SEED"));
  o.in_flight = static_cast<int>(s.i64("MAX_IN_FLIGHT"));
  o.price_per_1k_tokens = s.f64("PRICE_PER_1K_TOKENS");
  log_info("teacher: " + provider->name() + " / " + provider->model() + ", " + std::to_string(prompts.size()) +
           " prompts, " + std::to_string(o.max_new_tokens) + " new tokens each");
  Report report("teacher_baseline", &s);
  report.body() = run_baseline(*provider, prompts, o);
  const std::string path = opts.out.empty() ? layout.teacher_baseline_report() : opts.out;
  ensure_dir(parent_dir(path));
  nlohmann::json j = report.write(path);
  j["_path"] = path;
  return j;
}

}  // namespace bkd
