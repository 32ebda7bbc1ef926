#pragma once
// `bitnet-kde experiment`: the controlled comparison behind the README's claims. Every arm trains the
// student on the same KD traces; within a seed every arm shares the data order and the initial
// weights (SEED + i), so arms differ only in what the arm changes:
//   kd  the default student (KL + CE + format loss, ternary, A8 -> A4 flip)
//   ce  the same token stream and objective without the KL term (what KD buys)
//   a8  KD with 8-bit activations throughout, no flip (what the flip costs, trained that way)
//   fp  KD with full-precision weights and activations, same shape (what ternary costs)
// and arms with KD traces of their own, collected on the same planned sequences with one setting
// changed (DATA_DIR/experiment_kd/<arm>):
//   k100  top-100 + Other instead of top-20 (what more of the teacher per position buys)
//   rskd  EXPERIMENT_RSKD_DRAWS draws per position from the teacher's full distribution (sampled KD,
//         arXiv 2503.16870; its storage per position is reported beside the top-K's)
//   mid   KD_MID_TOKEN: rows inside a teacher token get its conditioned distribution instead of CE only
// and arms with the teacher's tokenizer (STUDENT_TOKENIZER=teacher: a data folder of their own,
// DATA_DIR/experiment_kd/teacher_tokenizer[_full_head], each prepared and collected once):
//   tok     the student's shape, drawn weights (what the teacher's tokenizer buys over projection)
//   tshape  the teacher's shape, drawn weights (the control for init)
//   init    the teacher's shape and weights, SubLN inserted, then ternary KD (BitDistill's start)
// (a start from the teacher needs its whole vocabulary: with the project's own teacher and a trimmed
// head, tshape and init take the teacher retrained with its full head, and their own traces from it).
// Every run is scored on the same held-out text (bits per byte do not depend on the tokenizer); top-1
// agreement and KL are over each tokenizer's own positions.
// With the project's own teacher, the teacher is also retrained with its full head (one seed) so that
// the trimmed head's cost is a line of its own.
// Each run is scored on the same held-out chunks as eval (bits per byte, top-1 agreement and KL to the
// teacher); arm differences are paired per seed and get a 95% t interval; a difference is called a
// difference only when its interval excludes zero. Finished runs and their scores are reused, so an
// interrupted experiment continues where it stopped. Writes REPORTS_DIR/experiment.json and .html.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bkd {
class Settings;
struct TrainOptions;

struct ExperimentArm {
  std::string name, what;
  std::function<void(TrainOptions&)> apply;
  // Settings the arm changes (its traces' and its student's); empty: none, the pipeline's traces (KD_DIR).
  std::function<std::map<std::string, std::string>(const Settings&)> changes;
  // The folder its traces are collected into (DATA_DIR/experiment_kd/<trace_set>), shared by arms that
  // change the same collection settings; with changes only.
  std::string trace_set;
  // The project's own teacher with a trimmed head is replaced by the one retrained with its full head
  // (CKPT_DIR/experiment/teacher_full_head), for the arm's traces and its start.
  bool full_head_teacher = false;
};

// The arms EXPERIMENT_ARMS names, in that order; UsageError for an unknown name or a repeat.
std::vector<ExperimentArm> experiment_arms(const std::string& list);

nlohmann::json run_experiment(const Settings& s);

}  // namespace bkd
