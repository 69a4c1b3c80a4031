#include "broadcast/weights.h"

#include <cstring>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace dreamfleet::broadcast {
namespace {

// A float32 tensor of `elements` values with a pattern that differs per tensor and per byte.
services::NamedTensor PatternTensor(const std::string& name, std::vector<int64_t> shape,
                                    uint32_t seed) {
  services::NamedTensor tensor;
  tensor.name = name;
  tensor.dtype = v1::DTYPE_FLOAT32;
  tensor.shape = std::move(shape);
  int64_t elements = 1;
  for (int64_t dim : tensor.shape) elements *= dim;
  tensor.data.resize(elements * 4);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < tensor.data.size(); i += 4) {
    const uint32_t value = rng();
    std::memcpy(&tensor.data[i], &value, 4);
  }
  return tensor;
}

absl::StatusOr<std::shared_ptr<const WeightsVersion>> Reassemble(
    std::vector<v1::ParameterUpdate> updates) {
  WeightsAssembler assembler;
  for (size_t i = 0; i < updates.size(); ++i) {
    absl::StatusOr<std::shared_ptr<const WeightsVersion>> result = assembler.Add(&updates[i]);
    if (!result.ok()) return result.status();
    if (i + 1 < updates.size() && *result != nullptr) {
      return absl::InternalError("version completed before its last part");
    }
    if (i + 1 == updates.size()) return *result;
  }
  return absl::InternalError("no updates");
}

void ExpectSameWeights(const WeightsVersion& got, const WeightsVersion& want) {
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.model_config, want.model_config);
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (size_t i = 0; i < want.tensors.size(); ++i) {
    EXPECT_EQ(got.tensors[i].name, want.tensors[i].name);
    EXPECT_EQ(got.tensors[i].dtype, want.tensors[i].dtype);
    EXPECT_EQ(got.tensors[i].shape, want.tensors[i].shape);
    EXPECT_TRUE(got.tensors[i].data == want.tensors[i].data)
        << "bytes of tensor " << want.tensors[i].name << " differ";
  }
}

WeightsVersion SmallModel(int64_t version) {
  WeightsVersion weights;
  weights.version = version;
  weights.model_config = "deter: 512\nstoch: 32\n";
  weights.tensors.push_back(PatternTensor("encoder.conv0.weight", {32, 3, 4, 4}, 1));
  weights.tensors.push_back(PatternTensor("encoder.conv0.bias", {32}, 2));
  weights.tensors.push_back(PatternTensor("rssm.gru.weight", {512, 96}, 3));
  weights.tensors.push_back(PatternTensor("actor.scalar", {}, 4));
  services::NamedTensor empty;
  empty.name = "actor.empty";
  empty.dtype = v1::DTYPE_UINT8;
  empty.shape = {0, 5};
  weights.tensors.push_back(empty);
  services::NamedTensor flags;
  flags.name = "actor.mask";
  flags.dtype = v1::DTYPE_BOOL;
  flags.shape = {3};
  flags.data = std::string("\x01\x00\x01", 3);
  weights.tensors.push_back(flags);
  return weights;
}

TEST(WeightsTest, ValidateAcceptsAGoodModelAndNamesTheBadTensor) {
  WeightsVersion weights = SmallModel(1);
  EXPECT_TRUE(ValidateWeights(weights).ok());

  WeightsVersion short_bytes = SmallModel(1);
  short_bytes.tensors[1].data.pop_back();
  absl::Status status = ValidateWeights(short_bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "encoder.conv0.bias")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "127")) << status;

  WeightsVersion twice = SmallModel(1);
  twice.tensors.push_back(twice.tensors[0]);
  EXPECT_FALSE(ValidateWeights(twice).ok());

  WeightsVersion unversioned = SmallModel(0);
  EXPECT_FALSE(ValidateWeights(unversioned).ok());

  WeightsVersion bad_dtype = SmallModel(1);
  bad_dtype.tensors[0].dtype = v1::DTYPE_UNSPECIFIED;
  EXPECT_FALSE(ValidateWeights(bad_dtype).ok());
}

TEST(WeightsTest, SmallTensorsArePackedIntoOneMessage) {
  WeightsVersion weights = SmallModel(3);
  std::vector<v1::ParameterUpdate> updates = SplitIntoUpdates(weights, 1 << 20);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].version(), 3);
  EXPECT_EQ(updates[0].part(), 0);
  EXPECT_EQ(updates[0].num_parts(), 1);
  EXPECT_EQ(updates[0].pieces_size(), 6);
  EXPECT_EQ(updates[0].model_config(), weights.model_config);
  absl::StatusOr<std::shared_ptr<const WeightsVersion>> back = Reassemble(updates);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_NE(*back, nullptr);
  ExpectSameWeights(**back, weights);
}

