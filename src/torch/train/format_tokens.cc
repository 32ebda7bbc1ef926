#include "torch/train/format_tokens.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "core/tokenizer/tokenizer.h"
#include "core/util/error.h"

namespace bkd {

std::vector<int64_t> structural_token_ids(const Tokenizer& tok, const std::string& spec) {
  std::set<int64_t> ids;
  std::stringstream ss(spec);
  std::string item;
  bool newline = false, punct = false;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    if (item == "eos") ids.insert(tok.eos_id());
    else if (item == "newline") newline = true;
    else if (item == "punct") punct = true;
    else {
      auto enc = tok.encode_ids(item);
      if (enc.size() != 1)
        throw UsageError("FORMAT_TOKENS entry '" + item + "' encodes to " + std::to_string(enc.size()) +
                             " tokens with the " + tok.kind() + " tokenizer",
                         "use eos, newline, punct or strings that are a single token");
      ids.insert(enc[0]);
    }
  }
  if (newline || punct) {
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
      if (id == tok.eos_id()) continue;
      std::string text = tok.decode({id});
      if (newline && text.find('\n') != std::string::npos) ids.insert(id);
      std::string core;
      for (char c : text)
        if (c != ' ') core += c;
      if (punct && !core.empty() &&
          std::all_of(core.begin(), core.end(), [](char c) { return std::ispunct(static_cast<unsigned char>(c)); }))
        ids.insert(id);
    }
  }
  return {ids.begin(), ids.end()};
}

}  // namespace bkd
