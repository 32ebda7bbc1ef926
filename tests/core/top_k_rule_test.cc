// One rule for K against a provider's limit (core/teacher/provider.h): stages ask for
// min(TOP_K, the provider's max_top_k), and record both.
#include <gtest/gtest.h>

#include "core/teacher/provider.h"

namespace bkd {
namespace {

TEST(TopKRule, AsksForTheSmallerOfTopKAndTheProvidersLimit) {
  Capabilities caps;
  caps.logprobs = true;
  caps.max_top_k = 5;
  EXPECT_EQ(top_k_within_limit(caps, 20, "test/model"), 5);
  EXPECT_EQ(top_k_within_limit(caps, 5, "test/model"), 5);
  EXPECT_EQ(top_k_within_limit(caps, 3, "test/model"), 3);
  caps.logprobs = false;  // no alternatives at all
  EXPECT_EQ(top_k_within_limit(caps, 20, "test/model"), 0);
}

}  // namespace
}  // namespace bkd
