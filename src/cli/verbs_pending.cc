// Placeholders for stages that do not exist yet: each fails loudly, runs nothing, exits 3.
// A verb_<name>.cc that registers the real verb replaces its placeholder automatically.
#include <cstdio>

#include "cli/cli.h"

namespace bkd::cli {
namespace {

void pending(CLI::App& app, Cli& cli, const char* name, const char* what) {
  auto* sub = app.add_subcommand(name, std::string(what) + " [not implemented yet]");
  sub->allow_extras();
  sub->callback([&cli, name] {
    std::fprintf(stderr, "bitnet-kde %s: this stage is not implemented yet; nothing was run\n", name);
    cli.exit_code = 3;
  });
}

#define BKD_PENDING(NAME, ORDER, WHAT) \
  RegisterVerb pending_##ORDER(NAME, ORDER, [](CLI::App& a, Cli& c) { pending(a, c, NAME, WHAT); }, true)

BKD_PENDING("teacher", 40, "greedy baseline report of the teacher");
BKD_PENDING("collect", 50, "collect KD traces (top-K + Other) into Parquet shards");
BKD_PENDING("train", 60, "train the BitNet student (or --role teacher)");
BKD_PENDING("export", 65, "pack a checkpoint into a ternary model file");
BKD_PENDING("eval", 70, "evaluate student vs teacher: quality, TPS, memory, QEI");
BKD_PENDING("dryrun", 80, "7B-shaped forward pass: peak memory and A8->A4 check");
BKD_PENDING("pipeline", 90, "run every stage in order, skipping current outputs");
BKD_PENDING("inspect", 100, "describe a KD shard");
BKD_PENDING("serve", 110, "OpenAI-compatible server for local checkpoints");

}  // namespace
}  // namespace bkd::cli
