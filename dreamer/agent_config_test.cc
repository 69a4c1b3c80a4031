// AgentConfig: presets match the official sizes; serialisation round-trips; bad keys are named.
#include "dreamer/agent_config.h"

#include <gtest/gtest.h>

#include "services/config.h"

namespace dreamfleet::dreamer {
namespace {

TEST(AgentConfigTest, PresetsMatchOfficialSizes) {
  AgentConfig c;
  ASSERT_TRUE(ApplyPreset("12m", &c).ok());
  EXPECT_EQ(c.deter, 2048);
  EXPECT_EQ(c.hidden, 256);
  EXPECT_EQ(c.classes, 16);
  EXPECT_EQ(c.depth, 16);
  EXPECT_EQ(c.units, 256);
  ASSERT_TRUE(ApplyPreset("1m", &c).ok());
  EXPECT_EQ(c.deter, 512);
  EXPECT_EQ(c.classes, 4);
  ASSERT_TRUE(ApplyPreset("50m", &c).ok());
  EXPECT_EQ(c.deter, 4096);
  EXPECT_EQ(c.classes, 32);
  auto s = ApplyPreset("7m", &c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("7m"), std::string::npos);
}

TEST(AgentConfigTest, UnitsAndHiddenWidenThePresetOnlyWhenSet) {
  envs::EnvSpec spec;
  spec.vector_size = 100;
  spec.num_actions = 3;
  absl::StatusOr<services::Config> config =
      services::LoadConfig("", {"learner.preset=1m", "learner.units=128"});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<AgentConfig> agent = AgentConfigFromConfig(*config, spec);
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ(agent->units, 128);
  EXPECT_EQ(agent->hidden, 64);  // the preset's
  EXPECT_EQ(agent->deter, 512);
  ASSERT_TRUE(services::ApplyOverride("learner.hidden=96", &*config).ok());
  ASSERT_TRUE(services::ApplyOverride("learner.units=0", &*config).ok());
  agent = AgentConfigFromConfig(*config, spec);
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ(agent->units, 64);  // 0 = the preset's again
  EXPECT_EQ(agent->hidden, 96);
  // A negative width is refused with the key's name.
  absl::Status bad = services::ApplyOverride("learner.units=-1", &*config);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("learner.units"), std::string::npos) << bad;
}

TEST(AgentConfigTest, VectorBalanceReachesTheAgentOnlyWithTheBinaryLossOnASquareGrid) {
  envs::EnvSpec spec;
  spec.vector_size = 10 * 10 * 7;  // MinAtar Freeway's grid
  spec.vector_grid_channels = 7;
  spec.num_actions = 3;
  absl::StatusOr<services::Config> config = services::LoadConfig(
      "", {"learner.preset=1m", "learner.vector_loss=binary", "learner.vector_balance=true"});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<AgentConfig> agent = AgentConfigFromConfig(*config, spec);
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_TRUE(agent->vector_balance);
  // 699 entries are no grid of 7-channel cells; 7 x 7 cells of 7 channels would be.
  spec.vector_size = 699;
  agent = AgentConfigFromConfig(*config, spec);
  EXPECT_EQ(agent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(agent.status().message().find("learner.vector_balance needs"), std::string::npos)
      << agent.status();
  EXPECT_NE(agent.status().message().find("no square grid vector"), std::string::npos)
      << agent.status();
}

TEST(AgentConfigTest, StochAndClassesChangeThePresetsLatentOnlyWhenSet) {
  envs::EnvSpec spec;
  spec.vector_size = 100;
  spec.num_actions = 3;
  absl::StatusOr<services::Config> config =
      services::LoadConfig("", {"learner.preset=1m", "learner.classes=16"});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<AgentConfig> agent = AgentConfigFromConfig(*config, spec);
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ(agent->classes, 16);
  EXPECT_EQ(agent->stoch, 32);  // the preset's
  EXPECT_EQ(agent->feat_size(), 512 + 32 * 16);
  ASSERT_TRUE(services::ApplyOverride("learner.stoch=48", &*config).ok());
  ASSERT_TRUE(services::ApplyOverride("learner.classes=0", &*config).ok());
  agent = AgentConfigFromConfig(*config, spec);
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ(agent->stoch, 48);
  EXPECT_EQ(agent->classes, 4);  // 0 = the preset's again
  ASSERT_TRUE(services::ApplyOverride("learner.classes=1", &*config).ok());
  agent = AgentConfigFromConfig(*config, spec);
  EXPECT_EQ(agent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(agent.status().message().find("learner.classes"), std::string::npos) << agent.status();
  for (const char* bad_override : {"learner.stoch=-1", "learner.classes=300"}) {
    absl::Status bad = services::ApplyOverride(bad_override, &*config);
    EXPECT_FALSE(bad.ok()) << bad_override;
    const std::string key =
        std::string(bad_override).substr(0, std::string(bad_override).find('='));
    EXPECT_NE(bad.message().find(key), std::string::npos) << bad;
  }
}

TEST(AgentConfigTest, SerializeParseRoundTrip) {
  AgentConfig c;
  ASSERT_TRUE(ApplyPreset("25m", &c).ok());
  c.num_actions = 7;
  c.lr = 1.5e-4f;
  c.cnn_mults = {1, 2, 3};
  c.repval_grad = false;
  c.vector_size = 10 * 10 * 4;
  c.vector_grid_channels = 4;
  c.vector_encoder = "grid";
  c.vector_loss = "binary";
  auto parsed = AgentConfig::Parse(c.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Serialize(), c.Serialize());
  EXPECT_EQ(parsed->vector_encoder, "grid");
  EXPECT_EQ(parsed->vector_loss, "binary");
  EXPECT_EQ(parsed->vector_grid_side(), 10);
  auto bad = AgentConfig::Parse("deter=12\nbogus_key=3\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bogus_key"), std::string::npos);
}

TEST(AgentConfigTest, ValidateNamesTheProblem) {
  AgentConfig c;
  EXPECT_NE(c.Validate().message().find("num_actions"), std::string::npos);
  c.num_actions = 3;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
  c.deter = 100;
  EXPECT_NE(c.Validate().message().find("blocks"), std::string::npos);
  c.deter = AgentConfig().deter;
  c.vector_loss = "gaussian";
  EXPECT_NE(c.Validate().message().find("vector_loss must be symlog_mse or binary, got gaussian"),
            std::string::npos)
      << c.Validate();
}

TEST(AgentConfigTest, GridEncoderNeedsASquareGridOfCells) {
  AgentConfig c;
  c.num_actions = 3;
  c.image_channels = 0;
  c.vector_size = 10 * 10 * 4;
  c.vector_encoder = "grid";
  // A plain vector (no cells) cannot be convolved.
  absl::Status plain = c.Validate();
  EXPECT_TRUE(absl::IsInvalidArgument(plain)) << plain;
  EXPECT_NE(plain.message().find("plain vector"), std::string::npos) << plain;
  EXPECT_EQ(c.vector_grid_side(), 0);
  c.vector_grid_channels = 4;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
  EXPECT_EQ(c.vector_grid_side(), 10);
  // 400 entries of 3-channel cells, or 100 cells that are not a square, are refused by name.
  c.vector_grid_channels = 3;
  EXPECT_NE(c.Validate().message().find("3-channel cells"), std::string::npos) << c.Validate();
  c.vector_grid_channels = 8;  // 50 cells
  EXPECT_NE(c.Validate().message().find("not a square"), std::string::npos) << c.Validate();
  c.vector_grid_channels = 4;
  c.vector_encoder = "conv";
  EXPECT_NE(c.Validate().message().find("vector_encoder must be mlp or grid"), std::string::npos)
      << c.Validate();
  // Without a vector observation the setting has nothing to encode and is harmless.
  c.vector_encoder = "grid";
  c.vector_size = 0;
  c.image_channels = 3;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
}

TEST(AgentConfigTest, SetChangesOneFieldAndNamesBadInput) {
  AgentConfig c;
  ASSERT_TRUE(c.Set("ac_lr", "1e-4").ok());
  EXPECT_FLOAT_EQ(c.ac_lr, 1e-4f);
  ASSERT_TRUE(c.Set("scale_rec", "30").ok());
  EXPECT_FLOAT_EQ(c.scale_rec, 30.0f);
  EXPECT_EQ(c.Set("no_such_field", "1").message(), "unknown agent config key \"no_such_field\"");
  EXPECT_EQ(c.Set("deter", "big").message(), "bad value \"big\" for agent config key \"deter\"");
  EXPECT_EQ(c.deter, AgentConfig().deter);
}

}  // namespace
}  // namespace dreamfleet::dreamer
