#include "core/teacher/draws.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace bkd {

double SeededUniform::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

uint64_t row_seed(uint64_t seed, uint64_t row) {
  SeededUniform mix(seed ^ (row * 0xD1B54A32D192ED03ull));
  mix.next();
  return static_cast<uint64_t>(mix.next() * 0x1.0p53) ^ row;
}

std::vector<std::pair<int32_t, int32_t>> draw_counts(const double* p, int64_t n, int draws, SeededUniform& rng) {
  if (draws < 1) throw Error("draw_counts: " + std::to_string(draws) + " draws");
  double total = 0;
  for (int64_t c = 0; c < n; ++c)
    if (p[c] > 0 && std::isfinite(p[c])) total += p[c];
  if (!(total > 0) || !std::isfinite(total)) throw Error("draw_counts: the distribution has no positive finite mass");
  std::vector<double> u(static_cast<size_t>(draws));
  for (double& v : u) v = rng.next() * total;
  std::sort(u.begin(), u.end());
  std::vector<std::pair<int32_t, int32_t>> out;
  // One pass over the classes: class c takes the uniforms in [cum before c, cum after c).
  double cum = 0;
  size_t next = 0;
  int64_t last_positive = -1;
  for (int64_t c = 0; c < n && next < u.size(); ++c) {
    if (!(p[c] > 0) || !std::isfinite(p[c])) continue;
    last_positive = c;
    cum += p[c];
    int32_t k = 0;
    while (next < u.size() && u[next] < cum) ++next, ++k;
    if (k > 0) out.emplace_back(int32_t(c), k);
  }
  // Uniforms past the accumulated sum (rounding in its last bits) belong to the last class with mass.
  if (next < u.size()) {
    if (last_positive < 0)
      for (int64_t c = n - 1; c >= 0 && last_positive < 0; --c)
        if (p[c] > 0 && std::isfinite(p[c])) last_positive = c;
    const int32_t k = int32_t(u.size() - next);
    if (!out.empty() && out.back().first == int32_t(last_positive)) out.back().second += k;
    else out.emplace_back(int32_t(last_positive), k);
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

}  // namespace bkd
