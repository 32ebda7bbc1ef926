#include "torch/train/mapped_batches.h"

#include "core/util/error.h"

namespace bkd {

namespace {
class MappedSource : public BatchSource {
 public:
  MappedSource(std::unique_ptr<BatchSource> inner, const VocabMap& map)
      : inner_(std::move(inner)), map_(map), lut_(map.to_model_lut()) {}
  Batch next() override {
    Batch b = inner_->next();
    b.inputs = lut_.index_select(0, b.inputs.reshape({-1})).view(b.inputs.sizes());
    b.targets = lut_.index_select(0, b.targets.reshape({-1})).view(b.targets.sizes());
    return b;
  }
  nlohmann::json state() const override { return inner_->state(); }
  void restore(const nlohmann::json& j) override { inner_->restore(j); }
  std::string describe() const override {
    return inner_->describe() + ", ids mapped to " + std::to_string(map_.model_vocab()) + " teacher classes";
  }
  bool has_kd() const override { return inner_->has_kd(); }

 private:
  std::unique_ptr<BatchSource> inner_;
  VocabMap map_;
  torch::Tensor lut_;
};
}  // namespace

std::unique_ptr<BatchSource> map_batches(std::unique_ptr<BatchSource> inner, const VocabMap& map) {
  if (!map.enabled()) return inner;
  if (inner->has_kd()) throw Error("a vocabulary map applies to CE batches only (the teacher's pretraining)");
  return std::make_unique<MappedSource>(std::move(inner), map);
}

}  // namespace bkd
