// Installs the LibTorch teacher as core's local model loader (core never links LibTorch).
#include "core/teacher/local_model.h"
#include "torch/model/model_api.h"

namespace bkd::cli {
namespace {
struct InstallLoader {
  InstallLoader() { set_local_model_loader(make_torch_teacher); }
} install_loader;
}  // namespace
}  // namespace bkd::cli
