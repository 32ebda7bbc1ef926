// `prepare`: corpus -> splits -> tokenizers -> tokenized splits (see core/stages/prepare.h).
#include <cstdio>

#include "cli/cli.h"
#include "core/stages/prepare.h"

namespace bkd::cli {
namespace {

void setup_prepare(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("prepare", "corpus -> train/val/test split -> student tokenizer -> tokenized splits");
  static PrepareOptions opts;
  sub->add_flag("--force", opts.force, "redo everything even if the outputs are current");
  sub->callback([&cli] {
    auto r = run_prepare(cli.settings(), opts);
    if (r.value("skipped", false)) {
      std::printf("prepare: up to date (%s)\n", r["student_tokenizer"]["path"].get<std::string>().c_str());
      return;
    }
    std::printf("%-6s %6s %10s %12s %12s\n", "split", "docs", "bytes", "student_tok", "teacher_tok");
    for (const char* sp : {"train", "val", "test"}) {
      const auto& x = r["splits"][sp];
      std::printf("%-6s %6d %10llu %12llu %12llu\n", sp, x["documents"].get<int>(),
                  (unsigned long long)x["bytes"].get<uint64_t>(), (unsigned long long)x["student_tokens"].get<uint64_t>(),
                  (unsigned long long)x["teacher_tokens"].get<uint64_t>());
    }
    std::printf("student tokenizer: %s (vocab %d)\n", r["student_tokenizer"]["path"].get<std::string>().c_str(),
                r["student_tokenizer"]["vocab_size"].get<int>());
    std::printf("encode MB/s: student %.2f, teacher %.2f; total %.1f s\n",
                r["throughput_mb_s"]["student_encode"].get<double>(), r["throughput_mb_s"]["teacher_encode"].get<double>(),
                r["seconds"]["total"].get<double>());
  });
}

RegisterVerb reg_prepare("prepare", 30, setup_prepare);

}  // namespace
}  // namespace bkd::cli
