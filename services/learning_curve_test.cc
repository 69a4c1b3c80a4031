// The progress CSV round-trips (levels, losses, missing cells), truncates for a resumed run and
// rejects malformed files naming the line; the plot is a real PNG with the curve drawn in it.
#include "services/learning_curve.h"

#include <cairo.h>

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_process.h"

namespace dreamfleet::services {
namespace {

using ::testing::HasSubstr;

CurveRow Row(int64_t steps, double ret) {
  CurveRow row;
  row.env_steps = steps;
  row.updates = steps / 10;
  row.wall_seconds = steps / 100.0;
  row.episodes = steps / 50;
  row.mean_return = ret;
  row.success = ret > 1 ? 1 : 0.25;
  row.window_episodes = steps / 100;
  row.losses = {{"rec", 1.5}, {"dyn", 0.75}};
  row.stats = {{"entropy", 1.25}};
  return row;
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(LearningCurveTest, RowsAndLevelsRoundTripAndAppendAcrossOpens) {
  dreamfleet::testing::ScopedTempDir dir("curve_test_");
  const std::string path = dir.path() + "/progress.csv";
  {
    absl::StatusOr<CurveWriter> writer =
        CurveWriter::Open(path, {{"random policy", 0.5}, {"target", 10}}, "success");
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE(writer->Append(Row(1000, 0.25)).ok());
    ASSERT_TRUE(writer->Append(Row(2000, 2.5)).ok());
  }
  {
    // Reopened (a resumed run): no second header, and the levels are not repeated.
    absl::StatusOr<CurveWriter> writer = CurveWriter::Open(path, {{"random policy", 99}}, "return");
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE(writer->Append(Row(3000, -1.5)).ok());
  }
  absl::StatusOr<Curve> curve = ReadCurve(path);
  ASSERT_TRUE(curve.ok()) << curve.status();
  EXPECT_EQ(curve->metric, "success");  // the first open's, like the levels
  ASSERT_EQ(curve->levels.size(), 2u);
  EXPECT_EQ(curve->levels[0].label, "random policy");
  EXPECT_DOUBLE_EQ(curve->levels[0].value, 0.5);
  EXPECT_DOUBLE_EQ(curve->levels[1].value, 10);
  ASSERT_EQ(curve->rows.size(), 3u);
  EXPECT_EQ(curve->rows[1].env_steps, 2000);
  EXPECT_EQ(curve->rows[1].updates, 200);
  EXPECT_EQ(curve->rows[1].episodes, 40);
  EXPECT_DOUBLE_EQ(curve->rows[1].mean_return, 2.5);
  EXPECT_DOUBLE_EQ(curve->rows[1].success, 1);
  EXPECT_EQ(curve->rows[1].window_episodes, 20);
  EXPECT_DOUBLE_EQ(curve->rows[2].mean_return, -1.5);
  EXPECT_DOUBLE_EQ(curve->rows[2].wall_seconds, 30);
  EXPECT_DOUBLE_EQ(curve->rows[0].losses.at("rec"), 1.5);
  EXPECT_DOUBLE_EQ(curve->rows[0].losses.at("dyn"), 0.75);
  EXPECT_FALSE(curve->rows[0].losses.count("policy"));  // written empty, read back absent
  EXPECT_DOUBLE_EQ(curve->rows[0].stats.at("entropy"), 1.25);
  EXPECT_FALSE(curve->rows[0].stats.count("ret"));

  // A resumed run continues from its checkpoint's step: later rows go.
  ASSERT_TRUE(TruncateCurve(path, 2000).ok());
  curve = ReadCurve(path);
  ASSERT_TRUE(curve.ok()) << curve.status();
  EXPECT_EQ(curve->rows.size(), 2u);
  EXPECT_EQ(curve->levels.size(), 2u);
  EXPECT_TRUE(TruncateCurve(dir.path() + "/absent.csv", 5).ok());
  // Resuming at step 1000 keeps the first row; the resumed run's counters continue from it.
  absl::StatusOr<CurveOffsets> offsets = ResumeCurve(path, 1000);
  ASSERT_TRUE(offsets.ok()) << offsets.status();
  EXPECT_DOUBLE_EQ(offsets->wall_seconds, 10);
  EXPECT_EQ(offsets->episodes, 20);
  const CurveRow shifted = offsets->Apply(Row(1500, 1));
  EXPECT_DOUBLE_EQ(shifted.wall_seconds, 25);
  EXPECT_EQ(shifted.episodes, 50);
  ASSERT_TRUE(ReadCurve(path).ok());
  EXPECT_EQ(ReadCurve(path)->rows.size(), 1u);
  offsets = ResumeCurve(dir.path() + "/absent.csv", 5);
  ASSERT_TRUE(offsets.ok()) << offsets.status();
  EXPECT_EQ(offsets->episodes, 0);
  // Columns are found by name, also when env_steps is not the first one.
  WriteFile(path, "mean_return,env_steps\n1,100\n2,200\n3,300\n");
  ASSERT_TRUE(TruncateCurve(path, 200).ok());
  curve = ReadCurve(path);
  ASSERT_TRUE(curve.ok()) << curve.status();
  ASSERT_EQ(curve->rows.size(), 2u);
  EXPECT_DOUBLE_EQ(curve->rows[1].mean_return, 2);
}

TEST(LearningCurveTest, AppendingToAnOlderFileFollowsItsHeader) {
  dreamfleet::testing::ScopedTempDir dir("curve_test_");
  const std::string path = dir.path() + "/progress.csv";
  // A run started by a version without the ac_ columns and with one this version lacks.
  WriteFile(path, "# level target = 10\nenv_steps,mean_return,loss_dyn,old_column\n100,1,0.5,7\n");
  {
    absl::StatusOr<CurveWriter> writer = CurveWriter::Open(path, {{"target", 99}});
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE(writer->Append(Row(200, 2)).ok());
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(),
            "# level target = 10\nenv_steps,mean_return,loss_dyn,old_column\n100,1,0.5,7\n"
            "200,2,0.75,\n");
  // A file that is not a progress CSV is left alone.
  const std::string other = dir.path() + "/other.csv";
  WriteFile(other, "steps,return\n1,2\n");
  absl::Status status = CurveWriter::Open(other).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("no env_steps column"));
  // A file holding only level lines gets the header under them.
  WriteFile(other, "# level target = 1\n");
  ASSERT_TRUE(CurveWriter::Open(other, {{"x", 2}}).ok());
  absl::StatusOr<Curve> curve = ReadCurve(other);
  ASSERT_TRUE(curve.ok()) << curve.status();
  ASSERT_EQ(curve->levels.size(), 1u);
  EXPECT_EQ(curve->levels[0].label, "target");
}

TEST(LearningCurveTest, EvaluationsRoundTripAndPlotOnePointEach) {
  dreamfleet::testing::ScopedTempDir dir("curve_test_");
  const std::string path = dir.path() + "/progress.csv";
  {
    absl::StatusOr<CurveWriter> writer = CurveWriter::Open(path);
    ASSERT_TRUE(writer.ok()) << writer.status();
    CurveRow row = Row(1000, 0.5);  // before the first evaluation
    ASSERT_TRUE(writer->Append(row).ok());
    // Rows repeat the latest evaluation until the next one.
    row.eval = {{"env_steps", 1000}, {"greedy_return", 2.5}, {"sampled_return", 1}};
    for (int64_t steps : {2000, 3000}) {
      row.env_steps = steps;
      ASSERT_TRUE(writer->Append(row).ok());
    }
    row.eval = {{"env_steps", 1234567}, {"greedy_return", 4}, {"sampled_return", 2}};
    row.env_steps = 1234567;
    ASSERT_TRUE(writer->Append(row).ok());
  }
  absl::StatusOr<Curve> curve = ReadCurve(path);
  ASSERT_TRUE(curve.ok()) << curve.status();
  EXPECT_TRUE(curve->rows[0].eval.empty());
  EXPECT_DOUBLE_EQ(curve->rows[1].eval.at("greedy_return"), 2.5);
  EXPECT_FALSE(curve->rows[1].eval.count("greedy_success"));
  const PlotSeries greedy = EvalSeries(*curve, "greedy_return", "greedy");
  EXPECT_TRUE(greedy.markers);
  ASSERT_EQ(greedy.points.size(), 2u);
  EXPECT_EQ(greedy.points[0], (std::pair<double, double>{1000, 2.5}));
  EXPECT_EQ(greedy.points[1], (std::pair<double, double>{1234567, 4}));  // not 1.23457e+06
  EXPECT_TRUE(EvalSeries(*curve, "greedy_success", "").points.empty());
  EXPECT_TRUE(PlotPng({ReturnSeries(*curve, "training"), greedy}, {}, dir.path() + "/c.png").ok());
}

TEST(LearningCurveTest, CurveLossesSumTheDecodersIntoRec) {
  std::map<std::string, double> losses =
      CurveLosses({{"image", 2}, {"vector", 0.5}, {"dyn", 1}, {"policy", -0.25}, {"kl", 9}});
  EXPECT_DOUBLE_EQ(losses.at("rec"), 2.5);
  EXPECT_DOUBLE_EQ(losses.at("dyn"), 1);
  EXPECT_DOUBLE_EQ(losses.at("policy"), -0.25);
  EXPECT_FALSE(losses.count("kl"));   // not a curve column
  EXPECT_FALSE(losses.count("rew"));  // absent stays absent
  EXPECT_TRUE(CurveLosses({{"rew", 1}}).count("rec") == 0);
}

TEST(LearningCurveTest, MalformedFilesAreRejectedNamingTheLine) {
  dreamfleet::testing::ScopedTempDir dir("curve_test_");
  const std::string path = dir.path() + "/progress.csv";
  EXPECT_TRUE(absl::IsNotFound(ReadCurve(path).status()));

  WriteFile(path, "steps,return\n1,2\n");
  absl::Status status = ReadCurve(path).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("progress.csv:1"));
  EXPECT_THAT(status.message(), HasSubstr("env_steps and mean_return"));

