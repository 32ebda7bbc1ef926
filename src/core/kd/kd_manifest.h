#pragma once
// The KD manifest (kd_manifest.json): the handoff from `collect` to `train` and `eval`. It names the
// finished shards of a collection, in order, with their row counts and statistics, and the identity
// of what was collected: the plan (which spans of which documents), the teacher, K and the student
// tokenizer. A shard enters it only once complete on disk; `complete` is set when the whole plan of
// that worker (or, merged, of every worker) is written. Training reads KD rows only through it.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config/run_layout.h"

namespace bkd {

// What a collection was made of; a manifest serves a run only when all of it matches.
struct KdIdentity {
  std::string plan_hash;               // SHA-256 over the planned sequences (collect.h, plan_collection)
  std::string teacher, model;          // provider name and model id
  std::string mode;                    // "score" | "generate"
  int k_requested = 0;                 // TOP_K when collected
  int k = 0;                           // what the teacher was asked for (min of TOP_K and its limit)
  std::string student_tokenizer_hash;  // SHA-256 of the student tokenizer
  std::string projection;              // "" (first subtoken) | "identity" (same tokenizer) | "mid-token" (KD_MID_TOKEN) | "identity+mid-token"
  int samples = 0;                     // KD_SAMPLES: 0 = top-K + Other; n = n draws per position (sampled KD)

  nlohmann::json to_json() const;  // the manifest's identity fields
  static KdIdentity from_json(const nlohmann::json& manifest, const std::string& where);
  // Human-readable differences with `want` (empty: it matches). `k` is not compared: it follows from
  // k_requested and the teacher's limit.
  std::vector<std::string> differences(const KdIdentity& want) const;
};

struct KdManifest {
  std::string path;
  nlohmann::json json;
  KdIdentity identity;
  bool complete = false;
  int64_t rows = 0;
  std::vector<std::string> shard_paths;  // resolved in the manifest's folder, in order
};

// Reads and checks a manifest: parseable, its identity fields present, every shard entry with a plain
// file name and a row count, every named shard on disk. Throws Error naming the file otherwise.
KdManifest read_kd_manifest(const KdTraceDir& dir, int worker = 0, int workers = 1);

// The manifest a training run may use: present, complete and made for `want`. Throws Error with
// what differs and how to fix it (re-collect, or merge the workers' manifests) otherwise.
KdManifest require_training_manifest(const KdTraceDir& dir, const KdIdentity& want);

// Combines every worker's complete manifest (same identity) into the merged manifest; writes it
// atomically and returns it. Throws Error naming the worker that is missing, unfinished or different.
nlohmann::json merge_kd_manifests(const KdTraceDir& dir, int workers);

}  // namespace bkd
