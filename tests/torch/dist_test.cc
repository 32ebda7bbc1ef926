// Data-parallel training on c10d Gloo over 127.0.0.1. In-process (one thread per rank): the
// collectives, a rendezvous that names a missing rank, and a non-finite gradient on one rank that
// skips the step on every rank. As a user runs it (processes, the CLI): two ranks follow one rank
// step for step across the A8->A4 flip, kill -9 and a hung rank stop the others with the rank's name
// and the run resumes, checkpoints move between world sizes, and collection workers started through
// the launch contract feed a two-rank KD run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "../core/test_util.h"
#include "core/dist/local_launch.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "torch/dist/dist_group.h"
#include "torch/dist/rank_slice_source.h"
#include "torch/train/trainer.h"
#include "train_test_util.h"

namespace bkd {
namespace {
using json = nlohmann::json;
using namespace std::chrono_literals;

LaunchEnv loopback(int rank, int world, int port) {
  LaunchEnv e;
  e.rank = rank, e.world_size = world, e.local_rank = rank, e.master_addr = "127.0.0.1", e.master_port = port;
  return e;
}

// Runs f(rank) on `world` threads; rethrows the first failure.
void on_ranks(int world, const std::function<void(int)>& f) {
  std::vector<std::thread> ts;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r)
    ts.emplace_back([&, r] {
      try {
        f(r);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  for (int r = 0; r < world; ++r) ASSERT_EQ(errors[size_t(r)], "") << "rank " << r;
}

TEST(DistGroup, AveragesGradientsInBucketsAndSumsStatistics) {
  if (!dist_available()) GTEST_SKIP() << "built without Gloo";
  const int port = free_loopback_port();
  on_ranks(2, [&](int r) {
    auto g = DistGroup::connect(loopback(r, 2, port), 20s, false);
    // Three parameters, one without a gradient (counts as zeros); a 64-byte bucket cap forces 3 buckets.
    std::vector<torch::Tensor> ps = {torch::zeros({4}), torch::zeros({2, 3}), torch::zeros({5})};
    ps[0].mutable_grad() = torch::full({4}, float(r + 1));                   // 1 and 2 -> 1.5
    ps[1].mutable_grad() = torch::arange(6, torch::kFloat).view({2, 3}) * (r == 0 ? 1 : 3);  // mean: 2 * arange
    if (r == 0) ps[2].mutable_grad() = torch::full({5}, 4.0f);               // 4 and (none) -> 2
    g->average_gradients(ps, 64);
    EXPECT_TRUE(torch::equal(ps[0].grad(), torch::full({4}, 1.5f)));
    EXPECT_TRUE(torch::equal(ps[1].grad(), torch::arange(6, torch::kFloat).view({2, 3}) * 2));
    EXPECT_TRUE(torch::equal(ps[2].grad(), torch::full({5}, 2.0f)));
    const auto s = g->sum({double(r), 0.5}, "test");
    EXPECT_EQ(s, (std::vector<double>{1.0, 1.0}));
    // Rank 0's tensor reaches rank 1.
    auto w = torch::full({3}, float(10 * (r + 1)));
    g->broadcast_from_rank0({w});
    EXPECT_TRUE(torch::equal(w, torch::full({3}, 10.0f)));
  });
}

TEST(DistGroup, RendezvousNamesTheRankThatNeverCame) {
  if (!dist_available()) GTEST_SKIP() << "built without Gloo";
  std::string err;
  try {
    DistGroup::connect(loopback(0, 3, free_loopback_port()), 2s, false);
  } catch (const Error& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("rank(s) 1, 2 of 3 did not arrive within 2 s"), std::string::npos) << err;
}

TEST(DistGroup, RankSliceKeepsItsPartOfTheGlobalOrder) {
  // 40 windows of 4 tokens; global batches of 6 = 2 ranks x 3.
  std::vector<std::vector<int32_t>> docs = {std::vector<int32_t>(161)};
  for (int i = 0; i < 161; ++i) docs[0][size_t(i)] = i % 97;
  TokenWindowSource global(docs, 4, 6, -1, 9);
  Batch g = global.next();
  for (int r = 0; r < 2; ++r) {
    RankSliceSource s(std::make_unique<TokenWindowSource>(docs, 4, 6, -1, 9), r, 2, 3);
    Batch b = s.next();
    EXPECT_TRUE(torch::equal(b.inputs, g.inputs.narrow(0, 3 * r, 3)));
    EXPECT_EQ(b.tokens, 12);
  }
}

// A non-finite gradient on rank 1 only: both ranks skip that step and end with identical weights.
TEST(DistGroup, NonFiniteGradientOnOneRankSkipsTheStepOnEveryRank) {
  if (!dist_available()) GTEST_SKIP() << "built without Gloo";
  const int port = free_loopback_port();
  const std::string dir = test::fresh_dir("bkd_dist_", "nan");
  auto docs = test::patterned_docs(64, 40, 80, 3);
  std::vector<TrainResult> res(2);
  on_ranks(2, [&](int r) {
    auto g = DistGroup::connect(loopback(r, 2, port), 30s, false);
    TrainOptions o;
    o.role = "student";
    o.model.vocab_size = 64, o.model.d_model = 32, o.model.n_layers = 1, o.model.n_heads = 2, o.model.n_kv_heads = 2;
    o.model.ffn_dim = 64, o.model.max_seq_len = 16;
    o.seq_len = 16, o.batch_size = 2, o.budget_tokens = 16 * 4 * 6, o.precision = "fp32", o.threads = 1;
    o.ckpt_dir = dir, o.ckpt_every = 100, o.progress = false;
    o.inject_nonfinite_at = {2};
    o.inject_nonfinite_rank = 1;
    o.dist = g.get();
    RankSliceSource data(std::make_unique<TokenWindowSource>(docs, 16, 4, -1, 5), r, 2, 2);
    res[size_t(r)] = train(o, data);
  });
  ASSERT_EQ(res[0].records.size(), 6u);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(res[size_t(r)].records[2].skipped) << r;
    EXPECT_EQ(res[size_t(r)].skipped_steps, 1) << r;
    EXPECT_EQ(res[size_t(r)].seen_tokens, 16 * 4 * 6) << r;  // global tokens
  }
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(res[0].records[i].loss, res[1].records[i].loss) << i;
  std::filesystem::remove_all(dir);
}

// ---- as a user runs it ------------------------------------------------------------------------

// A prepared tiny project (once per suite). Training: fp32, one thread per rank, no format loss (its
// mean over the structural positions of a slice is not the mean over the global batch), a 24-step
// budget with the flip at step 12.
struct DpProject {
  test::TempDir dir;
  DpProject() {
    test::make_sotu_project(dir, 30,
                            "PRECISION=fp32\nFORMAT_WEIGHT=0\nBUDGET_TOKENS=24k\nFLIP_AT=0.5\nCKPT_EVERY=5\nCKPT_KEEP=10\n"
                            "THREADS=1\nTENSORBOARD=false\nDIST_TIMEOUT_S=20\nTEACHER_BUDGET_TOKENS=8k\n"
                            "KD_TARGET_TOKENS=4k\n");
    auto r = test::run_cli(dir.path(), "prepare");
    if (r.exit_code != 0) throw std::runtime_error(r.output);
  }
  test::CommandResult cli(const std::string& args, const std::string& env = "") const {
    return test::run_cli(dir.path(), args, env);
  }
  std::string ckpt(const std::string& name) const { return dir.file("ck_" + name); }
};

DpProject& project() {
  static DpProject p;
  return p;
}

std::vector<json> metrics(const std::string& ckpt_dir, const std::string& role = "student_ce") {
  std::vector<json> out;
  std::istringstream in(read_file(ckpt_dir + "/" + role + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// A CE-only student run into its own checkpoint folder.
test::CommandResult train_ce(const std::string& name, const std::string& flags, const std::string& extra = "") {
  return project().cli("--set CKPT_DIR=" + project().ckpt(name) + " " + flags + " train --role student_ce " + extra);
}

TEST(DataParallel, TwoRanksFollowOneRankStepForStepAcrossTheFlip) {
  if (!dist_available()) GTEST_SKIP() << "built without Gloo";
  auto two = train_ce("two", "--set BATCH_SIZE=8", "--nproc 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  auto acc = train_ce("acc", "--set BATCH_SIZE=8 --set GRAD_ACCUM=2");
  ASSERT_EQ(acc.exit_code, 0) << acc.output;
  auto big = train_ce("big", "--set BATCH_SIZE=16");
  ASSERT_EQ(big.exit_code, 0) << big.output;
  const auto m2 = metrics(project().ckpt("two")), ma = metrics(project().ckpt("acc")), mb = metrics(project().ckpt("big"));
  ASSERT_EQ(m2.size(), 24u);
  ASSERT_EQ(ma.size(), 24u);
  ASSERT_EQ(mb.size(), 24u);
  EXPECT_EQ(m2[11]["mode"], "a8");
  EXPECT_EQ(m2[12]["mode"], "a4");
  double max_diff_big = 0;
  for (size_t i = 0; i < 24; ++i) {
    // 2 ranks x B against 1 rank x B x 2 accumulation steps: the same micro-batches on the same weights,
    // one thread each. Accumulation adds g1/2 + g2/2, the all-reduce (g1 + g2) / 2; halving is exact in
    // binary floating point, so both are the one rounding of g1 + g2, halved: equal to the bit, every
    // step, before and after the flip (and the statistics likewise, in float64).
    EXPECT_EQ(m2[i]["loss"].get<double>(), ma[i]["loss"].get<double>()) << "step " << i;
    EXPECT_EQ(m2[i]["grad_norm_pre"].get<double>(), ma[i]["grad_norm_pre"].get<double>()) << "step " << i;
    EXPECT_EQ(m2[i]["mode"], ma[i]["mode"]);
    max_diff_big = std::max(max_diff_big, std::fabs(m2[i]["loss"].get<double>() - mb[i]["loss"].get<double>()));
  }
  // 1 rank x 2B computes the same mean over a batch twice as large: only the order of the float32
  // sums differs. At step 0 (identical weights) that is the rounding of a mean of 1024 cross-entropies
  // of ~7 nats: torch's blocked summation keeps it within ~log2(1024) x 6e-8 x 7 = 4e-6.
  EXPECT_LT(std::fabs(m2[0]["loss"].get<double>() - mb[0]["loss"].get<double>()), 1e-5);
  // Later steps drift apart only where a latent weight sits within rounding of a ternary threshold and
  // takes the other code; each such flip moves the loss by ~1e-4 (measured spread: 7e-4 over 24 steps).
  // A missing all-reduce or a wrong slice moves it by > 1e-2 within a few steps.
  EXPECT_LT(max_diff_big, 5e-3);
  const json st = json::parse(read_file(project().ckpt("two") + "/student_ce/step_00000024/state.json"));
  EXPECT_EQ(st["global_batch"]["world_size"], 2);
  EXPECT_EQ(st["global_batch"]["sequences"], 16);
  const json health = json::parse(read_file(project().ckpt("two") + "/student_ce_health.json"));
  EXPECT_EQ(health["world_size"], 2);
  EXPECT_EQ(health["backend"], "gloo");
}

TEST(DataParallel, CheckpointsMoveBetweenWorldSizes) {
  if (!dist_available()) GTEST_SKIP() << "built without Gloo";
  // Two ranks write; after step 10 the run continues on one rank (accumulation 2 keeps the global batch).
  ASSERT_EQ(train_ce("w2", "--set BATCH_SIZE=8", "--nproc 2").exit_code, 0);
  const auto full2 = metrics(project().ckpt("w2"));
  for (int s : {15, 20, 24}) std::filesystem::remove_all(project().ckpt("w2") + "/student_ce/step_000000" + std::to_string(s));
  auto one = train_ce("w2", "--set BATCH_SIZE=8", "--resume");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("1 rank(s) x 8 x 2 accumulation steps"), std::string::npos) << one.output;
  const auto resumed1 = metrics(project().ckpt("w2"));
  ASSERT_EQ(resumed1.size(), 24u);
  for (size_t i = 10; i < 24; ++i) EXPECT_EQ(resumed1[i]["loss"].get<double>(), full2[i]["loss"].get<double>()) << i;

  // And the reverse: one rank (8 x 2 accumulation steps) writes, two ranks continue with accumulation 1.
  ASSERT_EQ(train_ce("w1", "--set BATCH_SIZE=8 --set GRAD_ACCUM=2").exit_code, 0);
  const auto full1 = metrics(project().ckpt("w1"));
  for (int s : {15, 20, 24}) std::filesystem::remove_all(project().ckpt("w1") + "/student_ce/step_000000" + std::to_string(s));
  auto two = train_ce("w1", "--set BATCH_SIZE=8 --set GRAD_ACCUM=2", "--resume --nproc 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto resumed2 = metrics(project().ckpt("w1"));
  ASSERT_EQ(resumed2.size(), 24u);
  for (size_t i = 10; i < 24; ++i) EXPECT_EQ(resumed2[i]["loss"].get<double>(), full1[i]["loss"].get<double>()) << i;
  // A global batch the new world cannot make up is refused with the numbers.
  for (int s : {15, 20, 24}) std::filesystem::remove_all(project().ckpt("w1") + "/student_ce/step_000000" + std::to_string(s));
  auto bad = train_ce("w1", "--set BATCH_SIZE=3", "--resume");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("global batch of 16 sequences, which 1 rank(s) x BATCH_SIZE=3 cannot make up"), std::string::npos)
      << bad.output;
}

// ~200 steps of 1024 tokens: seconds on two ranks, long enough to interrupt.
const std::string kLongRun = "--set BUDGET_TOKENS=200k --set CKPT_EVERY=3";

// Starts one rank as torchrun would (its own process, the contract in its environment).
struct Rank {
  pid_t pid = -1;
  std::string log;
};

Rank start_rank(int rank, int world, int port, const std::string& ckpt, const std::string& extra_env) {
  Rank r;
  r.log = project().dir.file("rank" + std::to_string(rank) + "_" + std::to_string(port) + ".log");
  const std::string cmd = "cd '" + project().dir.path() + "' && exec env -i PATH=/usr/bin:/bin HOME=/tmp BKD_CONFIGS_DIR='" +
                          test::repo_root() + "/configs' RANK=" + std::to_string(rank) + " WORLD_SIZE=" +
                          std::to_string(world) + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
                          extra_env + " '" + BKD_CLI_PATH + "' --set CKPT_DIR=" + ckpt +
                          " --set BATCH_SIZE=8 " + kLongRun + " train --role student_ce > '" +
                          r.log + "' 2>&1";
  r.pid = ::fork();
  if (r.pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return r;
}

// The exit code, or -1 when it still runs after `limit`.
int wait_exit(pid_t pid, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(50ms);
  }
  return -1;
}

void wait_for_steps(const std::string& ckpt, size_t steps) {
  const std::string path = ckpt + "/student_ce/metrics.jsonl";
  for (int i = 0; i < 1200; ++i) {
    if (file_exists(path) && metrics(ckpt).size() >= steps) return;
    std::this_thread::sleep_for(50ms);
  }
  FAIL() << "no progress in " << path;
}

// Starts two ranks on a long run, does `to_rank1` (SIGKILL or SIGSTOP) once `steps` steps are logged,
// and checks that rank 0 exits non-zero within `within`, naming rank 1. Leaves no process behind.
void expect_rank0_names_rank1(const std::string& ck, int signal, size_t steps, int timeout_s, std::chrono::seconds within) {
  const int port = free_loopback_port();
  const std::string env = "DIST_TIMEOUT_S=" + std::to_string(timeout_s);
  Rank r0 = start_rank(0, 2, port, ck, env), r1 = start_rank(1, 2, port, ck, env);
  wait_for_steps(ck, steps);
  ASSERT_EQ(::kill(r1.pid, signal), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const int code = wait_exit(r0.pid, 60s);
  const auto took = std::chrono::steady_clock::now() - t0;
  ::kill(r1.pid, SIGKILL);
  wait_exit(r1.pid, 5s);
  if (code == -1) ::kill(r0.pid, SIGKILL), wait_exit(r0.pid, 5s);
  ASSERT_NE(code, -1) << "rank 0 still runs 60 s after rank 1 got signal " << signal << "\n" << read_file(r0.log);
  EXPECT_NE(code, 0);
  EXPECT_LT(took, within);
  const std::string out = read_file(r0.log);
  EXPECT_NE(out.find("rank(s) 1 stopped"), std::string::npos) << out;
}

TEST(DataParallel, KilledRankStopsTheOtherWithItsNameAndTheRunResumes) {
  if (!dist_available()) GTEST_SKIP() << "built without Gloo";
  const std::string ck = project().ckpt("kill");
  // A killed rank closes its sockets: rank 0 fails at once, then spends 2.5 s naming who stopped.
  expect_rank0_names_rank1(ck, SIGKILL, 7, 10, 20s);  // after step 7: a checkpoint at step 6 exists
  // Resume on two ranks: the step log continues without gaps or repeats to the end of the budget.
  auto resumed = project().cli("--set CKPT_DIR=" + ck + " --set BATCH_SIZE=8 " + kLongRun + " train --role student_ce --resume --nproc 2");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  const auto m = metrics(ck);
  ASSERT_EQ(m.size(), 196u);  // ceil(200000 / 1024)
  for (size_t i = 0; i < m.size(); ++i) EXPECT_EQ(m[i]["step"].get<size_t>(), i);
}

TEST(DataParallel, HungRankTimesOutNamingIt) {
  if (!dist_available()) GTEST_SKIP() << "built without Gloo";
  // A frozen rank closes nothing: only DIST_TIMEOUT_S (4 s) can tell, plus the 2.5 s diagnosis.
  expect_rank0_names_rank1(project().ckpt("hang"), SIGSTOP, 3, 4, 20s);
}

// Two collection workers started through the launch contract (RANK/WORLD_SIZE, no --worker), merged,
// then a KD student trained on two ranks from the merged manifest.
TEST(DataParallel, CollectionWorkersFromTheLaunchContractFeedATwoRankKdRun) {
  if (!dist_available()) GTEST_SKIP() << "built without Gloo";
  auto& p = project();
  auto teacher = p.cli("train --role teacher");
  ASSERT_EQ(teacher.exit_code, 0) << teacher.output;
  int64_t rows = 0;
  for (int w = 0; w < 2; ++w) {
    auto c = p.cli("collect", "RANK=" + std::to_string(w) + " WORLD_SIZE=2");
    ASSERT_EQ(c.exit_code, 0) << c.output;
    ASSERT_NE(c.output.find("collect:"), std::string::npos) << c.output;
  }
  auto merged = p.cli("collect --merge", "RANK=0 WORLD_SIZE=2");
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  EXPECT_NE(merged.output.find("merged 2 workers"), std::string::npos) << merged.output;
  const json man = json::parse(read_file(p.dir.file("drive/data/kd_manifest.json")));
  rows = man["rows"].get<int64_t>();
  EXPECT_GT(rows, 0);
  auto train = p.cli("--set CKPT_DIR=" + p.ckpt("kd") + " --set BATCH_SIZE=4 --set BUDGET_TOKENS=4k train --nproc 2");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("KD on " + std::to_string(rows) + " rows"), std::string::npos) << train.output;
  const auto m = metrics(p.ckpt("kd"), "student");
  ASSERT_FALSE(m.empty());
  EXPECT_TRUE(m.back().contains("kd")) << m.back().dump();
}

}  // namespace
}  // namespace bkd