  WriteFile(path, "env_steps,mean_return\n100,1.5\n200,lots\n");
  status = ReadCurve(path).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("progress.csv:3"));
  EXPECT_THAT(status.message(), HasSubstr("\"lots\""));

  WriteFile(path, "env_steps,mean_return\nnan,1\n");
  status = ReadCurve(path).status();
  EXPECT_THAT(status.message(), HasSubstr("env_steps is not a whole number"));
  WriteFile(path, "env_steps,mean_return\n1e30,1\n");
  EXPECT_TRUE(absl::IsInvalidArgument(ReadCurve(path).status()));
  WriteFile(path, "steps,mean_return\n1,1\n");
  EXPECT_TRUE(absl::IsInvalidArgument(TruncateCurve(path, 0)));

  WriteFile(path, "# level random = x\nenv_steps,mean_return\n");
  status = ReadCurve(path).status();
  EXPECT_THAT(status.message(), HasSubstr("progress.csv:1"));

  // Only the two required columns: the rest defaults.
  WriteFile(path, "env_steps,mean_return\n100,1.5\n");
  absl::StatusOr<Curve> curve = ReadCurve(path);
  ASSERT_TRUE(curve.ok()) << curve.status();
  EXPECT_EQ(curve->rows.at(0).updates, 0);
  EXPECT_EQ(curve->rows.at(0).window_episodes, -1);  // not recorded
}

