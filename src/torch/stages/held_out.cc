#include "torch/stages/held_out.h"

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/kd/kd_manifest.h"
#include "core/stages/collect.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "torch/train/kd_shard_source.h"

namespace bkd {
using json = nlohmann::json;

HeldOut held_out_text(const Settings& s, const RunLayout& layout, const EvalSettings& es) {
  HeldOut h;
  const std::string test_path = layout.corpus_split(Split::Test);
  // The same plan the held-out KD rows are collected for (collect.h), in score-mode chunks.
  const KdPlan plan = plan_collection(s, Split::Test, es.eval_tokens, true);
  for (const auto& q : plan.sequences) h.chunks.push_back(plan.docs[q.doc].text.substr(q.begin, q.end - q.begin));
  if (h.chunks.empty()) throw Error("the held-out split " + test_path + " is empty", "prepare a larger corpus");
  h.j = {{"split", "test"}, {"chunks", h.chunks.size()}, {"eval_tokens_setting", es.eval_tokens}};
  // The teacher's distributions on the same chunks, projected like training data, through the
  // manifest that collect writes for them.
  try {
    CollectOptions co;
    co.split = Split::Test;
    co.eval_traces = true;
    co.target_positions = es.eval_tokens;
    co.report_name = "eval_collect";
    run_collect(s, co);
    const KdManifest m = read_kd_manifest(layout.eval_kd_traces());
    h.kd = read_kd_sequences(m.shard_paths, es.seq_len);
    h.j["kd_rows"] = m.rows;
    h.j["kd_manifest"] = m.path;
  } catch (const std::exception& e) {
    log_warn(std::string("eval: no held-out KD rows (top-1 agreement and KL are skipped): ") + e.what());
    h.j["kd_rows_error"] = e.what();
  }
  return h;
}

}  // namespace bkd
