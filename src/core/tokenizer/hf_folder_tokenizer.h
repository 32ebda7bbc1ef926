#pragma once
// The tokenizer of a Hugging Face model folder, whichever of the two kinds it ships:
//   tokenizer.json with a byte-level BPE (Llama-3, Qwen2/Qwen3, GPT-2)      -> HfBpeTokenizer
//   tokenizer.json in SentencePiece style (Llama-2, Mistral: BPE with byte_fallback, a Metaspace or
//     Prepend("▁") step) or Unigram, with tokenizer.model beside it        -> SpmTokenizer on tokenizer.model
//   tokenizer.model alone                                                   -> SpmTokenizer
// Anything else (no tokenizer file, a SentencePiece-style tokenizer.json without its tokenizer.model,
// a byte-level file using features HfBpeTokenizer refuses) is an Error naming the folder and the file.
#include <memory>
#include <string>

#include "core/tokenizer/tokenizer.h"

namespace bkd {

std::unique_ptr<Tokenizer> load_hf_folder_tokenizer(const std::string& model_dir);

}  // namespace bkd
