// Tests of atomic checkpoints: full round trip of modules, optimiser state,
// counters, extra tensors and config; torn .tmp directories are ignored;
// corruption yields errors that name the file.
#include "learner/checkpoint.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "learner/laprop.h"
#include "tests/test_process.h"

namespace dreamfleet::learner {
namespace {

namespace fs = std::filesystem;

// A temp dir for one test's checkpoints, removed afterwards.
class TempDir : public dreamfleet::testing::ScopedTempDir {
 public:
  TempDir() : ScopedTempDir("dreamfleet_ckpt_") { EXPECT_TRUE(made()) << path(); }
};

struct Net : torch::nn::Module {
  Net() {
    fc = register_module("fc", torch::nn::Linear(3, 4));
    norm = register_module("norm", torch::nn::BatchNorm1d(4));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm->forward(fc->forward(x)); }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};

void TrainStep(Net& net, LaProp& opt, const torch::Tensor& x) {
  opt.zero_grad();
  net.forward(x).pow(2).mean().backward();
  opt.step();
}

void ExpectSameModule(const torch::nn::Module& a, const torch::nn::Module& b) {
  auto pa = a.named_parameters();
  auto pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
  auto ba = a.named_buffers();
  auto bb = b.named_buffers();
  ASSERT_EQ(ba.size(), bb.size());
  for (const auto& item : ba) {
    EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
  }
}

CheckpointContents Contents(const Net& net, const LaProp& opt, int64_t updates) {
  CheckpointContents contents;
  contents.modules["world_model"] = &net;
  contents.optimizers["world_model"] = &opt;
  contents.counters = {{"updates", updates}, {"env_steps", 1234567890123LL}, {"neg", -5}};
  contents.tensors = {{"retnorm/low", torch::tensor(1.5f)},
                      {"retnorm/updates", torch::tensor(int64_t{7})},
                      {"matrix", torch::arange(6, torch::kDouble).reshape({2, 3})}};
  contents.config_text = "learner:\n  lr: 4e-5  # comment\n";
  return contents;
}

void FlipByte(const std::string& path, size_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x5a));
}

TEST(CheckpointTest, RoundTripRestoresEverythingAndResumesBitForBit) {
  TempDir dir;
  torch::manual_seed(0);
  Net net;
  LaProp opt(net.parameters(), LaPropOptions(1e-2).warmup_steps(2));
  std::vector<torch::Tensor> inputs;
  for (int i = 0; i < 6; ++i) inputs.push_back(torch::randn({5, 3}));
  for (int i = 0; i < 3; ++i) TrainStep(net, opt, inputs[i]);

  CheckpointContents contents = Contents(net, opt, 3);
  ASSERT_TRUE(WriteCheckpoint(dir.path(), 3, contents).ok());
  EXPECT_TRUE(fs::is_directory(fs::path(dir.path()) / "ckpt-3"));
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "ckpt-3.tmp"));

  absl::StatusOr<LoadedCheckpoint> loaded = LoadLatestCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->step(), 3);
  EXPECT_EQ(loaded->counters(), contents.counters);
  EXPECT_EQ(loaded->config_text(), contents.config_text);
  ASSERT_EQ(loaded->tensors().size(), contents.tensors.size());
  for (const auto& [name, tensor] : contents.tensors) {
    ASSERT_EQ(loaded->tensors().count(name), 1u) << name;
    EXPECT_EQ(loaded->tensors().at(name).scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(loaded->tensors().at(name), tensor)) << name;
  }

  torch::manual_seed(99);
  Net fresh;
  LaProp fresh_opt(fresh.parameters(), LaPropOptions(0.5));
  ASSERT_TRUE(loaded->RestoreModule("world_model", fresh).ok());
  ExpectSameModule(net, fresh);
  absl::Status status = loaded->RestoreOptimizer("world_model", fresh_opt);
  ASSERT_TRUE(status.ok()) << status;
  for (int i = 3; i < 6; ++i) {
    TrainStep(net, opt, inputs[i]);
    TrainStep(fresh, fresh_opt, inputs[i]);
  }
  ExpectSameModule(net, fresh);
}

TEST(CheckpointTest, TornTmpDirectoryIsIgnoredAndReplaced) {
  TempDir dir;
  Net net;
  LaProp opt(net.parameters());
  ASSERT_TRUE(WriteCheckpoint(dir.path(), 10, Contents(net, opt, 10)).ok());
  // A crash while writing step 20: partial tmp dir, latest still says ckpt-10.
  fs::path torn = fs::path(dir.path()) / "ckpt-20.tmp";
  fs::create_directory(torn);
  std::ofstream(torn / "module-world_model.pt") << "half a file";
  absl::StatusOr<LoadedCheckpoint> loaded = LoadLatestCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->step(), 10);
  // Even without the latest pointer the torn directory is not a checkpoint.
  fs::remove(fs::path(dir.path()) / "latest");
  loaded = LoadLatestCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->step(), 10);
  EXPECT_EQ(*ListCheckpoints(dir.path()), (std::vector<int64_t>{10}));
  // Retrying step 20 replaces the torn directory.
  ASSERT_TRUE(WriteCheckpoint(dir.path(), 20, Contents(net, opt, 20)).ok());
  EXPECT_FALSE(fs::exists(torn));
  loaded = LoadLatestCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->step(), 20);
  EXPECT_EQ(loaded->counters().at("updates"), 20);
}