TEST(WeightsTest, EveryMessageStaysUnderTheLimitAndReassemblesExactly) {
  WeightsVersion weights = SmallModel(4);
  // Limits around tensor and overhead boundaries.
  for (size_t limit : {size_t{4096}, size_t{5000}, size_t{8192}, size_t{65536}, size_t{100}}) {
    std::vector<v1::ParameterUpdate> updates = SplitIntoUpdates(weights, limit);
    const size_t effective = std::max(limit, kMinUpdateMessageBytes);
    for (const v1::ParameterUpdate& update : updates) {
      EXPECT_LE(update.ByteSizeLong(), effective) << "limit " << limit;
      EXPECT_EQ(update.num_parts(), static_cast<int>(updates.size()));
      EXPECT_EQ(update.model_config().empty(), update.part() != 0);
    }
    absl::StatusOr<std::shared_ptr<const WeightsVersion>> back = Reassemble(updates);
    ASSERT_TRUE(back.ok()) << back.status();
    ExpectSameWeights(**back, weights);
  }
}

TEST(WeightsTest, EmptyVersionIsOneMessage) {
  WeightsVersion weights;
  weights.version = 9;
  std::vector<v1::ParameterUpdate> updates = SplitIntoUpdates(weights, 1 << 20);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].pieces_size(), 0);
  absl::StatusOr<std::shared_ptr<const WeightsVersion>> back = Reassemble(updates);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameWeights(**back, weights);
}

TEST(WeightsTest, TensorLargerThan64MiBSplitUnder4MiBReassemblesBitExactly) {
  WeightsVersion weights;
  weights.version = 12;
  weights.model_config = "size: huge";
  weights.tensors.push_back(PatternTensor("before", {1000}, 7));
  weights.tensors.push_back(PatternTensor("huge", {17, 1024, 1024}, 8));  // 68 MiB
  weights.tensors.push_back(PatternTensor("after", {3, 3}, 9));
  ASSERT_GT(weights.tensors[1].data.size(), size_t{64} << 20);
  std::vector<v1::ParameterUpdate> updates = SplitIntoUpdates(weights, 4 << 20);
  EXPECT_GE(updates.size(), 17u);
  for (const v1::ParameterUpdate& update : updates) {
    EXPECT_LE(update.ByteSizeLong(), size_t{4} << 20);
  }
  absl::StatusOr<std::shared_ptr<const WeightsVersion>> back = Reassemble(std::move(updates));
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameWeights(**back, weights);
}

// Fixture for malformed sequences: a model that splits into several parts with a tensor spanning
// several messages.
class WeightsAssemblerMalformedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    weights_.version = 5;
    weights_.tensors.push_back(PatternTensor("a", {4000}, 1));  // 16000 B: ~4 messages
    weights_.tensors.push_back(PatternTensor("b", {10}, 2));
    updates_ = SplitIntoUpdates(weights_, 4096);
    ASSERT_GE(updates_.size(), 4u);
  }

  // Feeds updates_ through Add; returns the first error (or OK and the final result).
  absl::Status Feed(WeightsAssembler* assembler, std::vector<v1::ParameterUpdate> updates,
                    std::shared_ptr<const WeightsVersion>* last = nullptr) {
    for (v1::ParameterUpdate& update : updates) {
      absl::StatusOr<std::shared_ptr<const WeightsVersion>> result = assembler->Add(&update);
      if (!result.ok()) return result.status();
      if (last != nullptr) *last = *result;
    }
    return absl::OkStatus();
  }

  // After any error the assembler must accept a complete, correct version.
  void ExpectRecovers(WeightsAssembler* assembler) {
    std::shared_ptr<const WeightsVersion> last;
    ASSERT_TRUE(Feed(assembler, updates_, &last).ok());
    ASSERT_NE(last, nullptr);
    ExpectSameWeights(*last, weights_);
  }

  WeightsVersion weights_;
  std::vector<v1::ParameterUpdate> updates_;
};

