#pragma once
// Held-out quality for `eval`, comparable across tokenizers:
//  - bits per byte: the negative log2-likelihood of every token of a text, divided by the text's
//    UTF-8 bytes, so a teacher with GPT-2 tokens and a student with its own tokens are scored on
//    exactly the same bytes;
//  - agreement with the teacher on held-out KD rows: top-1 agreement and KL(teacher || student) over
//    the K+1 buckets (the training KD loss at T = 1), on the positions that carry a teacher
//    distribution.
#include <cstdint>
#include <string>
#include <vector>

#include "torch/train/batch.h"
#include "torch/model/model_api.h"

namespace bkd {
class Tokenizer;

struct TextScore {
  double nll_nats = 0;  // summed over every scored token
  int64_t bytes = 0, tokens = 0, texts = 0;
  double seconds = 0;
  double bits_per_byte() const;
  double nats_per_token() const;
};

// A span of held-out text with the document text before it. `context_from_doc_start`: the context
// reaches back to the document's start (it may be empty), so the end-of-text token precedes it.
struct ScoredText {
  std::string context, text;
  bool context_from_doc_start = true;
};

// The one start-of-document policy of training and eval: a document begins right after the end-of-text
// token (`bos`: the id that separates documents in training). Each text is scored as the continuation
// of its context: [bos if the context starts the document] + tok(context + text), keeping at most half
// the model's context of tokens before the text, and every token that covers a byte of the text is
// scored (with token_nlls' sliding windows when it is longer than the model's context). Bytes counted
// are the text's.
TextScore score_texts(LoadedModel& m, const std::vector<ScoredText>& texts, const Tokenizer& tok, int32_t bos);
// Whole documents: each text with an empty context at its document's start.
TextScore score_texts(LoadedModel& m, const std::vector<std::string>& texts, const Tokenizer& tok, int32_t bos);

// One scored token: -log p(ids[pos] | ids[context_start .. pos)).
struct TokenNll {
  int64_t pos = 0, context_start = 0;
  double nll = 0;
};

// Every token of ids from `first` on (first >= 1), each scored once, in sliding windows of `ctx` tokens (never more:
// the model's context) that start every ctx/2 tokens; a window scores only the tokens the previous
// one did not, so each token sees all earlier tokens while they fit and at least ctx/2 of them after.
std::vector<TokenNll> token_nlls(LoadedModel& m, const std::vector<int32_t>& ids, int64_t ctx, int64_t first = 1);

struct KdAgreement {
  int64_t positions = 0;   // rows with a teacher distribution (kd_valid)
  int64_t top1_rows = 0;   // of those, rows whose teacher top-1 is a student token (not all mass in Other)
  int64_t top1_agree = 0;  // student argmax == teacher top-1
  double kl_sum = 0;       // nats, summed over `positions`
  double seconds = 0;
  double top1() const { return top1_rows ? double(top1_agree) / double(top1_rows) : 0.0; }
  double kl() const { return positions ? kl_sum / double(positions) : 0.0; }
};

// Student against held-out KD sequences (rows at positions 0..L-1, as read_kd_sequences gives them),
// batched `batch` sequences at a time with windows of `seq_len` logits.
KdAgreement kd_agreement(LoadedModel& m, const std::vector<std::vector<KdPosition>>& seqs, int64_t seq_len,
                         int64_t batch);

// Bytes of the model's parameters and buffers as loaded (what inference holds in memory).
uint64_t model_bytes(LoadedModel& m);

}  // namespace bkd
