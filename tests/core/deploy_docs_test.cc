// The cluster launch files in docs/deploy are checked, not run: the sbatch script parses as bash and
// sets torchrun's whole contract; the Kubernetes manifest parses as YAML and its indexed Job agrees
// with itself (world size = completions = parallelism, MASTER_ADDR names pod 0 under the Service).
#include <gtest/gtest.h>

#include "core/util/fs.h"
#include "test_util.h"

namespace bkd {
namespace {

TEST(DeployDocs, SlurmScriptParsesAndSetsTheLaunchContract) {
  const std::string path = test::repo_root() + "/docs/deploy/slurm_train.sbatch";
  auto r = test::run_command("bash -n '" + path + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string text = read_file(path);
  for (const char* v : {"RANK=$SLURM_PROCID", "LOCAL_RANK=$SLURM_LOCALID", "WORLD_SIZE=$SLURM_NTASKS", "MASTER_ADDR=",
                        "MASTER_PORT=", "export MASTER_ADDR MASTER_PORT WORLD_SIZE", "train --role student --resume"})
    EXPECT_NE(text.find(v), std::string::npos) << v;
}

TEST(DeployDocs, KubernetesIndexedJobIsConsistent) {
  const std::string path = test::repo_root() + "/docs/deploy/k8s_train_job.yaml";
  const std::string check = R"PY(
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
svc = next(d for d in docs if d["kind"] == "Service")
job = next(d for d in docs if d["kind"] == "Job")
spec = job["spec"]
assert spec["completionMode"] == "Indexed", "completionMode"
assert spec["completions"] == spec["parallelism"], "completions != parallelism"
pod = spec["template"]["spec"]
assert pod["subdomain"] == svc["metadata"]["name"], "subdomain must be the headless Service"
assert svc["spec"]["clusterIP"] == "None", "the Service must be headless"
c = pod["containers"][0]
env = {e["name"]: e["value"] for e in c["env"]}
assert int(env["WORLD_SIZE"]) == spec["completions"], "WORLD_SIZE != completions"
assert env["MASTER_ADDR"] == job["metadata"]["name"] + "-0." + svc["metadata"]["name"], env["MASTER_ADDR"]
assert int(env["MASTER_PORT"]) == svc["spec"]["ports"][0]["port"], "MASTER_PORT"
assert "RANK=$JOB_COMPLETION_INDEX" in " ".join(c["args"]), "RANK from the completion index"
print("ok")
)PY";
  test::TempDir d;
  write_file_atomic(d.file("check.py"), check);
  auto r = test::run_command("/usr/bin/python3 '" + d.file("check.py") + "' '" + path + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bkd
