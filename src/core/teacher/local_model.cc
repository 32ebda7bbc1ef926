#include "core/teacher/local_model.h"

#include <mutex>

#include "core/util/error.h"

namespace bkd {
namespace {
std::mutex& loader_mu() {
  static std::mutex mu;
  return mu;
}
LocalModelLoader& loader() {
  static LocalModelLoader l;
  return l;
}
}  // namespace

std::vector<std::vector<float>> LocalLanguageModel::sequence_logits(const std::vector<int32_t>& tokens) {
  std::vector<std::vector<float>> rows;
  rows.reserve(tokens.size());
  const size_t max_ctx = max_context() > 0 ? static_cast<size_t>(max_context()) : tokens.size();
  for (size_t i = 0; i < tokens.size(); ++i) {
    size_t begin = i + 1 > max_ctx ? i + 1 - max_ctx : 0;
    rows.push_back(next_logits(std::vector<int32_t>(tokens.begin() + begin, tokens.begin() + i + 1)));
  }
  return rows;
}

void set_local_model_loader(LocalModelLoader l) {
  std::lock_guard<std::mutex> lock(loader_mu());
  loader() = std::move(l);
}

bool has_local_model_loader() {
  std::lock_guard<std::mutex> lock(loader_mu());
  return static_cast<bool>(loader());
}

std::unique_ptr<LocalLanguageModel> load_local_model(const Settings& settings, const std::string& model_name) {
  LocalModelLoader l;
  {
    std::lock_guard<std::mutex> lock(loader_mu());
    l = loader();
  }
  const std::string hint = "train it first: `bitnet-kde train --role teacher` (or `make train`), "
                           "or choose an API teacher with TEACHER_PROVIDER";
  if (!l)
    throw Error("no trained local teacher available: this build has no local model loader (built without LibTorch?)",
                hint);
  auto m = l(settings, model_name);
  if (!m) throw Error("no trained local teacher '" + model_name + "' found in CKPT_DIR", hint);
  return m;
}

}  // namespace bkd
