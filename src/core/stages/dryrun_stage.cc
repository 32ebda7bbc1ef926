#include "core/stages/dryrun_stage.h"

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/engine/dryrun.h"
#include "core/util/fs.h"
#include "core/report/report.h"

namespace bkd {

DryrunStageOptions::DryrunStageOptions() : shape(llama7b_shape()) {}

nlohmann::json run_dryrun_stage(const Settings& s, const DryrunStageOptions& opts) {
  DryrunOptions o;
  o.shape = opts.shape;
  o.shape.n_kv_heads = opts.shape.n_heads;
  o.prompt_tokens = s.i64("DRYRUN_PROMPT_TOKENS");
  o.decode_tokens = s.i64("DRYRUN_DECODE_TOKENS");
  o.embed_bits = std::stoi(s.str("DRYRUN_EMBED_BITS"));  // an enum setting: "8" or "16"
  o.threads = static_cast<int>(s.i64("THREADS"));
  o.seed = static_cast<uint64_t>(s.i64("SEED"));
  Report report("dryrun_7b", &s);
  report.body() = run_dryrun(o);
  const std::string path = opts.out.empty() ? RunLayout(s).dryrun_report() : opts.out;
  ensure_dir(parent_dir(path));
  nlohmann::json j = report.write(path);
  j["_path"] = path;
  return j;
}

}  // namespace bkd
