#include "services/step_columns.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::services {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Names(const std::vector<StepFieldSpec>& fields) {
  std::vector<std::string> names;
  for (const StepFieldSpec& f : fields) names.push_back(f.name);
  return names;
}

TEST(StepColumnsTest, FieldsListOnlyTheObservationsAStreamHas) {
  EXPECT_THAT(Names(StepFields({64, 64, 3, 0, 0})),
              ElementsAre("image", "action", "reward", "is_first", "is_last", "is_terminal"));
  EXPECT_THAT(Names(StepFields({0, 0, 0, 12, 0})),
              ElementsAre("vector", "action", "reward", "is_first", "is_last", "is_terminal"));
  const std::vector<StepFieldSpec> all = StepFields({8, 4, 1, 2, 5});
  ASSERT_EQ(all.size(), 8u);
  EXPECT_EQ(all[0].shape, (std::vector<int64_t>{8, 4, 1}));
  EXPECT_EQ(all[0].step_bytes, 32);
  EXPECT_EQ(all[1].step_bytes, 8);  // 2 floats
  EXPECT_EQ(all[2].dtype, v1::DTYPE_INT32);
  EXPECT_EQ(all[2].step_bytes, 20);  // 5 tokens
}

TEST(StepColumnsTest, ColumnsKeepEveryFieldOfEveryStepInOrder) {
  StepColumns columns({2, 1, 1, 1, 0});
  const uint8_t image_a[2] = {1, 2}, image_b[2] = {3, 4};
  const float vector_a = 0.5f, vector_b = -1.5f;
  columns.Append({image_a, &vector_a, nullptr, 3, 1.0f, true, false, false});
  columns.Append({image_b, &vector_b, nullptr, 5, -2.0f, false, true, true});
  ASSERT_EQ(columns.size(), 2);
  const std::vector<NamedTensor> tensors = columns.ToTensors();
  ASSERT_EQ(tensors.size(), 7u);
  EXPECT_EQ(tensors[0].name, "image");
  EXPECT_EQ(tensors[0].shape, (std::vector<int64_t>{2, 2, 1, 1}));
  EXPECT_EQ(tensors[0].data, std::string("\x01\x02\x03\x04", 4));
  const NamedTensor* action = FindTensor(tensors, "action");
  ASSERT_NE(action, nullptr);
  EXPECT_EQ(action->shape, (std::vector<int64_t>{2}));
  int32_t actions[2];
  std::memcpy(actions, action->data.data(), 8);
  EXPECT_EQ(actions[0], 3);
  EXPECT_EQ(actions[1], 5);
  EXPECT_EQ(FindTensor(tensors, "is_first")->data, std::string("\x01\x00", 2));
  EXPECT_EQ(FindTensor(tensors, "is_terminal")->data, std::string("\x00\x01", 2));
  EXPECT_EQ(FindTensor(tensors, "text"), nullptr);
}

TEST(StepColumnsTest, WriteOverwritesARingPositionAndClearEmpties) {
  StepColumns columns({0, 0, 0, 1, 0});
  const float a = 1, b = 2, c = 3;
  columns.Append({nullptr, &a, nullptr, 0, 0, true, false, false});
  columns.Append({nullptr, &b, nullptr, 1, 0, false, false, false});
  columns.Write(0, {nullptr, &c, nullptr, 2, 0, false, false, false});
  float value;
  std::memcpy(&value, columns.Row(0, 0), 4);
  EXPECT_EQ(value, 3.0f);
  std::memcpy(&value, columns.Row(0, 1), 4);
  EXPECT_EQ(value, 2.0f);
  EXPECT_EQ(*columns.Row(3, 0), 0);  // is_first of the overwritten step
  columns.Clear();
  EXPECT_EQ(columns.size(), 0);
  EXPECT_EQ(columns.ToTensors()[0].shape, (std::vector<int64_t>{0, 1}));
}

}  // namespace
}  // namespace dreamfleet::services
