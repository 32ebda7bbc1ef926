// Packed model files: GGUF round trip (bit-identical engine output), header layout checked by an
// independent reader of the first fields, and clear errors for damaged files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/engine/engine.h"
#include "core/engine/gguf_model.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

FloatModelWeights tiny(bool tied) {
  ModelConfig c;
  c.vocab_size = 40;
  c.d_model = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 80;
  c.max_seq_len = 16;
  c.tie_embeddings = tied;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto fill = [&](int64_t n, float s, float m = 0) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = m + s * nd(rng);
    return v;
  };
  const int64_t D = 64, F = 80, KV = 32, V = 40;
  FloatModelWeights w;
  w.cfg = c;
  w.embed = fill(V * D, 1);
  if (!tied) w.lm_head = fill(V * D, 0.1f);
  w.final_norm = fill(D, 0.1f, 1);
  for (int i = 0; i < 2; ++i)
    w.layers.push_back({fill(D, 0.1f, 1), fill(D * D, 0.02f), fill(KV * D, 0.02f), fill(KV * D, 0.02f), fill(D, 0.1f, 1),
                        fill(D * D, 0.02f), fill(D, 0.1f, 1), fill(F * D, 0.02f), fill(F * D, 0.02f), fill(F, 0.1f, 1),
                        fill(D * F, 0.02f)});
  return w;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("bkd_gguf_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::vector<float> logits_of(const PackedModel& m) {
  Engine e(m);
  const std::vector<int32_t> t = {1, 5, 9, 33, 2};
  std::vector<float> l(5 * 40);
  e.forward(t.data(), 5, l.data(), true);
  return l;
}

TEST(EngineGguf, RoundTripGivesBitIdenticalLogits) {
  for (bool tied : {true, false})
    for (TableFormat f : {TableFormat::F32, TableFormat::BF16, TableFormat::I8}) {
      const PackedModel m = pack_model(tiny(tied), f);
      const std::string path = temp_path("rt.gguf");
      save_packed_model(m, path);
      const PackedModel back = load_packed_model(path);
      EXPECT_EQ(back.cfg.d_model, 64);
      EXPECT_EQ(back.cfg.tie_embeddings, tied);
      EXPECT_EQ(back.embed.format, f);
      EXPECT_EQ(back.layers[1].w_down.scale, m.layers[1].w_down.scale);
      EXPECT_EQ(logits_of(back), logits_of(m)) << to_string(f) << (tied ? " tied" : " untied");
      // In memory the rows are in the engine's tiles; the file is row-major either way, so saving the
      // loaded model, or one moved back to row-major, writes the same bytes.
      EXPECT_EQ(back.layers[0].wq.tile_rows, kEngineTileRows);
      PackedModel row_major = load_packed_model(path);
      for (PackedLayer& l : row_major.layers)
        for (TernaryMatrix* w : l.projections()) w->retile(1);
      const std::string again = temp_path("rt2.gguf"), again_rows = temp_path("rt3.gguf");
      save_packed_model(back, again);
      save_packed_model(row_major, again_rows);
      EXPECT_EQ(read_file(again), read_file(path));
      EXPECT_EQ(read_file(again_rows), read_file(path));
      EXPECT_EQ(logits_of(row_major), logits_of(m));
      std::filesystem::remove(again);
      std::filesystem::remove(again_rows);
      // Header as the GGUF spec lays it out: magic, version 3, tensor count, metadata count.
      const std::string bytes = read_file(path);
      uint32_t magic, version;
      uint64_t n_tensors;
      std::memcpy(&magic, bytes.data(), 4);
      std::memcpy(&version, bytes.data() + 4, 4);
      std::memcpy(&n_tensors, bytes.data() + 8, 8);
      EXPECT_EQ(std::string(bytes.data(), 4), "GGUF");
      EXPECT_EQ(version, 3u);
      // embed (+ row scale) [+ lm_head (+ row scale)] + final_norm + per layer 4 norms, 7 packed, 7 scales
      const uint64_t tables = (tied ? 1 : 2) * (f == TableFormat::I8 ? 2 : 1);
      EXPECT_EQ(n_tensors, tables + 1 + 2 * 18);
      std::filesystem::remove(path);
    }
}

TEST(EngineGguf, DamagedFilesFailWithThePathAndTheReason) {
  const PackedModel m = pack_model(tiny(true));
  const std::string path = temp_path("bad.gguf");
  save_packed_model(m, path);
  std::string bytes = read_file(path);

  auto expect_error = [&](const std::string& content, const std::string& what) {
    write_file_atomic(path, content);
    try {
      load_packed_model(path);
      ADD_FAILURE() << "expected an error about " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_FALSE(e.hint().empty());
    }
  };
  expect_error("GGML" + bytes.substr(4), "bad magic");
  expect_error(bytes.substr(0, bytes.size() - 100), "past the end");
  expect_error(bytes.substr(0, 40), "truncated");
  std::string other = bytes;
  const size_t at = other.find("bitnet-kde", 0);
  ASSERT_NE(at, std::string::npos);
  other[at] = 'X';  // architecture value (the first string after its key)
  expect_error(other, "not a bitnet-kde packed model");
  // A code 3 in the last packed tensor: every ternary tensor is validated on load.
  std::string corrupt = bytes;
  const size_t scale_area = corrupt.size() - 7 * 2 * 32;  // the 14 one-float scale tensors close the file
  size_t pos = scale_area - 33;                             // inside w_down of the last layer (padded to 32)
  while (corrupt[pos] == '\0') --pos;
  corrupt[pos] = static_cast<char>(0xff);
  expect_error(corrupt, "invalid ternary code 3");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace bkd