TEST(LearningCurveTest, PlotIsAPngWithTheCurveAndTheLevelsDrawn) {
  dreamfleet::testing::ScopedTempDir dir("curve_test_");
  const std::string path = dir.path() + "/curve.png";
  Curve curve;
  for (int i = 0; i <= 20; ++i) curve.rows.push_back(Row(i * 10000, i * 0.5));
  PlotOptions options;
  options.title = "minatar_breakout";
  options.levels = {{"random policy", 0.5}, {"target", 10}};
  ASSERT_TRUE(PlotPng({ReturnSeries(curve, "seed 0")}, options, path).ok());

  cairo_surface_t* image = cairo_image_surface_create_from_png(path.c_str());
  ASSERT_EQ(cairo_surface_status(image), CAIRO_STATUS_SUCCESS);
  EXPECT_EQ(cairo_image_surface_get_width(image), options.width);
  EXPECT_EQ(cairo_image_surface_get_height(image), options.height);
  // Count pixels of the first series' colour (blue) and the white background.
  cairo_surface_flush(image);
  const unsigned char* data = cairo_image_surface_get_data(image);
  const int stride = cairo_image_surface_get_stride(image);
  int blue = 0, white = 0;
  for (int y = 0; y < options.height; ++y) {
    const uint32_t* row = reinterpret_cast<const uint32_t*>(data + y * stride);
    for (int x = 0; x < options.width; ++x) {
      const int r = (row[x] >> 16) & 0xff, g = (row[x] >> 8) & 0xff, b = row[x] & 0xff;
      if (b > 150 && r < 60 && g > 90 && g < 140) ++blue;
      if (r == 255 && g == 255 && b == 255) ++white;
    }
  }
  cairo_surface_destroy(image);
  EXPECT_GT(blue, 500) << "the curve is a long diagonal line";
  EXPECT_GT(white, options.width * options.height / 2);

  EXPECT_TRUE(absl::IsInvalidArgument(PlotPng({}, options, path)));
  EXPECT_TRUE(absl::IsInvalidArgument(PlotPng({PlotSeries{"empty", {}}}, options, path)));
  absl::Status unwritable = PlotPng({ReturnSeries(curve, "x")}, options, "/nonexistent/dir/a.png");
  EXPECT_TRUE(absl::IsInternal(unwritable)) << unwritable;
  EXPECT_THAT(unwritable.message(), HasSubstr("/nonexistent/dir/a.png"));
}

}  // namespace
}  // namespace dreamfleet::services