TEST(CheckpointTest, CorruptedFileGivesAnErrorNamingIt) {
  TempDir dir;
  Net net;
  LaProp opt(net.parameters());
  ASSERT_TRUE(WriteCheckpoint(dir.path(), 5, Contents(net, opt, 5)).ok());
  const std::string file = (fs::path(dir.path()) / "ckpt-5" / "module-world_model.pt").string();
  FlipByte(file, fs::file_size(file) / 2);
  absl::StatusOr<LoadedCheckpoint> loaded = LoadLatestCheckpoint(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find(file), std::string::npos) << loaded.status();
  EXPECT_NE(loaded.status().message().find("corrupted"), std::string::npos) << loaded.status();
}

TEST(CheckpointTest, TruncatedOrMissingFilesGiveClearErrors) {
  TempDir dir;
  Net net;
  LaProp opt(net.parameters());
  ASSERT_TRUE(WriteCheckpoint(dir.path(), 5, Contents(net, opt, 5)).ok());
  const fs::path ckpt = fs::path(dir.path()) / "ckpt-5";
  fs::resize_file(ckpt / "optimizer-world_model.pt", 10);
  absl::StatusOr<LoadedCheckpoint> loaded = LoadCheckpoint(ckpt.string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("optimizer-world_model.pt"), std::string::npos)
      << loaded.status();
  fs::remove(ckpt / "MANIFEST");
  loaded = LoadCheckpoint(ckpt.string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("MANIFEST"), std::string::npos) << loaded.status();
  // latest pointing at a vanished checkpoint.
  fs::remove_all(ckpt);
  loaded = LoadLatestCheckpoint(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("ckpt-5"), std::string::npos) << loaded.status();
}

TEST(CheckpointTest, RestoreRejectsMismatchedModelsAndOptimizers) {
  TempDir dir;
  Net net;
  LaProp opt(net.parameters());  // one parameter group
  TrainStep(net, opt, torch::randn({5, 3}));
  ASSERT_TRUE(WriteCheckpoint(dir.path(), 1, Contents(net, opt, 1)).ok());
  absl::StatusOr<LoadedCheckpoint> loaded = LoadLatestCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();

  torch::nn::Linear other(3, 5);
  absl::Status status = loaded->RestoreModule("world_model", *other);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(loaded->RestoreModule("actor", net).code(), absl::StatusCode::kNotFound);

  torch::Tensor lone = torch::zeros({2}, torch::requires_grad());
  LaProp wrong({lone});
  status = loaded->RestoreOptimizer("world_model", wrong);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("optimizer-world_model.pt"), std::string::npos) << status;

  // Checkpoints written before the optimiser was split into a world-model group and an
  // actor-critic group hold one parameter group: restoring one into a two-group optimiser over
  // the same parameters is an error naming the file and the cause, not a crash or a silently
  // wrong learning rate.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(net.fc->parameters());
  groups.emplace_back(net.norm->parameters());
  LaProp two_groups(std::move(groups));
  status = loaded->RestoreOptimizer("world_model", two_groups);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("optimizer-world_model.pt"), std::string::npos) << status;
  EXPECT_NE(status.message().find("parameter groups"), std::string::npos) << status;
}

TEST(CheckpointTest, KeepsOnlyTheLastCheckpointsAndRefusesToOverwrite) {
  TempDir dir;
  Net net;
  LaProp opt(net.parameters());
  CheckpointOptions options;
  options.keep_last = 2;
  for (int64_t step : {1, 2, 3, 4}) {
    ASSERT_TRUE(WriteCheckpoint(dir.path(), step, Contents(net, opt, step), options).ok());
  }
  EXPECT_EQ(*ListCheckpoints(dir.path()), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(WriteCheckpoint(dir.path(), 4, Contents(net, opt, 4)).code(),
            absl::StatusCode::kAlreadyExists);
  absl::StatusOr<LoadedCheckpoint> loaded = LoadLatestCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->step(), 4);
}

TEST(CheckpointTest, EmptyOrMissingDirectoryIsNotFound) {
  TempDir dir;
  EXPECT_EQ(LoadLatestCheckpoint(dir.path()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadLatestCheckpoint(dir.path() + "/nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(CheckpointTest, RejectsUnsafeNames) {
  TempDir dir;
  Net net;
  CheckpointContents contents;
  contents.modules["../evil"] = &net;
  EXPECT_EQ(WriteCheckpoint(dir.path(), 1, contents).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ListCheckpoints(dir.path())->empty());
}

TEST(CheckpointTest, RemoveCheckpointsTakesOnlyCheckpoints) {
  TempDir dir;
  const fs::path d = dir.path();
  for (const char* sub : {"ckpt-3", "ckpt-4.tmp", "ckpt-notes"}) fs::create_directories(d / sub);
  for (const char* file : {"latest", "latest.tmp", "notes.txt"}) std::ofstream(d / file) << "x";
  ASSERT_TRUE(RemoveCheckpoints(d.string()).ok());
  EXPECT_FALSE(fs::exists(d / "ckpt-3"));
  EXPECT_FALSE(fs::exists(d / "ckpt-4.tmp"));
  EXPECT_FALSE(fs::exists(d / "latest"));
  EXPECT_FALSE(fs::exists(d / "latest.tmp"));
  EXPECT_TRUE(fs::exists(d / "ckpt-notes"));  // not a checkpoint name
  EXPECT_TRUE(fs::exists(d / "notes.txt"));
  EXPECT_TRUE(RemoveCheckpoints((d / "absent").string()).ok());
}

}  // namespace
}  // namespace dreamfleet::learner
