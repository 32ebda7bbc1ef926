// torchrun's launch contract as read by training and collection: what a valid contract gives and a
// clear error naming the variable for every malformed one.
#include <gtest/gtest.h>

#include "core/dist/launch_env.h"
#include "core/dist/local_launch.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "test_util.h"

namespace bkd {
namespace {

std::string usage_error(const std::map<std::string, std::string>& vars, bool rendezvous = true) {
  try {
    launch_env_from(vars, rendezvous);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, UnsetMeansOneProcess) {
  const LaunchEnv e = launch_env_from({});
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
}

TEST(LaunchEnv, ReadsTorchrunsVariables) {
  const LaunchEnv e = launch_env_from(
      {{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29500"}});
  EXPECT_TRUE(e.distributed());
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "node0");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_EQ(e.local_world_size, 1);  // unset: one rank on this machine
  EXPECT_EQ(launch_env_from({{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "2"}}, false).local_world_size, 2);
  EXPECT_EQ(launch_env_from({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}).local_rank, 1);
  // One rank needs no rendezvous; collection workers never need one.
  EXPECT_FALSE(launch_env_from({{"RANK", "0"}, {"WORLD_SIZE", "1"}}).distributed());
  EXPECT_EQ(launch_env_from({{"RANK", "1"}, {"WORLD_SIZE", "3"}}, false).rank, 1);
}

TEST(LaunchEnv, MalformedContractsNameTheVariable) {
  EXPECT_NE(usage_error({{"RANK", "0"}}).find("WORLD_SIZE is not"), std::string::npos);
  EXPECT_NE(usage_error({{"WORLD_SIZE", "2"}}).find("RANK is not"), std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, false).find("RANK=2 is out of range"), std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, false).find("RANK='-1'"), std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "two"}}).find("WORLD_SIZE='two'"), std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "0"}}).find("WORLD_SIZE=0"), std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("MASTER_ADDR"), std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}).find("MASTER_PORT"), std::string::npos);
  EXPECT_NE(usage_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
                .find("MASTER_PORT=70000"),
            std::string::npos);
}

TEST(LocalLaunch, EveryRankGetsTheContractAndSuccessIsZero) {
  test::TempDir d;
  LocalLaunch l;
  l.nproc = 3;
  l.program = "/bin/sh";
  l.argv = {"sh", "-c", "echo \"$RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT $THREADS\" > \"" + d.path() + "/r$RANK\""};
  l.threads_per_rank = 2;
  ASSERT_EQ(launch_local_ranks(l), 0);
  std::string port;
  for (int r = 0; r < 3; ++r) {
    const std::string line = read_file(d.file("r" + std::to_string(r)));
    const std::string head = std::to_string(r) + " " + std::to_string(r) + " 3 127.0.0.1 ";
    ASSERT_EQ(line.rfind(head, 0), 0u) << line;
    const std::string p = line.substr(head.size(), line.find(' ', head.size()) - head.size());
    if (r == 0) port = p;
    EXPECT_EQ(p, port);  // one rendezvous port for all
    EXPECT_EQ(line.substr(line.size() - 3), " 2\n");
  }
}

TEST(LocalLaunch, AFailedRankFailsTheLaunchAndStragglersAreKilledAfterTheGrace) {
  // Rank 1 exits with 3 at once; rank 0 would sleep for a minute: it is killed after the 1 s grace.
  LocalLaunch l;
  l.nproc = 2;
  l.program = "/bin/sh";
  l.argv = {"sh", "-c", "if [ $RANK = 1 ]; then exit 3; fi; exec sleep 60"};
  l.grace = std::chrono::seconds(1);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(launch_local_ranks(l), 3);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

}  // namespace
}  // namespace bkd
