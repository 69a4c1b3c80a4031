#include "services/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

absl::Status FailIf(bool fail) {
  return fail ? absl::InvalidArgumentError("asked to fail") : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(int value) {
  if (value < 0) return absl::OutOfRangeError("negative");
  return std::make_unique<int>(value);
}

absl::Status Chain(bool fail, int* steps) {
  RETURN_IF_ERROR(FailIf(fail));
  ++*steps;
  RETURN_IF_ERROR(MakeInt(fail ? -1 : 1));  // a StatusOr's status
  ++*steps;
  return absl::OkStatus();
}

absl::StatusOr<int> Sum(int a, int b) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> x, MakeInt(a));
  ASSIGN_OR_RETURN(auto y, MakeInt(b));  // two on one function: distinct temporaries
  int z = 0;
  ASSIGN_OR_RETURN(z, absl::StatusOr<int>(*x + *y));  // into an existing variable
  return z;
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtTheFirstError) {
  int steps = 0;
  EXPECT_TRUE(Chain(false, &steps).ok());
  EXPECT_EQ(steps, 2);
  steps = 0;
  absl::Status status = Chain(true, &steps);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_EQ(steps, 0);
}

TEST(StatusMacrosTest, AssignOrReturnMovesTheValueOrReturnsTheError) {
  absl::StatusOr<int> ok = Sum(2, 3);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, 5);
  absl::StatusOr<int> bad = Sum(2, -3);
  EXPECT_TRUE(absl::IsOutOfRange(bad.status())) << bad.status();
  EXPECT_EQ(bad.status().message(), "negative");
}

}  // namespace
}  // namespace dreamfleet::services
