#include "services/tensor_codec.h"

#include <vector>

#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

TEST(TensorCodecTest, RoundTripsEveryDtype) {
  v1::TensorProto proto;
  std::vector<uint8_t> image(2 * 3 * 3);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(EncodeTensor<uint8_t>({2, 3, 3}, image, &proto).ok());
  std::vector<uint8_t> back;
  ASSERT_TRUE(DecodeTensorTo<uint8_t>(proto, "image", {2, 3, 3}, &back).ok());
  EXPECT_EQ(back, image);

  std::vector<float> reward = {0.5f, -1.0f, 3.25f};
  ASSERT_TRUE(EncodeTensor<float>({3}, reward, &proto).ok());
  std::vector<float> reward_back;
  ASSERT_TRUE(DecodeTensorTo<float>(proto, "reward", {-1}, &reward_back).ok());
  EXPECT_EQ(reward_back, reward);

  std::vector<int32_t> action = {1, -2};
  ASSERT_TRUE(EncodeTensor<int32_t>({2, 1}, action, &proto).ok());
  absl::StatusOr<TensorView> view = DecodeTensor(proto, "action", v1::DTYPE_INT32, {2, 1});
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->as<int32_t>()[1], -2);

  uint8_t flags[3] = {1, 0, 1};
  ASSERT_TRUE(EncodeTensor(v1::DTYPE_BOOL, {3}, flags, 3, &proto).ok());
  EXPECT_EQ(DTypeSize(proto.dtype()), 1u);
}

TEST(TensorCodecTest, RejectsMismatchesWithClearMessages) {
  v1::TensorProto proto;
  std::vector<uint8_t> image(4 * 4 * 4);
  ASSERT_TRUE(EncodeTensor<uint8_t>({4, 4, 4}, image, &proto).ok());
  EXPECT_EQ(DecodeTensor(proto, "image", v1::DTYPE_UINT8, {4, 4, 3}).status().message(),
            "tensor \"image\" has shape [4,4,4], expected [4,4,3]");
  EXPECT_EQ(DecodeTensor(proto, "image", v1::DTYPE_FLOAT32, {4, 4, 4}).status().message(),
            "tensor \"image\" has dtype uint8, expected float32");
  proto.mutable_data()->pop_back();
  EXPECT_EQ(DecodeTensor(proto, "image").status().message(),
            "tensor \"image\" of shape [4,4,4] and dtype uint8 needs 64 bytes, got 63");
  proto.set_dtype(v1::DTYPE_UNSPECIFIED);
  EXPECT_EQ(DecodeTensor(proto, "image").status().message(),
            "tensor \"image\" has dtype unspecified");
  proto.set_dtype(v1::DTYPE_UINT8);
  proto.set_shape(0, -4);
  EXPECT_EQ(DecodeTensor(proto, "image").status().message(),
            "tensor \"image\" has invalid shape [-4,4,4]");
}

TEST(TensorCodecTest, EncodeChecksByteCount) {
  v1::TensorProto proto;
  float values[5] = {};
  EXPECT_EQ(EncodeTensor(v1::DTYPE_FLOAT32, {2, 2}, values, sizeof(values), &proto).message(),
            "shape [2,2] of float32 needs 16 bytes, got 20");
}

}  // namespace
}  // namespace dreamfleet::services
