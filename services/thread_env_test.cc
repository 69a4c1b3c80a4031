// EnsureThreadEnvironment re-executes the program with our thread-pool defaults, keeping any the
// user set. The test starts this binary as a child ("--print-thread-env"), which calls it as a
// LibTorch binary's main does and prints the environment the re-executed program sees.
#include "services/thread_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "tests/test_process.h"

namespace dreamfleet::services {
namespace {

constexpr const char* kPrintFlag = "--print-thread-env";
constexpr const char* kVars[] = {"OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT",
                                 "OMP_WAIT_POLICY", "DREAMFLEET_OPENBLAS_THREADS_DEFAULTED",
                                 "DREAMFLEET_THREAD_ENV_SET"};

// Starts the child with our variables cleared except those in `user_env` (which the child
// inherits as a user's shell would pass them) and returns each variable's printed value.
std::map<std::string, std::string> ChildEnvironment(
    const std::map<std::string, std::string>& user_env) {
  for (const char* var : kVars) unsetenv(var);
  for (const auto& [var, value] : user_env) setenv(var.c_str(), value.c_str(), 1);
  absl::StatusOr<std::unique_ptr<testing::TestProcess>> child =
      testing::TestProcess::Start({testing::BinaryPath("thread_env_test"), kPrintFlag});
  for (const auto& [var, value] : user_env) unsetenv(var.c_str());
  std::map<std::string, std::string> seen;
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return seen;
  for (const char* var : kVars) {  // printed in this order
    absl::StatusOr<std::string> value = (*child)->WaitForLine(std::string(var) + "=");
    EXPECT_TRUE(value.ok()) << value.status();
    if (value.ok()) seen[var] = *value;
  }
  absl::StatusOr<int> exit_code = (*child)->Wait();
  EXPECT_TRUE(exit_code.ok() && *exit_code == 0) << exit_code.status();
  return seen;
}

TEST(ThreadEnvTest, SetsOurDefaultsWhenTheUserSetNone) {
  EXPECT_THAT(ChildEnvironment({}),
              ::testing::ContainerEq(std::map<std::string, std::string>{
                  {"OPENBLAS_NUM_THREADS", "1"},
                  {"OPENBLAS_THREAD_TIMEOUT", "4"},
                  {"OMP_WAIT_POLICY", "PASSIVE"},
                  {"DREAMFLEET_OPENBLAS_THREADS_DEFAULTED", "1"},
                  {"DREAMFLEET_THREAD_ENV_SET", "1"}}));
}

TEST(ThreadEnvTest, KeepsWhatTheUserSet) {
  EXPECT_THAT(ChildEnvironment({{"OPENBLAS_NUM_THREADS", "3"},
                                {"OPENBLAS_THREAD_TIMEOUT", "20"},
                                {"OMP_WAIT_POLICY", "ACTIVE"}}),
              ::testing::ContainerEq(std::map<std::string, std::string>{
                  {"OPENBLAS_NUM_THREADS", "3"},
                  {"OPENBLAS_THREAD_TIMEOUT", "20"},
                  {"OMP_WAIT_POLICY", "ACTIVE"},
                  // Not marked as our default, so a learner's SetComputeThreads leaves the 3 alone.
                  {"DREAMFLEET_OPENBLAS_THREADS_DEFAULTED", "(unset)"},
                  {"DREAMFLEET_THREAD_ENV_SET", "1"}}));
}

}  // namespace
}  // namespace dreamfleet::services

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], dreamfleet::services::kPrintFlag) == 0) {
    dreamfleet::services::EnsureThreadEnvironment(argc, argv);
    for (const char* var : dreamfleet::services::kVars) {
      const char* value = getenv(var);
      printf("%s=%s\n", var, value != nullptr ? value : "(unset)");
    }
    return 0;
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
