#include "services/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, EmbeddedDefaultParsesAndValidates) {
  absl::StatusOr<Config> config = LoadConfig("", {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->env.name, "grid_empty_5x5");
  EXPECT_EQ(config->learner.batch_length, config->replay.sequence_length);
}

// A key a config file leaves out takes the built-in default; that must be what the embedded
// default config (configs/default.yaml, what `make run` trains on) says, key for key.
TEST(ConfigTest, BuiltInDefaultsEqualTheEmbeddedDefaultConfig) {
  absl::StatusOr<Config> embedded = ParseConfig(DefaultConfigYaml(), "default.yaml");
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  Config built_in;
  std::vector<ConfigField> from_file = ConfigFields(&*embedded);
  std::vector<ConfigField> in_code = ConfigFields(&built_in);
  ASSERT_EQ(from_file.size(), in_code.size());
  std::vector<std::string> differ;
  const std::string a = ConfigToYaml(*embedded), b = ConfigToYaml(built_in);
  std::istringstream file_lines(a), code_lines(b);
  std::string file_line, code_line, section;
  while (std::getline(file_lines, file_line) && std::getline(code_lines, code_line)) {
    if (!file_line.empty() && file_line[0] != ' ') section = file_line;
    if (file_line != code_line) differ.push_back(section + file_line + " vs " + code_line);
  }
  EXPECT_THAT(differ, ::testing::IsEmpty())
      << "configs/default.yaml and the defaults in services/config.h differ";
  // An empty file is the embedded default.
  absl::StatusOr<Config> empty = ParseConfig("", "empty.yaml");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(ConfigToYaml(*empty), a);
}

