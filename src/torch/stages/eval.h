#pragma once
// The `eval` stage (seed M4): held-out quality of the teacher and the students in bits per byte,
// agreement with the teacher on held-out KD rows, decode speed (the student through the packed
// engine, the local teacher through LibTorch with its KV cache, timed the same way), memory, QEI and
// QEIspeed (measured quality, and the seed's placeholder), the CE-only ablation and the cost of the
// A8->A4 flip -> RunLayout::eval_report() and the HTML page.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace bkd {
class Settings;

// The settings eval reads, read once.
struct EvalSettings {
  int64_t seq_len = 0, batch = 0, eval_tokens = 0, prompt_tokens = 0, max_new_tokens = 0;
  int threads = 0;
  bool local_teacher = true;
  std::string teacher_provider;
  double teacher_params = 0, teacher_bytes_per_param = 0;
  double placeholder_student = 0, placeholder_teacher = 0;
  static EvalSettings from(const Settings& s);
};

// Runs every step and writes the report; returns it.
nlohmann::json run_eval(const Settings& s);

}  // namespace bkd
