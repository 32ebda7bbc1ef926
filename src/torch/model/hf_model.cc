#include "torch/model/hf_model.h"

#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "core/format/safetensors.h"
#include "core/model/hf_config.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"
#include "torch/train/trainer.h"  // keep_freed_memory

namespace bkd {
namespace {

torch::ScalarType stored_type(const SafetensorsTensor& t, const std::string& name, const std::string& path) {
  if (t.dtype == "BF16") return torch::kBFloat16;
  if (t.dtype == "F16") return torch::kHalf;
  if (t.dtype == "F32") return torch::kFloat;
  throw Error(path + ": tensor " + name + " is stored as " + t.dtype + ", not BF16, F16 or F32",
              "use an unquantized checkpoint (quantized formats such as GPTQ/AWQ are not read)");
}

// Every weight file of the folder, opened (memory-mapped) once.
struct OpenFiles {
  std::map<std::string, std::unique_ptr<SafetensorsFile>> by_path;
  std::map<std::string, const SafetensorsFile*> by_tensor;  // tensor name -> file holding it
};

OpenFiles open_weight_files(const std::string& dir) {
  const HfWeightFiles w = hf_weight_files(dir);
  OpenFiles o;
  for (const std::string& path : w.files) o.by_path[path] = std::make_unique<SafetensorsFile>(path);
  for (const auto& [path, file] : o.by_path)
    for (const auto& [name, t] : file->tensors()) {
      auto it = w.by_name.find(name);
      if (!w.by_name.empty() && (it == w.by_name.end() || it->second != path)) continue;  // the index decides
      if (o.by_tensor.count(name))
        throw Error("tensor " + name + " is stored twice in " + dir, "remove the duplicate weight file");
      o.by_tensor[name] = file.get();
    }
  for (const auto& [name, path] : w.by_name)
    if (!o.by_tensor.count(name))
      throw Error("model.safetensors.index.json in " + dir + " puts " + name + " in " + path + ", which does not hold it",
                  "download the model's weight files again");
  return o;
}

}  // namespace

torch::ScalarType hf_weight_dtype(const std::string& setting, const torch::Device& device, int64_t parameters) {
  if (setting == "fp32") return torch::kFloat;
  if (setting == "bf16") return torch::kBFloat16;
  if (setting == "auto") {
    if (device.is_cuda()) return torch::kBFloat16;
    const CpuFeatures& f = cpu_features();
    const bool native_bf16 = f.avx512bf16 || f.amx_bf16;
    const bool too_big = double(parameters) * 4.0 > 0.5 * double(total_ram_bytes());
    return native_bf16 || too_big ? torch::kBFloat16 : torch::kFloat;
  }
  throw Error("TEACHER_DTYPE=" + setting + " is not a weight type", "use auto, fp32 or bf16");
}

LoadedModel load_hf_model(const std::string& dir, const HfLoadOptions& opts) {
  keep_freed_memory();
  const HfModelInfo info = read_hf_config(dir);
  OpenFiles files = open_weight_files(dir);
  const std::vector<HfTensorName> names = hf_tensor_names(info.config);

  // Check everything before converting anything: a bad folder fails in milliseconds.
  std::set<std::string> needed;
  for (const HfTensorName& n : names) {
    auto it = files.by_tensor.find(n.hf_name);
    if (it == files.by_tensor.end())
      throw Error(dir + " has no tensor " + n.hf_name + " (" + info.architecture + ", from config.json)",
                  "config.json and the weight files do not belong together, or a shard is missing");
    const SafetensorsTensor& t = it->second->tensors().at(n.hf_name);
    stored_type(t, n.hf_name, it->second->path());
    if (t.shape != n.shape) {
      std::string want, got;
      for (int64_t d : n.shape) want += (want.empty() ? "" : "x") + std::to_string(d);
      for (int64_t d : t.shape) got += (got.empty() ? "" : "x") + std::to_string(d);
      throw Error(it->second->path() + ": tensor " + n.hf_name + " has shape " + got + ", config.json implies " + want,
                  "config.json and the weight files do not belong together");
    }
    needed.insert(n.hf_name);
  }
  for (const auto& [name, file] : files.by_tensor)
    if (!needed.count(name) && !hf_tensor_is_ignorable(name, info.config))
      throw Error(file->path() + " holds " + name + ", which a " + info.architecture + " of this config does not use",
                  "the folder's config.json does not describe these weights (another architecture or option)");

  LoadedModel m;
  m.config = info.config;
  m.mode = QuantMode::FullPrecision;
  m.checkpoint = dir;
  m.state = {{"role", "teacher"}, {"source", "huggingface"}, {"architecture", info.architecture}, {"dir", dir}};
  m.device = opts.device;
  m.weight_dtype = opts.weight_dtype;
  m.model = Transformer(m.config, m.mode, WeightInit::Uninitialized);
  std::map<std::string, torch::Tensor> params;
  for (auto& p : m.model->named_parameters()) params[p.key()] = p.value();
  torch::NoGradGuard ng;
  for (const HfTensorName& n : names) {
    const SafetensorsFile& f = *files.by_tensor.at(n.hf_name);
    const SafetensorsTensor& t = f.tensors().at(n.hf_name);
    // The mapping is read-only; from_blob never writes, and .to() copies out of it.
    torch::Tensor src = torch::from_blob(const_cast<uint8_t*>(t.data), t.shape,
                                         torch::TensorOptions().dtype(stored_type(t, n.hf_name, f.path())));
    // Matrices (embeddings, projections, head) take the weight type; gains and biases stay float32.
    const torch::ScalarType want = n.shape.size() == 2 ? opts.weight_dtype : torch::kFloat;
    auto it = params.find(n.param_name);
    if (it == params.end()) throw Error("internal: the transformer has no parameter " + n.param_name);
    it->second.set_data(src.to(opts.device, want, /*non_blocking=*/false, /*copy=*/true));
  }
  if (names.size() != params.size())  // every parameter must come from the files
    throw Error("internal: the transformer has " + std::to_string(params.size()) + " parameters, the folder gives " +
                std::to_string(names.size()));
  m.model->to(opts.device);  // the RoPE tables
  m.model->eval();
  char count[32];
  std::snprintf(count, sizeof count, "%.2fM", double(m.config.parameter_count()) / 1e6);
  log_info("teacher: " + info.architecture + " from " + dir + " (" + count + " parameters, weights " +
           std::string(c10::toString(opts.weight_dtype)) + " on " + opts.device.str() + ")");
  return m;
}

}  // namespace bkd
