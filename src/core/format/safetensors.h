#pragma once
// The safetensors format (Hugging Face): an 8-byte little-endian header length N, a JSON header of N
// bytes ({"name": {"dtype", "shape", "data_offsets": [begin, end)}, "__metadata__": {...}}), then the
// tensor bytes, offsets relative to the end of the header. The reader memory-maps the file and checks
// every offset, size and shape before handing out a pointer; the writer pads the header with spaces
// to a multiple of 8 and writes the file atomically.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bkd {

class MappedFile;

// Bytes per element of a safetensors dtype ("F32", "BF16", "F16", "U8", "I8", "I32", "I64", ...);
// 0 when unknown.
int64_t safetensors_dtype_size(const std::string& dtype);

struct SafetensorsTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Throws Error naming the file and what is wrong (truncated, bad header JSON, unknown dtype,
  // offsets out of range, overlapping or leaving gaps, size that disagrees with the shape).
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The named tensor with this dtype and shape, or Error naming what differs.
  const SafetensorsTensor& get(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape) const;
  const SafetensorsTensor* find(const std::string& name) const;

 private:
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsWriter {
 public:
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, const void* data, uint64_t bytes);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void write(const std::string& path) const;  // atomic

 private:
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::string data;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace bkd
