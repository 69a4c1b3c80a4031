// EnsureThreadEnvironment re-executes the program with our thread-pool defaults, keeping any the
// user set. The test runs this binary as a child ("--print-thread-env"), which calls it as a
// LibTorch binary's main does and prints the environment the re-executed program sees.
#include "services/thread_env.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace dreamfleet::services {
namespace {

constexpr const char* kPrintFlag = "--print-thread-env";
constexpr const char* kVars[] = {"OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT",
                                 "OMP_WAIT_POLICY", "DREAMFLEET_OPENBLAS_THREADS_DEFAULTED",
                                 "DREAMFLEET_THREAD_ENV_SET"};

std::string SelfPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// Runs this binary as a child with `env_prefix` (assignments for env(1)) after clearing our
// variables, and returns what it printed.
std::string RunChild(const std::string& env_prefix) {
  std::string cmd = "env";
  for (const char* var : kVars) cmd += std::string(" -u ") + var;
  cmd += " " + env_prefix + " '" + SelfPath() + "' " + kPrintFlag;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) out += buf;
  int status = pclose(pipe);
  if (status != 0) out += "exit status " + std::to_string(status);
  return out;
}

TEST(ThreadEnvTest, SetsOurDefaultsWhenTheUserSetNone) {
  std::string out = RunChild("");
  EXPECT_NE(out.find("OPENBLAS_NUM_THREADS=1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("OPENBLAS_THREAD_TIMEOUT=4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("OMP_WAIT_POLICY=PASSIVE\n"), std::string::npos) << out;
  EXPECT_NE(out.find("DREAMFLEET_OPENBLAS_THREADS_DEFAULTED=1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("DREAMFLEET_THREAD_ENV_SET=1\n"), std::string::npos) << out;
}

TEST(ThreadEnvTest, KeepsWhatTheUserSet) {
  std::string out =
      RunChild("OPENBLAS_NUM_THREADS=3 OPENBLAS_THREAD_TIMEOUT=20 OMP_WAIT_POLICY=ACTIVE");
  EXPECT_NE(out.find("OPENBLAS_NUM_THREADS=3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("OPENBLAS_THREAD_TIMEOUT=20\n"), std::string::npos) << out;
  EXPECT_NE(out.find("OMP_WAIT_POLICY=ACTIVE\n"), std::string::npos) << out;
  // Not marked as our default, so a learner's SetComputeThreads leaves the 3 alone.
  EXPECT_NE(out.find("DREAMFLEET_OPENBLAS_THREADS_DEFAULTED=(unset)\n"), std::string::npos) << out;
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
