#include "core/model/hf_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"

namespace bkd {
namespace {

using json = nlohmann::json;

const char* const kSupported = "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM";

// The value of an integer field, or `fallback` when absent or null.
int64_t int_field(const json& j, const char* key, int64_t fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  return j.at(key).get<int64_t>();
}

int64_t required_int(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key) || !j.at(key).is_number_integer())
    throw Error(path + ": \"" + key + "\" is missing or not an integer",
                "the folder must hold the config.json Hugging Face wrote for the model");
  return j.at(key).get<int64_t>();
}

// config.json's eos_token_id may be a list (Llama-3 instruct models); the first one is the end of text.
int64_t token_id_field(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return -1;
  const json& v = j.at(key);
  if (v.is_array()) return v.empty() ? -1 : v.at(0).get<int64_t>();
  return v.get<int64_t>();
}

RopeScaling read_rope_scaling(const json& j, const std::string& path) {
  RopeScaling r;
  if (!j.contains("rope_scaling") || j.at("rope_scaling").is_null()) return r;
  const json& s = j.at("rope_scaling");
  const std::string type = s.value("rope_type", s.value("type", std::string("default")));
  if (type == "default") return r;
  if (type != "llama3")
    throw Error(path + ": rope_scaling type \"" + type + "\" is not supported",
                "supported: none, \"default\" and \"llama3\"; use a model without that scaling");
  r.type = RopeScaling::Type::Llama3;
  r.factor = s.at("factor").get<double>();
  r.low_freq_factor = s.at("low_freq_factor").get<double>();
  r.high_freq_factor = s.at("high_freq_factor").get<double>();
  r.original_max_position = s.at("original_max_position_embeddings").get<int64_t>();
  return r;
}

void refuse_if(bool bad, const std::string& path, const std::string& what) {
  if (bad) throw Error(path + ": " + what + " is not supported", "use a " + std::string(kSupported) + " model without it");
}

}  // namespace

HfModelInfo read_hf_config(const std::string& dir) {
  const std::string path = join_path(dir, "config.json");
  if (!file_exists(path))
    throw Error("no config.json in " + dir, "point TEACHER_MODEL_DIR at a Hugging Face model folder (config.json + *.safetensors)");
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw Error(path + " is not valid JSON: " + e.what(), "restore the file the model was published with");
  }
  HfModelInfo info;
  info.dir = dir;
  if (j.contains("architectures") && j.at("architectures").is_array() && !j.at("architectures").empty())
    info.architecture = j.at("architectures").at(0).get<std::string>();
  const std::string& a = info.architecture;
  const bool llama = a == "LlamaForCausalLM", mistral = a == "MistralForCausalLM";
  const bool qwen2 = a == "Qwen2ForCausalLM", qwen3 = a == "Qwen3ForCausalLM";
  if (!llama && !mistral && !qwen2 && !qwen3)
    throw Error(path + ": architecture \"" + a + "\" is not supported", std::string("use a ") + kSupported + " model");

  const std::string act = j.value("hidden_act", std::string("silu"));
  refuse_if(act != "silu", path, "hidden_act \"" + act + "\"");
  refuse_if(j.value("mlp_bias", false), path, "mlp_bias");
  refuse_if(j.value("use_sliding_window", false), path, "use_sliding_window (a Qwen sliding window)");

  ModelConfig& c = info.config;
  c.bitlinear = false;
  c.sub_norm = false;
  c.ffn_activation = FfnActivation::Silu;
  c.vocab_size = required_int(j, "vocab_size", path);
  c.d_model = required_int(j, "hidden_size", path);
  c.n_layers = required_int(j, "num_hidden_layers", path);
  c.n_heads = required_int(j, "num_attention_heads", path);
  c.n_kv_heads = int_field(j, "num_key_value_heads", c.n_heads);
  c.ffn_dim = required_int(j, "intermediate_size", path);
  c.head_dim_override = int_field(j, "head_dim", 0);
  if (c.head_dim_override * c.n_heads == c.d_model) c.head_dim_override = 0;  // the default, said explicitly
  c.norm_eps = j.contains("rms_norm_eps") ? j.at("rms_norm_eps").get<double>() : 1e-6;
  c.rope_theta = j.contains("rope_theta") ? j.at("rope_theta").get<double>() : 10000.0;
  c.rope_scaling = read_rope_scaling(j, path);
  // Every one of these config classes defaults to an untied head.
  c.tie_embeddings = j.value("tie_word_embeddings", false);
  const bool attention_bias = j.value("attention_bias", false);
  c.qkv_bias = qwen2 || attention_bias;
  c.o_bias = !qwen2 && attention_bias;
  c.qk_norm = qwen3;

  info.max_position_embeddings = required_int(j, "max_position_embeddings", path);
  info.sliding_window = mistral ? int_field(j, "sliding_window", 0) : 0;
  c.max_seq_len = info.max_position_embeddings;
  if (info.sliding_window > 0) c.max_seq_len = std::min(c.max_seq_len, info.sliding_window);
  info.bos_id = token_id_field(j, "bos_token_id");
  info.eos_id = token_id_field(j, "eos_token_id");
  info.torch_dtype = j.value("torch_dtype", std::string());
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(path + ": " + e.what(), "the shapes in config.json are inconsistent");
  }
  return info;
}

