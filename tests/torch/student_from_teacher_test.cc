// A student started from its teacher (STUDENT_INIT=teacher): every teacher weight lands on the student
// parameter of the same name, SubLN gains are inserted at 1 where the teacher has none, and the
// student in full precision computes its teacher's function when the teacher already has SubLN.
#include <gtest/gtest.h>

#include "../core/test_util.h"
#include "core/util/error.h"
#include "torch/model/model_api.h"
#include "torch/model/student_from_teacher.h"

namespace bkd {
namespace {

ModelConfig small_teacher() {
  ModelConfig c;
  c.vocab_size = 300, c.d_model = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.ffn_dim = 64, c.max_seq_len = 32;
  c.bitlinear = false;
  return c;
}

LoadedModel teacher_of(const ModelConfig& c) {
  torch::manual_seed(7);
  LoadedModel t;
  t.config = c;
  t.model = Transformer(c, QuantMode::FullPrecision);
  t.checkpoint = "test-teacher";
  return t;
}

// The project's own teacher layout (SubLN, squared ReLU, tied): the student in full precision is the
// same function. Both run the same float32 operations in the same order on the same values (BitLinear
// in FullPrecision mode applies the latent weight as is), so the logits are equal bit for bit.
TEST(StudentFromTeacher, FullPrecisionStudentComputesItsTeachersLogits) {
  LoadedModel t = teacher_of(small_teacher());
  const ModelConfig sc = student_config_of_teacher(t.config, 300, 32);
  EXPECT_TRUE(sc.bitlinear);
  EXPECT_TRUE(sc.sub_norm);
  torch::manual_seed(99);  // the student's drawn weights differ from the teacher's before the copy
  Transformer s(sc, QuantMode::TernaryA8);
  copy_teacher_weights(t, *s);
  s->set_quant_mode(QuantMode::FullPrecision);
  s->eval();
  torch::NoGradGuard ng;
  const torch::Tensor ids = torch::randint(0, 300, {2, 24}, torch::kLong);
  const torch::Tensor want = t.model->forward(ids), got = s->forward(ids);
  EXPECT_TRUE(torch::equal(want, got)) << (want - got).abs().max().item<float>();
  // Ternary A8, what training starts from: finite, and not the drawn student's function.
  s->set_quant_mode(QuantMode::TernaryA8);
  EXPECT_TRUE(torch::isfinite(s->forward(ids)).all().item<bool>());
}

// A Hugging Face teacher's switches (q/k/v biases, q/k RMSNorm, head_dim, Llama-3 RoPE scaling, no
// SubLN): each teacher tensor is copied to the parameter of its name, the SubLN gains are new and 1.
TEST(StudentFromTeacher, HuggingFaceSwitchesAreKeptAndSubLnIsInserted) {
  ModelConfig c = small_teacher();
  c.sub_norm = false, c.qkv_bias = true, c.qk_norm = true, c.head_dim_override = 16;
  c.ffn_activation = FfnActivation::Silu, c.tie_embeddings = false;
  c.rope_scaling.type = RopeScaling::Type::Llama3, c.rope_scaling.factor = 8.0;
  LoadedModel t = teacher_of(c);
  const ModelConfig sc = student_config_of_teacher(c, 300, 32);
  EXPECT_TRUE(sc.has_hf_features());
  Transformer s(sc, QuantMode::TernaryA8);
  copy_teacher_weights(t, *s);
  const auto sp = s->named_parameters(true);
  int64_t copied = 0;
  for (const auto& p : t.model->named_parameters(true)) {
    ASSERT_NE(sp.find(p.key()), nullptr) << p.key();
    EXPECT_TRUE(torch::equal(*sp.find(p.key()), p.value())) << p.key();
    ++copied;
  }
  EXPECT_EQ(copied + 2 * c.n_layers, int64_t(sp.size())) << "the student has the teacher's tensors and two SubLNs per block";
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (const char* n : {"attn_sub_norm", "ffn_sub_norm"}) {
      const std::string name = "layers." + std::to_string(l) + "." + n;
      ASSERT_NE(sp.find(name), nullptr) << name;
      EXPECT_TRUE(torch::equal(*sp.find(name), torch::ones_like(*sp.find(name)))) << name;
    }
}

// A trimmed head (rare ids sharing one class) is refused, and so is a student of another shape.
TEST(StudentFromTeacher, TrimmedHeadsAndOtherShapesAreRefused) {
  ModelConfig c = small_teacher();
  c.vocab_size = 101;  // 100 kept ids and the rare class
  LoadedModel t = teacher_of(c);
  t.vocab_map.full_size = 300;
  for (int32_t i = 0; i < 100; ++i) t.vocab_map.kept.push_back(i);
  Transformer s(student_config_of_teacher(c, 300, 32), QuantMode::TernaryA8);
  EXPECT_NE(test::error_message([&] { copy_teacher_weights(t, *s); }).find("trimmed head (200 ids share one class)"), std::string::npos);

  LoadedModel full = teacher_of(small_teacher());
  ModelConfig other = student_config_of_teacher(full.config, 300, 32);
  other.ffn_dim = 96;
  Transformer wide(other, QuantMode::TernaryA8);
  const std::string err = test::error_message([&] { copy_teacher_weights(full, *wide); });
  EXPECT_NE(err.find("layers.0.w_gate"), std::string::npos) << err;
}

}  // namespace
}  // namespace bkd
