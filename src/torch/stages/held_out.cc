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
  for (const auto& q : plan.sequences) {
    const std::string& doc = plan.docs[q.doc].text;
    size_t from = q.begin > kHeldOutContextBytes ? q.begin - kHeldOutContextBytes : 0;
    while (from > 0 && from < q.begin && (static_cast<unsigned char>(doc[from]) & 0xC0) == 0x80) ++from;  // a whole character
    h.chunks.push_back({doc.substr(from, q.begin - from), doc.substr(q.begin, q.end - q.begin), from == 0});
  }
  if (h.chunks.empty()) throw Error("the held-out split " + test_path + " is empty", "prepare a larger corpus");
  h.j = {{"split", "test"},
         {"chunks", h.chunks.size()},
         {"eval_tokens_setting", es.eval_tokens},
         {"context", "each chunk after the document text before it (at most half a model context of tokens), or after "
                     "end-of-text at a document's start"}};
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
