#include "core/kd/kd_accounting.h"

#include <utility>

#include "core/util/error.h"

namespace bkd {
namespace {

// (metadata/json name, member) in one table so every form agrees.
const std::pair<const char*, int64_t KdRowCounts::*> kFields[] = {
    {"rows", &KdRowCounts::rows},
    {"rows_kd", &KdRowCounts::kd},
    {"rows_outside_range", &KdRowCounts::outside_range},
    {"rows_no_teacher_boundary", &KdRowCounts::no_teacher_boundary},
    {"rows_no_logprobs", &KdRowCounts::no_logprobs},
    {"rows_not_finite", &KdRowCounts::not_finite},
    {"rows_misaligned", &KdRowCounts::misaligned},
};

}  // namespace

void KdRowCounts::add(const KdRowCounts& o) {
  for (const auto& [name, m] : kFields) this->*m += o.*m;
}

std::string KdRowCounts::inconsistency() const {
  for (const auto& [name, m] : kFields)
    if (this->*m < 0) return std::string(name) + " is negative (" + std::to_string(this->*m) + ")";
  const int64_t sum = kd + outside_range + no_teacher_boundary + no_logprobs + not_finite + misaligned;
  if (sum != rows)
    return "the row classes add up to " + std::to_string(sum) + ", not to the " + std::to_string(rows) + " rows";
  return {};
}

nlohmann::json KdRowCounts::to_json() const {
  nlohmann::json j;
  for (const auto& [name, m] : kFields) j[name] = this->*m;
  j["rows_in_range"] = in_range();
  j["rows_without_kd"] = without_kd();
  j["rows_invalid"] = teacher_failures();
  j["invalid_row_rate"] = invalid_row_rate();
  j["no_teacher_boundary_rate"] = no_teacher_boundary_rate();
  j["kd_fraction"] = kd_fraction();
  return j;
}

KdRowCounts KdRowCounts::from_json(const nlohmann::json& j) {
  KdRowCounts c;
  for (const auto& [name, m] : kFields) c.*m = j.value(name, int64_t{0});
  return c;
}

std::vector<parquet::KeyValue> KdRowCounts::to_key_values() const {
  std::vector<parquet::KeyValue> kv;
  for (const auto& [name, m] : kFields) kv.push_back({std::string("bkd.") + name, std::to_string(this->*m)});
  return kv;
}

std::optional<KdRowCounts> KdRowCounts::from_key_values(const std::vector<parquet::KeyValue>& kvs,
                                                       const std::string& where) {
  KdRowCounts c;
  int found = 0;
  for (const auto& [name, m] : kFields) {
    const std::string key = std::string("bkd.") + name;
    for (const auto& kv : kvs) {
      if (kv.key != key) continue;
      size_t used = 0;
      int64_t v = 0;
      try {
        v = std::stoll(kv.value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != kv.value.size())
        throw Error(where + ": metadata " + key + " = '" + kv.value + "' is not an integer", "re-create the shard");
      c.*m = v;
      ++found;
      break;
    }
  }
  if (found == 0) return std::nullopt;
  const int total = static_cast<int>(sizeof kFields / sizeof kFields[0]);
  if (found != total)
    throw Error(where + ": the row accounting metadata is incomplete (" + std::to_string(found) + " of " +
                    std::to_string(total) + " bkd.rows* keys)",
                "re-create the shard with `bitnet-kde collect --restart`");
  if (auto why = c.inconsistency(); !why.empty())
    throw Error(where + ": row accounting metadata is inconsistent: " + why, "re-create the shard");
  return c;
}

}  // namespace bkd
