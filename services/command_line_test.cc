#include "services/command_line.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

using ::testing::HasSubstr;

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  return argv;
}

TEST(CommandLineTest, ParsesEveryFlagForm) {
  std::string name = "x";
  int64_t count = 1;
  double rate = 0;
  bool json = false;
  CommandLine command_line("prog [flags]", "A test program.");
  command_line.AddString("name", &name, "a name");
  command_line.AddInt("count", &count, "a count");
  command_line.AddDouble("rate", &rate, "a rate");
  command_line.AddBool("json", &json, "json output");
  command_line.AddConfigFlags();
  std::vector<std::string> args = {"prog", "--name", "y", "--count=7", "--rate", "0.5", "--json",
                                   "--set", "replay.shards=2", "--set=actor.count=3"};
  auto argv = Argv(args);
  ASSERT_TRUE(command_line.Parse(argv.size(), argv.data()).ok());
  EXPECT_EQ(name, "y");
  EXPECT_EQ(count, 7);
  EXPECT_EQ(rate, 0.5);
  EXPECT_TRUE(json);
  absl::StatusOr<Config> config = command_line.LoadConfig();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->replay.shards, 2);
  EXPECT_EQ(config->actor.count, 3);
}

TEST(CommandLineTest, UnknownFlagAndBadValuesAreErrors) {
  int64_t count = 1;
  CommandLine command_line("prog", "");
  command_line.AddInt("count", &count, "a count");
  std::vector<std::string> args = {"prog", "--cuont", "3"};
  auto argv = Argv(args);
  EXPECT_EQ(command_line.Parse(argv.size(), argv.data()).message(),
            "unknown flag --cuont (see --help)");
  std::vector<std::string> args2 = {"prog", "--count", "three"};
  auto argv2 = Argv(args2);
  EXPECT_EQ(command_line.Parse(argv2.size(), argv2.data()).message(),
            "flag --count expects an integer, got \"three\"");
  std::vector<std::string> args3 = {"prog", "--count"};
  auto argv3 = Argv(args3);
  EXPECT_EQ(command_line.Parse(argv3.size(), argv3.data()).message(), "flag --count needs a value");
}

TEST(CommandLineTest, HelpListsFlagsWithDefaults) {
  int64_t count = 5;
  CommandLine command_line("prog [flags]", "Does things.");
  command_line.AddInt("count", &count, "How many.");
  command_line.AddConfigFlags();
  std::vector<std::string> args = {"prog", "--help"};
  auto argv = Argv(args);
  ASSERT_TRUE(command_line.Parse(argv.size(), argv.data()).ok());
  EXPECT_TRUE(command_line.help_requested());
  const std::string help = command_line.Help();
  EXPECT_THAT(help, HasSubstr("Usage: prog [flags]"));
  EXPECT_THAT(help, HasSubstr("--count VALUE"));
  EXPECT_THAT(help, HasSubstr("[default: 5]"));
  EXPECT_THAT(help, HasSubstr("--config VALUE"));
  EXPECT_THAT(help, HasSubstr("--set VALUE..."));
}

TEST(CommandLineTest, PositionalArgumentsOnlyWhenAllowed) {
  CommandLine command_line("prog", "");
  std::vector<std::string> args = {"prog", "info", "extra"};
  auto argv = Argv(args);
  EXPECT_EQ(command_line.Parse(argv.size(), argv.data()).message(), "unexpected argument \"info\"");
  CommandLine positional("prog", "");
  ASSERT_TRUE(positional.Parse(argv.size(), argv.data(), 1, true).ok());
  EXPECT_EQ(positional.positional(), (std::vector<std::string>{"info", "extra"}));
}

TEST(CommandLineTest, LoadConfigOrExitNamesTheErrorAndReturnsTwo) {
  CommandLine command_line("prog", "");
  command_line.AddConfigFlags();
  std::vector<std::string> args = {"prog", "--set", "actor.count=2"};
  auto argv = Argv(args);
  ASSERT_TRUE(command_line.Parse(argv.size(), argv.data()).ok());
  int exit_code = -1;
  std::optional<Config> config = LoadConfigOrExit(command_line, "prog", true, &exit_code);
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->actor.count, 2);
  EXPECT_EQ(exit_code, -1);

  // A key error, then a whole-cluster error that only validate_cluster catches.
  CommandLine bad_key("prog", "");
  bad_key.AddConfigFlags();
  std::vector<std::string> args2 = {"prog", "--set", "replay.shards=0"};
  auto argv2 = Argv(args2);
  ASSERT_TRUE(bad_key.Parse(argv2.size(), argv2.data()).ok());
  testing::internal::CaptureStderr();
  EXPECT_FALSE(LoadConfigOrExit(bad_key, "prog", false, &exit_code).has_value());
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("prog: --set replay.shards=0"));
  EXPECT_EQ(exit_code, 2);

  CommandLine bad_cluster("prog", "");
  bad_cluster.AddConfigFlags();
  std::vector<std::string> args3 = {"prog", "--set", "replay.limiter_tolerance=1"};
  auto argv3 = Argv(args3);
  ASSERT_TRUE(bad_cluster.Parse(argv3.size(), argv3.data()).ok());
  exit_code = -1;
  EXPECT_TRUE(LoadConfigOrExit(bad_cluster, "prog", false, &exit_code).has_value());
  testing::internal::CaptureStderr();
  EXPECT_FALSE(LoadConfigOrExit(bad_cluster, "prog", true, &exit_code).has_value());
  EXPECT_THAT(testing::internal::GetCapturedStderr(),
              HasSubstr("prog: replay.limiter_tolerance (1) must be at least"));
  EXPECT_EQ(exit_code, 2);
}

}  // namespace
}  // namespace dreamfleet::services
