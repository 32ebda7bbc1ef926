#pragma once
// The training corpus: documents read from a folder of .txt files (one document each) and .jsonl files
// (one {"text": ...} document per line), normalized, and split train/val/test by document with a
// seeded hash so the split never depends on file order or count of other documents.
#include <cstdint>
#include <string>
#include <vector>

#include "core/data/split.h"

namespace bkd {

struct Document {
  std::string id;      // stable: "<file>" or "<file>#<line>"
  std::string source;  // file name
  std::string text;    // normalized
};

// NFC, CRLF/CR -> LF, no BOM, no NUL/control characters except \n and \t, trailing spaces removed per line,
// runs of 3+ newlines collapsed to 2, leading/trailing blank lines removed. Invalid UTF-8 is replaced (U+FFFD).
std::string normalize_text(const std::string& raw);

// Reads every .txt / .jsonl file directly in `dir` (sorted by name). Empty documents are dropped.
// Missing folder / no documents / bad JSON lines -> Error naming the path and line and how to fix it.
std::vector<Document> read_corpus(const std::string& dir);

// Which split a document belongs to: deterministic in (seed, id) alone.
Split assign_split(const std::string& doc_id, uint64_t seed, double val_fraction, double test_fraction);

struct CorpusSplits {
  std::vector<Document> train, val, test;
};
CorpusSplits split_corpus(std::vector<Document> docs, uint64_t seed, double val_fraction, double test_fraction);

// The order every stage draws documents in (KD sequences, eval chunks, baseline prompts): a seeded
// shuffle by SHA-256(seed:id), deterministic and independent of file order, so a sample that stops
// at a token target covers the split's documents of every period instead of its first files.
std::vector<Document> in_sample_order(std::vector<Document> docs, uint64_t seed);

void write_split_jsonl(const std::string& path, const std::vector<Document>& docs);
std::vector<Document> read_split_jsonl(const std::string& path);

}  // namespace bkd
