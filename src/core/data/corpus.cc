#include "core/data/corpus.h"

#include <utf8proc.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"

namespace bkd {
namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Replaces invalid UTF-8 sequences with U+FFFD so later stages only ever see valid text.
std::string sanitize_utf8(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(in.data());
  utf8proc_ssize_t i = 0, n = static_cast<utf8proc_ssize_t>(in.size());
  while (i < n) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t len = utf8proc_iterate(p + i, n - i, &cp);
    if (len < 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(in, static_cast<size_t>(i), static_cast<size_t>(len));
      i += len;
    }
  }
  return out;
}

}  // namespace

std::string normalize_text(const std::string& raw) {
  std::string s = sanitize_utf8(raw);
  if (s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);
  utf8proc_uint8_t* nfc = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  if (nfc) {
    s.assign(reinterpret_cast<char*>(nfc));
    std::free(nfc);
  }
  std::string out;
  out.reserve(s.size());
  int newlines = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\r') {
      if (i + 1 < s.size() && s[i + 1] == '\n') continue;
      c = '\n';
    }
    if (c == '\n') {
      while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
      if (++newlines <= 2 && !out.empty()) out += '\n';
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') continue;  // other control characters
    if (c == 0x7f) continue;
    newlines = 0;
    out += c;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\t')) out.pop_back();
  return out;
}

std::vector<Document> read_corpus(const std::string& dir) {
  if (!dir_exists(dir))
    throw Error("corpus folder '" + dir + "' does not exist",
                "run `make setup` to install the default corpus, or set CORPUS_DIR to a folder of .txt/.jsonl files");
  std::vector<Document> docs;
  for (const auto& name : list_dir(dir)) {
    const std::string path = join_path(dir, name);
    if (ends_with(name, ".txt")) {
      Document d{name, name, normalize_text(read_file(path))};
      if (!d.text.empty()) docs.push_back(std::move(d));
    } else if (ends_with(name, ".jsonl")) {
      std::istringstream in(read_file(path));
      std::string line;
      int line_no = 0;
      while (std::getline(in, line)) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const std::exception& e) {
          throw Error(path + ":" + std::to_string(line_no) + ": not valid JSON (" + e.what() + ")",
                      "each line of a .jsonl corpus file must be one object like {\"text\": \"...\"}");
        }
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
          throw Error(path + ":" + std::to_string(line_no) + ": expected an object with a string field \"text\"",
                      "each line of a .jsonl corpus file must be one object like {\"text\": \"...\"}");
        std::string id = name + "#" + std::to_string(line_no);
        if (j.contains("id") && j["id"].is_string()) id = name + "#" + j["id"].get<std::string>();
        Document d{id, name, normalize_text(j["text"].get<std::string>())};
        if (!d.text.empty()) docs.push_back(std::move(d));
      }
    }
  }
  if (docs.empty())
    throw Error("corpus folder '" + dir + "' has no non-empty .txt or .jsonl documents",
                "put documents there, or unset CORPUS_DIR to use the default corpus (installed by `make setup`)");
  return docs;
}

Split assign_split(const std::string& doc_id, uint64_t seed, double val_fraction, double test_fraction) {
  // 53 bits of SHA-256(seed:id) as a uniform number in [0, 1).
  const std::string h = sha256_hex(std::to_string(seed) + ":" + doc_id);
  const double u = static_cast<double>(std::stoull(h.substr(0, 14), nullptr, 16) >> 3) / 9007199254740992.0;
  if (u < test_fraction) return Split::Test;
  if (u < test_fraction + val_fraction) return Split::Val;
  return Split::Train;
}

CorpusSplits split_corpus(std::vector<Document> docs, uint64_t seed, double val_fraction, double test_fraction) {
  CorpusSplits s;
  for (auto& d : docs) {
    switch (assign_split(d.id, seed, val_fraction, test_fraction)) {
      case Split::Train: s.train.push_back(std::move(d)); break;
      case Split::Val: s.val.push_back(std::move(d)); break;
      case Split::Test: s.test.push_back(std::move(d)); break;
    }
  }
  // A small corpus can leave a held-out split empty; move the last training document so each exists.
  auto ensure = [&](std::vector<Document>& split, double fraction) {
    if (split.empty() && fraction > 0 && s.train.size() > 1) {
      split.push_back(std::move(s.train.back()));
      s.train.pop_back();
    }
  };
  ensure(s.test, test_fraction);
  ensure(s.val, val_fraction);
  if (s.train.empty()) throw Error("the corpus split left no training documents", "add documents or lower VAL_FRACTION/TEST_FRACTION");
  return s;
}

std::vector<Document> in_sample_order(std::vector<Document> docs, uint64_t seed) {
  std::vector<std::pair<std::string, size_t>> keys;
  keys.reserve(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) keys.emplace_back(sha256_hex(std::to_string(seed) + ":" + docs[i].id), i);
  std::sort(keys.begin(), keys.end());
  std::vector<Document> out;
  out.reserve(docs.size());
  for (const auto& k : keys) out.push_back(std::move(docs[k.second]));
  return out;
}

void write_split_jsonl(const std::string& path, const std::vector<Document>& docs) {
  std::string out;
  for (const auto& d : docs) out += nlohmann::json{{"id", d.id}, {"source", d.source}, {"text", d.text}}.dump() + "\n";
  write_file_atomic(path, out);
}

std::vector<Document> read_split_jsonl(const std::string& path) {
  if (!file_exists(path))
    throw Error("split file '" + path + "' does not exist", "run `bitnet-kde prepare` (or `make prepare`) first");
  std::vector<Document> docs;
  std::istringstream in(read_file(path));
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    try {
      auto j = nlohmann::json::parse(line);
      docs.push_back({j.at("id").get<std::string>(), j.at("source").get<std::string>(), j.at("text").get<std::string>()});
    } catch (const std::exception& e) {
      throw Error(path + ":" + std::to_string(line_no) + ": corrupt split file (" + e.what() + ")",
                  "delete it and run `bitnet-kde prepare` again");
    }
  }
  return docs;
}

}  // namespace bkd
