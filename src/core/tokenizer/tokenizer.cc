#include "core/tokenizer/tokenizer.h"

namespace bkd {

std::vector<int32_t> Tokenizer::encode_ids(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const auto& t : encode(text)) ids.push_back(t.id);
  return ids;
}

}  // namespace bkd
