#include "core/tokenizer/spm_module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

std::string exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return parent_dir(buf);
}

SpmModule load_module() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("BKD_SPM_MODULE")) candidates.push_back(env);
  candidates.push_back(join_path(exe_dir(), "libbkd_spm.so"));
#ifdef BKD_SPM_MODULE_BUILD_PATH
  candidates.push_back(BKD_SPM_MODULE_BUILD_PATH);
#endif
  std::string tried;
  for (const auto& path : candidates) {
    if (!file_exists(path)) {
      tried += "\n  " + path + " (missing)";
      continue;
    }
    void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) {
      tried += "\n  " + path + " (" + ::dlerror() + ")";
      continue;
    }
    SpmModule m{};
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
      ok = ok && fn != nullptr;
    };
    sym(m.load, "bkd_spm_load");
    sym(m.free, "bkd_spm_free");
    sym(m.train, "bkd_spm_train");
    sym(m.encode, "bkd_spm_encode");
    sym(m.decode, "bkd_spm_decode");
    sym(m.piece_size, "bkd_spm_piece_size");
    sym(m.id_to_piece, "bkd_spm_id_to_piece");
    sym(m.piece_to_id, "bkd_spm_piece_to_id");
    sym(m.bos_id, "bkd_spm_bos_id");
    sym(m.score, "bkd_spm_score");
    sym(m.piece_type, "bkd_spm_piece_type");
    sym(m.is_byte, "bkd_spm_is_byte");
    sym(m.eos_id, "bkd_spm_eos_id");
    sym(m.unk_id, "bkd_spm_unk_id");
    sym(m.free_buffer, "bkd_spm_free_buffer");
    if (ok) return m;
    tried += "\n  " + path + " (missing functions: a stale build?)";
  }
  throw Error("cannot load the SentencePiece module libbkd_spm.so; tried:" + tried,
              "build it with `make build` (it sits next to bitnet-kde) or set BKD_SPM_MODULE to its path");
}

}  // namespace

const SpmModule& spm_module() {
  static const SpmModule m = load_module();
  return m;
}

}  // namespace bkd
