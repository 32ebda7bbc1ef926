#include "core/kd/kd_manifest.h"

#include <optional>

#include "core/kd/kd_accounting.h"
#include "core/kd/kd_shard.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/json_file.h"

namespace bkd {
namespace {
using json = nlohmann::json;

const json& field(const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key))
    throw Error(where + " has no '" + key + "' field", "the manifest is damaged or from an older version: run `bitnet-kde collect --restart`");
  return j[key];
}

std::string worker_flag(int worker, int workers) {
  return "--worker " + std::to_string(worker) + "/" + std::to_string(workers);
}

}  // namespace

json KdIdentity::to_json() const {
  return {{"plan_hash", plan_hash}, {"teacher", teacher}, {"model", model}, {"mode", mode},
          {"k_requested", k_requested}, {"k", k}, {"student_tokenizer_hash", student_tokenizer_hash},
          {"projection", projection},
          {"samples", samples}};
}

KdIdentity KdIdentity::from_json(const json& m, const std::string& where) {
  KdIdentity id;
  try {
    id.plan_hash = field(m, "plan_hash", where).get<std::string>();
    id.teacher = field(m, "teacher", where).get<std::string>();
    id.model = field(m, "model", where).get<std::string>();
    id.mode = field(m, "mode", where).get<std::string>();
    id.k_requested = field(m, "k_requested", where).get<int>();
    id.k = field(m, "k", where).get<int>();
    id.student_tokenizer_hash = field(m, "student_tokenizer_hash", where).get<std::string>();
    id.projection = m.value("projection", std::string());  // manifests from before KD_MID_TOKEN: ""
    id.samples = m.value("samples", 0);                     // manifests from before KD_SAMPLES: top-K
  } catch (const json::exception& e) {
    throw Error(where + ": a field has the wrong type (" + e.what() + ")", "run `bitnet-kde collect --restart`");
  }
  return id;
}

std::vector<std::string> KdIdentity::differences(const KdIdentity& want) const {
  std::vector<std::string> d;
  auto cmp = [&](const char* what, const std::string& have, const std::string& need) {
    if (have != need) d.push_back(std::string(what) + " is '" + have + "', this run wants '" + need + "'");
  };
  cmp("teacher", teacher, want.teacher);
  cmp("teacher model", model, want.model);
  cmp("mode (KD_MODE)", mode, want.mode);
  cmp("K (TOP_K)", std::to_string(k_requested), std::to_string(want.k_requested));
  cmp("student tokenizer hash", student_tokenizer_hash, want.student_tokenizer_hash);
  cmp("projection (KD_MID_TOKEN)", projection, want.projection);
  cmp("draws per position (KD_SAMPLES)", std::to_string(samples), std::to_string(want.samples));
  if (plan_hash != want.plan_hash)
    d.push_back("the planned sequences differ (another training split, SEQ_LEN, KD_TARGET_TOKENS or PROMPT_TOKENS)");
  return d;
}

KdManifest read_kd_manifest(const KdTraceDir& dir, int worker, int workers) {
  KdManifest m;
  m.path = dir.manifest(worker, workers);
  if (!file_exists(m.path)) throw Error("no KD manifest at " + m.path, "run `bitnet-kde collect` first");
  try {
    m.json = json::parse(read_file(m.path));
  } catch (const json::exception& e) {
    throw Error("cannot parse the KD manifest " + m.path + ": " + e.what(),
                "the file is damaged: run `bitnet-kde collect --restart`");
  }
  m.identity = KdIdentity::from_json(m.json, m.path);
  m.complete = m.json.value("complete", false);
  const json& shards = field(m.json, "shards", m.path);
  if (!shards.is_array()) throw Error(m.path + ": 'shards' is not a list", "run `bitnet-kde collect --restart`");
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string where = m.path + ": shards[" + std::to_string(i) + "]";
    const json& f = field(shards[i], "file", where);
    const json& r = field(shards[i], "rows", where);
    if (!f.is_string() || !r.is_number_integer() || r.get<int64_t>() < 0)
      throw Error(where + " has a bad 'file' or 'rows' field", "run `bitnet-kde collect --restart`");
    const std::string path = dir.entry(f.get<std::string>());
    if (!file_exists(path))
      throw Error(where + " names " + path + ", which does not exist",
                  "a shard was deleted after collection: run `bitnet-kde collect --restart`");
    m.shard_paths.push_back(path);
    m.rows += r.get<int64_t>();
  }
  return m;
}

