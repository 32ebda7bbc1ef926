#pragma once
// The GGUF v3 container, writing side: typed metadata, then tensor infos, then 32-byte-aligned tensor
// data (the layout llama.cpp's gguf reader expects). Every GGUF file the project writes goes through
// here: the packed engine's own format (core/engine/gguf_model.h) and the llama.cpp export
// (core/format/llama_cpp_gguf.h). Files are written atomically (temp file + rename). It knows the
// container only, no model.
#include <cstdint>
#include <string>
#include <vector>

namespace bkd {

// ggml tensor types the project writes (ids from ggml.h's enum ggml_type).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, I8 = 24, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35 };
const char* to_string(GgmlType t);

class GgufWriter {
 public:
  static constexpr uint32_t kAlignment = 32;

  void add_string(const std::string& key, const std::string& v);
  void add_u32(const std::string& key, uint32_t v);
  void add_u64(const std::string& key, uint64_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);

  // dims innermost first (GGUF/ggml order: dims[0] is the row length). The bytes are copied.
  void add_tensor(const std::string& name, std::vector<uint64_t> dims, GgmlType type, const void* data, uint64_t bytes);

  size_t tensor_count() const { return tensors_.size(); }
  void write(const std::string& path) const;  // atomic; creates the parent folder

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    GgmlType type;
    std::string data;
  };
  void key(const std::string& k, uint32_t value_type);
  std::string kv_;  // serialized metadata pairs
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace bkd