TEST(ConfigTest, FileValuesOverrideDefaults) {
  absl::StatusOr<Config> config =
      ParseConfig("replay:\n  shards: 3\n  selector: prioritized\nenv:\n  grayscale: yes\n", "x.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->replay.shards, 3);
  EXPECT_EQ(config->replay.selector, "prioritized");
  EXPECT_TRUE(config->env.grayscale);
  EXPECT_EQ(config->replay.capacity_steps, Config().replay.capacity_steps);
}

TEST(ConfigTest, UnknownKeyNamesKeyFileAndLine) {
  absl::StatusOr<Config> config = ParseConfig("replay:\n  shards: 2\n  capasity: 5\n", "x.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      config.status().message(),
      "x.yaml:3: unknown config key \"replay.capasity\" (known keys in replay: shards, host, "
      "port, metrics_port, addresses, table, capacity_steps, max_actor_share, sequence_length, "
      "selector, "
      "priority_exponent, rewarded_share, recency_decay, samples_per_insert, limiter_tolerance, "
      "min_size_to_sample, data_dir, wal_fsync_interval_ms, checkpoint_interval_s, "
      "compression, max_message_mb, max_actor_id_bytes, max_streams, "
      "max_streams_per_client)");
}

TEST(ConfigTest, UnknownSectionListsSections) {
  absl::StatusOr<Config> config = ParseConfig("replya:\n  shards: 2\n", "x.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "x.yaml:1: unknown config section \"replya\" (known sections: run, replay, env, actor, "
            "learner, security)");
}

TEST(ConfigTest, WrongTypeNamesKeyAndValue) {
  absl::StatusOr<Config> config = ParseConfig("actor:\n  count: four\n", "x.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "x.yaml:2: config key \"actor.count\" expects an integer, got \"four\"");
  config = ParseConfig("env:\n  grayscale: maybe\n", "y.yaml");
  EXPECT_EQ(config.status().message(),
            "y.yaml:2: config key \"env.grayscale\" expects true or false, got \"maybe\"");
  config = ParseConfig("learner:\n  lr: fast\n", "z.yaml");
  EXPECT_EQ(config.status().message(),
            "z.yaml:2: config key \"learner.lr\" expects a number, got \"fast\"");
}

TEST(ConfigTest, OutOfRangeNamesKeyValueAndRange) {
  absl::StatusOr<Config> config = ParseConfig("replay:\n  shards: 0\n", "x.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "x.yaml:2: config key \"replay.shards\" = 0 is out of range [1, 64]");
  config = ParseConfig("learner:\n  lambda: 1.5\n", "x.yaml");
  EXPECT_EQ(config.status().message(),
            "x.yaml:2: config key \"learner.lambda\" = 1.5 is out of range [0, 1]");
}

TEST(ConfigTest, ChoiceListsAllowedValues) {
  absl::StatusOr<Config> config = ParseConfig("replay:\n  selector: fifo\n", "x.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "x.yaml:2: config key \"replay.selector\" = \"fifo\" is not one of: uniform, recency, "
            "prioritized");
}

TEST(ConfigTest, MalformedYamlIsReportedWithLine) {
  absl::StatusOr<Config> config = ParseConfig("replay:\n  shards: [1,\n", "x.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("x.yaml:"));
  EXPECT_THAT(config.status().message(), HasSubstr("invalid YAML"));
}

TEST(ConfigTest, OverridesApplyAndReportErrorsWordForWord) {
  Config config;
  ASSERT_TRUE(ApplyOverride("replay.shards=4", &config).ok());
  EXPECT_EQ(config.replay.shards, 4);
  ASSERT_TRUE(ApplyOverride("env.name = minatar_breakout", &config).ok());
  EXPECT_EQ(config.env.name, "minatar_breakout");
  EXPECT_EQ(ApplyOverride("replay.shards=0", &config).message(),
            "--set replay.shards=0: config key \"replay.shards\" = 0 is out of range [1, 64]");
  EXPECT_EQ(ApplyOverride("replay.shards=two", &config).message(),
            "--set replay.shards=two: config key \"replay.shards\" expects an integer, got \"two\"");
  EXPECT_THAT(std::string(ApplyOverride("replay.shardz=2", &config).message()),
              ::testing::StartsWith("--set replay.shardz=2: unknown config key \"replay.shardz\" "
                                    "(known keys in replay: shards, host, port,"));
  EXPECT_EQ(ApplyOverride("shards", &config).message(),
            "--set shards: expected section.key=value");
  EXPECT_EQ(config.replay.shards, 4) << "a rejected override must leave the config unchanged";
}

TEST(ConfigTest, CrossFieldValidation) {
  absl::StatusOr<Config> config =
      LoadConfig("", {"learner.batch_length=16", "replay.sequence_length=32"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "<embedded configs/default.yaml>: learner.batch_length (16) must equal "
            "replay.sequence_length (32)");

  // The default batch holds 16 x 32 posterior states to imagine from.
  config = LoadConfig("", {"learner.imagination_starts=513"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("learner.imagination_starts (513) is more than the "
                                           "batch's posterior states"),
            std::string::npos)
      << config.status();
  EXPECT_TRUE(LoadConfig("", {"learner.imagination_starts=512"}).ok());
}

TEST(ConfigTest, AnActorsShareMustHoldOneItem) {
  // Sequence length 32 and chunks of 32 steps: the share must hold 63 steps.
  absl::StatusOr<Config> config =
      LoadConfig("", {"replay.capacity_steps=1000", "replay.max_actor_share=0.062"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "<embedded configs/default.yaml>: replay.max_actor_share (0.062) of "
            "replay.capacity_steps (1000) is less than replay.sequence_length + "
            "actor.chunk_steps - 1 (63) steps: an actor that drops its oldest chunk to fit could "
            "be left without a sampleable window");
  EXPECT_TRUE(LoadConfig("", {"replay.capacity_steps=1000", "replay.max_actor_share=0.063"}).ok());
}

TEST(ConfigTest, LimiterToleranceMustFitAChunkAndABatch) {
  absl::StatusOr<Config> config = LoadConfig(
      "", {"replay.limiter_tolerance=100", "replay.samples_per_insert=16", "actor.chunk_steps=32"});
  ASSERT_TRUE(config.ok()) << "a shard alone may run with any tolerance";
  EXPECT_EQ(ValidateCluster(*config).message(),
            "replay.limiter_tolerance (100) must be at least actor.chunk_steps x "
            "replay.samples_per_insert (512) and learner.batch_size x learner.batch_length (512)");
  config = LoadConfig("", {"replay.limiter_tolerance=100", "replay.samples_per_insert=0"});
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(ValidateCluster(*config).ok()) << "without a ratio there is no limiter";
  EXPECT_TRUE(ValidateCluster(*LoadConfig("", {})).ok()) << "the default config";
}

// Replay context only the single-process trainer carries: it loads, and a cluster refuses it by
// name. A rewarded share both carry; out of [0, 1] it is refused.
TEST(ConfigTest, AClusterRefusesReplayContextAndTakesARewardedShare) {
  absl::StatusOr<Config> config = LoadConfig("", {"learner.replay_context=1"});
  ASSERT_TRUE(config.ok()) << config.status();
  const absl::Status status = ValidateCluster(*config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("learner.replay_context = 1 is not carried by the cluster yet"));
  EXPECT_EQ(LoadConfig("", {"replay.rewarded_share=1.5"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  config = LoadConfig("", {"replay.rewarded_share=0.25"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(ValidateCluster(*config).ok());
}

TEST(ConfigTest, AClusterOnOneMachineMustFitItsStreamsInOneClientsShare) {
  absl::StatusOr<Config> config = LoadConfig(
      "", {"actor.count=40", "actor.envs_per_actor=16", "replay.max_streams_per_client=512"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(ValidateCluster(*config).message(),
            "actor.count x actor.envs_per_actor (640) Insert streams would all come from this "
            "machine's one address, more than the 480 Insert streams "
            "replay.max_streams_per_client (512) lets one client hold; raise it (0 = no limit)");
  // The learner's Sample stream needs a place of its own beside the actors'.
  config = LoadConfig(
      "", {"actor.count=2", "actor.envs_per_actor=16", "replay.max_streams_per_client=32"});
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(ValidateCluster(*config).ok());
  config = LoadConfig(
      "", {"actor.count=2", "actor.envs_per_actor=15", "replay.max_streams_per_client=32"});
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(ValidateCluster(*config).ok());
  config = LoadConfig(
      "", {"actor.count=40", "actor.envs_per_actor=16", "replay.max_streams_per_client=0"});
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(ValidateCluster(*config).ok());
}

TEST(ConfigTest, InsertCallsLeavePlacesForTheLearnerAndReaders) {
  EXPECT_EQ(InsertStreamPlaces(1), 1);
  EXPECT_EQ(InsertStreamPlaces(2), 1);
  EXPECT_EQ(InsertStreamPlaces(16), 15);
  EXPECT_EQ(InsertStreamPlaces(32), 30);
  EXPECT_EQ(InsertStreamPlaces(1024), 960);
}

TEST(ConfigTest, LoopbackHosts) {
  for (const char* host : {"127.0.0.1", "127.5.0.9", "localhost", "LOCALHOST", "::1", "[::1]"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"", "0.0.0.0", "10.0.0.5", "learner", "::", "128.0.0.1", "127.0.0",
                           "localhost.example.com"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(ConfigTest, PlaintextOnANonLoopbackAddressNeedsInsecure) {
  // The cluster's processes check it (ValidateCluster); a tool that only reads a run's config
  // loads it anyway.
  auto cluster = [](std::vector<std::string> overrides) -> absl::Status {
    absl::StatusOr<Config> config = LoadConfig("", overrides);
    if (!config.ok()) return config.status();
    return ValidateCluster(*config);
  };
  for (const char* assignment :
       {"replay.host=0.0.0.0", "learner.host=learner", "replay.addresses=127.0.0.1:1,10.0.0.5:2"}) {
    EXPECT_TRUE(LoadConfig("", {assignment}).ok()) << assignment;
    absl::Status status = cluster({assignment});
    ASSERT_FALSE(status.ok()) << assignment;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("is not a loopback address, and without TLS"))
        << assignment;
    EXPECT_THAT(std::string(status.message()), HasSubstr("security.insecure: true"));
    EXPECT_TRUE(cluster({assignment, "security.insecure=true"}).ok()) << assignment;
    EXPECT_TRUE(cluster({assignment, "security.ca_file=/ca.pem"}).ok()) << assignment;
  }
  EXPECT_TRUE(cluster({"replay.addresses=[::1]:7100,localhost:7101"}).ok());
}

TEST(ConfigTest, TlsFilesThatBelongTogether) {
  absl::StatusOr<Config> config = LoadConfig("", {"security.cert_file=/c.pem"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("go together"));
  config = LoadConfig("", {"security.cert_file=/c.pem", "security.key_file=/k.pem"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("security.ca_file is not"));
  config = LoadConfig("", {"security.require_client_cert=true", "security.ca_file=/ca.pem"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("needs TLS"));
  EXPECT_TRUE(LoadConfig("", {"security.ca_file=/ca.pem", "security.cert_file=/c.pem",
                              "security.key_file=/k.pem", "security.require_client_cert=true"})
                  .ok());
}

TEST(ConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<Config> config = LoadConfig("/nonexistent/dreamfleet.yaml", {});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(config.status().message(), "cannot read config file \"/nonexistent/dreamfleet.yaml\"");
}

TEST(ConfigTest, ADirectoryIsNotAConfigFile) {
  const std::string dir = ::testing::TempDir();
  absl::StatusOr<Config> config = LoadConfig(dir, {});
  ASSERT_FALSE(config.ok()) << "a directory loaded as a config";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), ::testing::HasSubstr("is a directory"));
}

TEST(ConfigTest, PrintedYamlParsesBackToTheSameConfig) {
  absl::StatusOr<Config> config = LoadConfig("", {"replay.samples_per_insert=12.5",
                                                  "run.dir=/tmp/a \"quoted\" dir",
                                                  "learner.lr=3e-4"});
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string yaml = ConfigToYaml(*config, /*with_docs=*/true);
  absl::StatusOr<Config> back = ParseConfig(yaml, "printed");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << yaml;
  EXPECT_EQ(ConfigToYaml(*back), ConfigToYaml(*config));
  EXPECT_EQ(back->run.dir, "/tmp/a \"quoted\" dir");
  EXPECT_EQ(back->learner.lr, 3e-4);
}

// Every key in the table is documented in configs/README.md and every config we ship loads.
TEST(ConfigTest, EveryKeyIsDocumentedAndEveryShippedConfigLoads) {
  const char* source_dir = std::getenv("DREAMFLEET_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr);
  std::ifstream readme(std::string(source_dir) + "/configs/README.md");
  ASSERT_TRUE(readme.good());
  std::stringstream text;
  text << readme.rdbuf();
  Config config;
  for (const ConfigField& field : ConfigFields(&config)) {
    EXPECT_THAT(text.str(), HasSubstr("`" + field.key + "`")) << "undocumented key " << field.key;
  }
  // Every file in configs/ (so a new one cannot be forgotten here), each listed in the README.
  int shipped = 0;
  const std::string configs = std::string(source_dir) + "/configs";
  for (const auto& entry : std::filesystem::directory_iterator(configs)) {
    if (entry.path().extension() != ".yaml") continue;
    ++shipped;
    const std::string path = entry.path().string();
    absl::StatusOr<Config> loaded = LoadConfig(path, {});
    EXPECT_TRUE(loaded.ok()) << path << ": " << loaded.status();
    EXPECT_THAT(text.str(), HasSubstr("`" + entry.path().filename().string() + "`"))
        << path << " is not in the README's table of shipped configs";
  }
  EXPECT_GE(shipped, 7);  // default, debug, grid_empty_8x8, homebrew_nes, minatar, mario, pokemon
}

}  // namespace
}  // namespace dreamfleet::services