KdManifest require_training_manifest(const KdTraceDir& dir, const KdIdentity& want) {
  const std::string path = dir.manifest();
  if (!file_exists(path)) {
    // Workers' manifests without the merged one: collected in parts, never merged.
    if (const int n = dir.worker_manifest_count(); n > 0)
      throw Error("no merged KD manifest at " + path + ", but the manifests of " + std::to_string(n) + " workers exist",
                  "merge them first: `bitnet-kde collect --merge --worker 0/" + std::to_string(n) + "`");
    throw Error("no KD manifest at " + path,
                "run `bitnet-kde collect` first (or train the CE-only student: `bitnet-kde train --role student_ce`)");
  }
  KdManifest m = read_kd_manifest(dir);
  if (!m.complete)
    throw Error("the KD manifest " + path + " is not complete: collection stopped before the end of its plan",
                "run `bitnet-kde collect` again; it resumes where it stopped");
  const auto diff = m.identity.differences(want);
  if (!diff.empty()) {
    std::string what;
    for (const auto& d : diff) what += (what.empty() ? "" : "; ") + d;
    const int n = dir.worker_manifest_count();
    throw Error("the KD manifest " + path + " was collected for another run: " + what,
                n > 0 ? "if the workers collected again for these settings, merge them: `bitnet-kde collect --merge --worker 0/" +
                            std::to_string(n) + "`; otherwise collect again: `bitnet-kde collect --restart`"
                      : "collect again for these settings: `bitnet-kde collect --restart`");
  }
  if (m.shard_paths.empty()) throw Error("the KD manifest " + path + " names no shard", "run `bitnet-kde collect --restart`");
  // Each shard says what it holds: a worker that collected again after the merge leaves a merged
  // manifest whose shards are no longer what it describes.
  for (const auto& shard : m.shard_paths) {
    const KdShardMeta meta = KdShardReader(shard).meta();
    const auto plan = meta.extra.find("plan_hash");
    std::string what;
    if (meta.k != m.identity.k) what = "K " + std::to_string(meta.k) + " (the manifest says " + std::to_string(m.identity.k) + ")";
    else if (meta.student_tokenizer_hash != m.identity.student_tokenizer_hash) what = "another student tokenizer";
    else if (meta.teacher != m.identity.teacher || meta.model != m.identity.model) what = "teacher " + meta.teacher + "/" + meta.model;
    else if (plan == meta.extra.end() || plan->second != m.identity.plan_hash) what = "another plan";
    if (!what.empty())
      throw Error("KD shard " + shard + " holds " + what + ": it was written after " + path + " was",
                  dir.worker_manifest_count() > 0
                      ? "merge the workers' manifests again: `bitnet-kde collect --merge --worker 0/" +
                            std::to_string(dir.worker_manifest_count()) + "`"
                      : "run `bitnet-kde collect --restart`");
  }
  return m;
}

json merge_kd_manifests(const KdTraceDir& dir, int workers) {
  json merged = {{"workers", workers}, {"shards", json::array()}};
  KdRowCounts total;
  int64_t rows = 0;
  std::optional<KdIdentity> first;
  for (int w = 0; w < workers; ++w) {
    const std::string mp = dir.manifest(w, workers);
    if (!file_exists(mp))
      throw Error("worker manifest '" + mp + "' is missing", "run `bitnet-kde collect " + worker_flag(w, workers) + "` first");
    const KdManifest m = read_kd_manifest(dir, w, workers);
    if (!m.complete)
      throw Error("worker " + std::to_string(w) + " has not finished (" + mp + ")", "run that worker again; it resumes where it stopped");
    if (!first) {
      first = m.identity;
    } else if (const auto diff = m.identity.differences(*first); !diff.empty()) {
      throw Error("worker " + std::to_string(w) + " collected for another run than worker 0: " + diff.front(),
                  "run every worker with the same settings (`bitnet-kde collect --restart " + worker_flag(w, workers) + "`)");
    }
    for (const auto& sh : m.json["shards"]) {
      rows += sh["rows"].get<int64_t>();
      total.add(KdRowCounts::from_json(sh["stats"]));
      merged["shards"].push_back(sh);
    }
  }
  merged.update(first->to_json());
  merged["rows"] = rows;
  merged["row_accounting"] = total.to_json();
  merged["complete"] = true;
  write_json_atomic(dir.manifest(), merged);
  return merged;
}

}  // namespace bkd
