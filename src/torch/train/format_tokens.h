#pragma once
// The structural tokens the format loss adds weight to, from FORMAT_TOKENS: a comma list of
// "eos" (the tokenizer's end of text), "newline" (every token whose text contains '\n'),
// "punct" (every token whose text, spaces aside, is only ASCII punctuation) and literal strings
// (the token a literal encodes to, when it is exactly one token).
#include <cstdint>
#include <string>
#include <vector>

namespace bkd {
class Tokenizer;

std::vector<int64_t> structural_token_ids(const Tokenizer& tok, const std::string& spec);

}  // namespace bkd
