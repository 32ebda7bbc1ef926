// The experiment's intervals against hand-computed values.
#include "core/report/intervals.h"

#include <gtest/gtest.h>

#include <cmath>

namespace bkd {
namespace {

TEST(Intervals, StudentTIntervalOfThreeValues) {
  // {1, 2, 3}: mean 2, sample sd 1, half-width t(0.975, 2) / sqrt(3) = 4.303 / 1.7321 = 2.4843.
  const Interval i = mean_interval({1, 2, 3});
  EXPECT_DOUBLE_EQ(i.mean, 2.0);
  EXPECT_DOUBLE_EQ(i.sd, 1.0);
  EXPECT_NEAR(i.hi - i.mean, 4.303 / std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(i.mean - i.lo, 4.303 / std::sqrt(3.0), 1e-12);
  EXPECT_FALSE(i.excludes_zero());  // [-0.484, 4.484]
}

TEST(Intervals, ZeroInsideOrOutside) {
  EXPECT_FALSE(mean_interval({-1, 1, 0.5}).excludes_zero());
  EXPECT_TRUE(mean_interval({0.9, 1.0, 1.1}).excludes_zero());
  EXPECT_TRUE(mean_interval({-0.9, -1.0, -1.1}).excludes_zero());
  EXPECT_FALSE(mean_interval({5.0}).excludes_zero());  // one value: no interval, no claim
}

TEST(Intervals, PairedDifferenceRemovesWhatTheSeedsShare) {
  // Seeds move both arms together (+-1); the difference is 0.1 every time: a sure difference, although
  // the arms' own intervals overlap widely.
  const std::vector<double> a = {1.1, 2.1, 3.1}, b = {1.0, 2.0, 3.0};
  const Interval d = paired_difference(a, b);
  EXPECT_NEAR(d.mean, 0.1, 1e-12);
  EXPECT_NEAR(d.sd, 0.0, 1e-12);
  EXPECT_TRUE(d.excludes_zero());
  EXPECT_FALSE(mean_interval(a).lo > mean_interval(b).hi);
  EXPECT_THROW(paired_difference({1, 2}, {1}), std::exception);
}

TEST(Intervals, TQuantilesFromTheTableAndBeyond) {
  EXPECT_DOUBLE_EQ(t_quantile_975(1), 12.706);
  EXPECT_DOUBLE_EQ(t_quantile_975(30), 2.042);
  EXPECT_NEAR(t_quantile_975(60), 2.000, 2e-3);   // table value 2.000
  EXPECT_NEAR(t_quantile_975(120), 1.980, 2e-3);  // table value 1.980
  EXPECT_THROW(t_quantile_975(0), std::exception);
}

}  // namespace
}  // namespace bkd