std::vector<HfTensorName> hf_tensor_names(const ModelConfig& c) {
  const int64_t D = c.d_model, F = c.ffn_dim, Q = c.q_dim(), KV = c.kv_dim(), hd = c.head_dim();
  std::vector<HfTensorName> out;
  out.push_back({"model.embed_tokens.weight", "embed", {c.vocab_size, D}});
  if (!c.tie_embeddings) out.push_back({"lm_head.weight", "lm_head", {c.vocab_size, D}});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string hf = "model.layers." + std::to_string(i) + ".", p = "layers." + std::to_string(i) + ".";
    auto add = [&](const std::string& h, const std::string& n, std::vector<int64_t> shape) {
      out.push_back({hf + h, p + n, std::move(shape)});
    };
    add("input_layernorm.weight", "attn_norm", {D});
    add("self_attn.q_proj.weight", "wq", {Q, D});
    add("self_attn.k_proj.weight", "wk", {KV, D});
    add("self_attn.v_proj.weight", "wv", {KV, D});
    if (c.qkv_bias) {
      add("self_attn.q_proj.bias", "bq", {Q});
      add("self_attn.k_proj.bias", "bk", {KV});
      add("self_attn.v_proj.bias", "bv", {KV});
    }
    if (c.qk_norm) {
      add("self_attn.q_norm.weight", "q_norm", {hd});
      add("self_attn.k_norm.weight", "k_norm", {hd});
    }
    add("self_attn.o_proj.weight", "wo", {D, Q});
    if (c.o_bias) add("self_attn.o_proj.bias", "bo", {D});
    add("post_attention_layernorm.weight", "ffn_norm", {D});
    add("mlp.gate_proj.weight", "w_gate", {F, D});
    add("mlp.up_proj.weight", "w_up", {F, D});
    add("mlp.down_proj.weight", "w_down", {D, F});
  }
  out.push_back({"model.norm.weight", "final_norm", {D}});
  return out;
}

bool hf_tensor_is_ignorable(const std::string& name, const ModelConfig& c) {
  const std::string inv = "rotary_emb.inv_freq";
  if (name.size() >= inv.size() && name.compare(name.size() - inv.size(), inv.size(), inv) == 0) return true;
  return c.tie_embeddings && name == "lm_head.weight";
}

HfWeightFiles hf_weight_files(const std::string& dir) {
  HfWeightFiles w;
  const std::string index = join_path(dir, "model.safetensors.index.json");
  if (file_exists(index)) {
    json j;
    try {
      j = json::parse(read_file(index));
    } catch (const json::exception& e) {
      throw Error(index + " is not valid JSON: " + e.what(), "restore the file the model was published with");
    }
    if (!j.contains("weight_map") || !j.at("weight_map").is_object())
      throw Error(index + " has no \"weight_map\" object", "restore the file the model was published with");
    std::set<std::string> seen;
    for (const auto& [name, file] : j.at("weight_map").items()) {
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.empty() || f[0] == '.')
        throw Error(index + ": weight file name \"" + f + "\" is not a plain file name in the folder");
      const std::string path = join_path(dir, f);
      if (seen.insert(path).second) {
        if (!file_exists(path))
          throw Error(index + " names " + f + ", which is not in " + dir, "download every shard of the model");
        w.files.push_back(path);
      }
      w.by_name[name] = path;
    }
    return w;
  }
  const std::string single = join_path(dir, "model.safetensors");
  if (!file_exists(single))
    throw Error("no model.safetensors or model.safetensors.index.json in " + dir,
                "the folder must hold the model's weights in the safetensors format (PyTorch .bin files are not read)");
  w.files.push_back(single);
  return w;
}

std::string hf_folder_identity(const std::string& dir) {
  // config.json whole; each weight file's size and a sample of its bytes (the header, whose offsets
  // fix every shape, and 64 evenly spaced 4 KiB pieces): two different fine-tunes of one shape
  // differ in the sampled weights, and no 15 GB file is read whole to name the model.
  Sha256 h;
  h.update(read_file(join_path(dir, "config.json")));
  for (const std::string& path : hf_weight_files(dir).files) {
    const uint64_t size = file_size(path);
    h.update(path.substr(path.find_last_of('/') + 1) + ":" + std::to_string(size) + ";");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error("cannot open " + path, "check the file's permissions");
    std::string buf(4096, '\0');
    for (int i = 0; i <= 64; ++i) {
      const uint64_t at = size > buf.size() ? (size - buf.size()) * uint64_t(i) / 64 : 0;
      const ssize_t n = ::pread(fd, buf.data(), buf.size(), off_t(at));
      if (n > 0) h.update(buf.data(), size_t(n));
    }
    ::close(fd);
  }
  return h.hex_digest();
}

}  // namespace bkd