TEST_F(WeightsAssemblerMalformedTest, MissingPartIsDataLoss) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  updates.erase(updates.begin() + 1);
  absl::Status status = Feed(&assembler, updates);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(status.message(), "expected part 1")) << status;
  EXPECT_EQ(assembler.pending_version(), 0);
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, PartsOutOfOrderAreRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  std::swap(updates[1], updates[2]);
  EXPECT_EQ(Feed(&assembler, updates).code(), absl::StatusCode::kDataLoss);
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, StreamStartingMidVersionIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates(updates_.begin() + 1, updates_.end());
  absl::Status status = Feed(&assembler, updates);
  EXPECT_TRUE(absl::StrContains(status.message(), "without part 0")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, NewVersionMidVersionDropsThePartialOne) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates(updates_.begin(), updates_.begin() + 2);
  v1::ParameterUpdate next = updates_[0];
  next.set_version(6);
  updates.push_back(next);
  absl::Status status = Feed(&assembler, updates);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(status.message(), "got version 6")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, ChangingNumPartsIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  updates[1].set_num_parts(updates[1].num_parts() + 1);
  EXPECT_FALSE(Feed(&assembler, updates).ok());
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, InvalidPartNumberIsRejected) {
  WeightsAssembler assembler;
  v1::ParameterUpdate update = updates_[0];
  update.set_part(update.num_parts());
  EXPECT_EQ(assembler.Add(&update).status().code(), absl::StatusCode::kInvalidArgument);
  update.set_num_parts(0);
  update.set_part(0);
  EXPECT_FALSE(assembler.Add(&update).ok());
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, OverlappingPieceIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  v1::TensorPiece* piece = updates[1].mutable_pieces(0);
  ASSERT_GT(piece->offset(), 0u);
  piece->set_offset(piece->offset() - 4);
  absl::Status status = Feed(&assembler, updates);
  EXPECT_TRUE(absl::StrContains(status.message(), "overlap")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, GapInTensorIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  v1::TensorPiece* piece = updates[1].mutable_pieces(0);
  piece->set_offset(piece->offset() + 4);
  absl::Status status = Feed(&assembler, updates);
  EXPECT_TRUE(absl::StrContains(status.message(), "gap")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, TruncatedTensorAtLastPartIsRejected) {
  WeightsAssembler assembler;
  WeightsVersion one_tensor;
  one_tensor.version = 8;
  one_tensor.tensors.push_back(PatternTensor("a", {4000}, 1));
  std::vector<v1::ParameterUpdate> updates = SplitIntoUpdates(one_tensor, 4096);
  std::string* data = updates.back().mutable_pieces(0)->mutable_data();
  data->resize(data->size() - 4);
  absl::Status status = Feed(&assembler, updates);
  EXPECT_TRUE(absl::StrContains(status.message(), "ended with tensor \"a\"")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, PieceOverrunningItsTensorIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  // Grow the last piece of tensor "a".
  for (v1::ParameterUpdate& update : updates) {
    for (v1::TensorPiece& piece : *update.mutable_pieces()) {
      if (piece.name() == "a" && piece.offset() + piece.data().size() == piece.total_bytes()) {
        piece.mutable_data()->append("xxxx");
      }
    }
  }
  absl::Status status = Feed(&assembler, updates);
  EXPECT_TRUE(absl::StrContains(status.message(), "overruns")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, TotalBytesNotMatchingShapeIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  updates[0].mutable_pieces(0)->set_total_bytes(16004);
  absl::Status status = Feed(&assembler, updates);
  EXPECT_TRUE(absl::StrContains(status.message(), "needs 16000 bytes")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, TensorSentTwiceIsRejected) {
  WeightsAssembler assembler;
  WeightsVersion twice;
  twice.version = 3;
  twice.tensors.push_back(PatternTensor("w", {2}, 1));
  twice.tensors.push_back(PatternTensor("w", {2}, 1));
  absl::Status status = Feed(&assembler, SplitIntoUpdates(twice, 1 << 20));
  EXPECT_TRUE(absl::StrContains(status.message(), "arrived twice")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, PieceOfAnotherTensorWhileOneIsOpenIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  updates[1].mutable_pieces(0)->set_name("b");
  absl::Status status = Feed(&assembler, updates);
  EXPECT_TRUE(absl::StrContains(status.message(), "is incomplete")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, ShapeChangingMidTensorIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  updates[1].mutable_pieces(0)->set_shape(0, 3999);
  EXPECT_FALSE(Feed(&assembler, updates).ok());
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, UnknownDtypeIsRejected) {
  WeightsAssembler assembler;
  std::vector<v1::ParameterUpdate> updates = updates_;
  updates[0].mutable_pieces(0)->set_dtype(v1::DTYPE_UNSPECIFIED);
  absl::Status status = Feed(&assembler, updates);
  EXPECT_TRUE(absl::StrContains(status.message(), "dtype unspecified")) << status;
  ExpectRecovers(&assembler);
}

TEST_F(WeightsAssemblerMalformedTest, ConsecutiveVersionsBothAssemble) {
  WeightsAssembler assembler;
  ExpectRecovers(&assembler);
  ExpectRecovers(&assembler);
}

}  // namespace
}  // namespace dreamfleet::broadcast
