#include "core/tokenizer/hf_folder_tokenizer.h"

#include <nlohmann/json.hpp>

#include "core/tokenizer/hf_tokenizer.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

using nlohmann::json;

const char* const kFixFolder =
    "download the model's Hugging Face folder with its tokenizer files (tokenizer.json, tokenizer_config.json, "
    "and tokenizer.model where the model has one)";

// True when some object in j (any depth) has "type": t.
bool has_type(const json& j, const char* t) {
  if (j.is_object()) {
    auto it = j.find("type");
    if (it != j.end() && *it == t) return true;
    for (const auto& v : j) if (has_type(v, t)) return true;
  } else if (j.is_array()) {
    for (const auto& v : j) if (has_type(v, t)) return true;
  }
  return false;
}

// SentencePiece written out as a tokenizer.json: the text gets "▁" for spaces (Metaspace, or a
// Prepend("▁") normalizer), bytes outside the vocabulary become <0x..> tokens (byte_fallback), or the
// model is Unigram. The .model file next to it is the authoritative form.
bool sentencepiece_style(const json& j) {
  auto model = j.find("model");
  if (model != j.end() && model->is_object()) {
    auto type = model->find("type");
    if (type != model->end() && *type == "Unigram") return true;
    auto fallback = model->find("byte_fallback");
    if (fallback != model->end() && *fallback == true) return true;
  }
  for (const char* part : {"normalizer", "pre_tokenizer", "decoder"}) {
    auto p = j.find(part);
    if (p == j.end()) continue;
    if (has_type(*p, "Metaspace")) return true;
    if (has_type(*p, "Prepend")) return true;  // Llama-2's Prepend("▁")
  }
  return false;
}

std::unique_ptr<Tokenizer> load_spm(const std::string& model_path, const std::string& why) {
  try {
    return SpmTokenizer::load(model_path);
  } catch (const Error& e) {
    throw Error("cannot load the SentencePiece tokenizer '" + model_path + "' (" + why + "): " + e.what(), kFixFolder);
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_folder_tokenizer(const std::string& model_dir) {
  if (!dir_exists(model_dir))
    throw Error("model folder '" + model_dir + "' does not exist", kFixFolder);
  const std::string json_path = join_path(model_dir, "tokenizer.json");
  const std::string spm_path = join_path(model_dir, "tokenizer.model");
  if (!file_exists(json_path)) {
    if (file_exists(spm_path)) return load_spm(spm_path, "the folder has no tokenizer.json");
    throw Error("model folder '" + model_dir + "' has no tokenizer: neither tokenizer.json nor tokenizer.model", kFixFolder);
  }
  const std::string text = read_file(json_path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("tokenizer.json '" + json_path + "' is not valid JSON (" + e.what() + ")",
                "download the model's tokenizer.json again (the file is damaged or truncated)");
  }
  if (j.is_object() && sentencepiece_style(j)) {
    if (file_exists(spm_path)) return load_spm(spm_path, "tokenizer.json is SentencePiece-style");
    throw Error("tokenizer.json '" + json_path + "' is a SentencePiece-style tokenizer (byte_fallback, Metaspace or "
                "Unigram), and bitnet-kde reads those from tokenizer.model, which is not in '" + model_dir + "'",
                "download the model's tokenizer.model into the folder");
  }
  return HfBpeTokenizer::from_json(j, text, json_path);
}

}  // namespace bkd
