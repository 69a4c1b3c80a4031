// ReplayLog on real files: what a resume reads back, what it cuts, damage, layouts, pruning.
#include "learner/replay_log.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_process.h"

namespace dreamfleet::learner {
namespace {

// Two envs, a 2x2x1 image, a 3-float vector and a latent of 2 floats + 2 variables of 2 classes.
ReplayLogLayout Layout() {
  ReplayLogLayout layout;
  layout.shape.image_height = 2;
  layout.shape.image_width = 2;
  layout.shape.image_channels = 1;
  layout.shape.vector_size = 3;
  layout.envs = 2;
  layout.deter = 2;
  layout.stoch = 2;
  layout.classes = 2;
  return layout;
}

// The values of env `env`'s step at tick `t`, all derived from (t, env).
struct Step {
  std::vector<uint8_t> image;
  std::vector<float> vector, deter, stoch;
  services::StepRecord record;
};
Step MakeStep(int t, int env) {
  Step s;
  for (int i = 0; i < 4; ++i) s.image.push_back(static_cast<uint8_t>(t * 7 + env * 3 + i));
  for (int i = 0; i < 3; ++i) s.vector.push_back(0.5f * t + env + 0.25f * i);
  s.deter = {1.0f * t, -1.0f * env};
  s.stoch = {0, 0, 0, 0};
  s.stoch[(t + env) % 2] = 1;  // variable 0
  s.stoch[2 + t % 2] = 1;      // variable 1
  s.record.action = t % 5 + env;
  s.record.reward = t % 3 == 0 ? 1.5f : 0.0f;
  s.record.is_first = t == 0;
  s.record.is_last = t % 4 == 3;
  s.record.is_terminal = env == 1 && t % 4 == 3;
  return s;
}

// The step's record, pointing at its observations where the step now lives.
services::StepRecord RecordOf(const Step& s) {
  services::StepRecord r = s.record;
  r.image = s.image.data();
  r.vector = s.vector.data();
  return r;
}

// Logs ticks [from, to) at env steps 2t.
void Write(ReplayLog& log, int from, int to) {
  for (int t = from; t < to; ++t) {
    std::vector<Step> steps = {MakeStep(t, 0), MakeStep(t, 1)};
    std::vector<services::StepRecord> records = {RecordOf(steps[0]), RecordOf(steps[1])};
    std::vector<float> deter = steps[0].deter, stoch = steps[0].stoch;
    deter.insert(deter.end(), steps[1].deter.begin(), steps[1].deter.end());
    stoch.insert(stoch.end(), steps[1].stoch.begin(), steps[1].stoch.end());
    ASSERT_TRUE(log.Append(2 * t, records, deter.data(), stoch.data()).ok());
  }
}

// A fresh log in `dir` holding ticks [0, ticks), closed again.
void WriteFresh(const std::string& dir, int ticks, int64_t segment_ticks) {
  absl::StatusOr<std::unique_ptr<ReplayLog>> log = ReplayLog::Open(
      dir, Layout(), 0, /*resume=*/false,
      [](int, const services::StepRecord&, const float*, const float*) {}, nullptr, segment_ticks);
  ASSERT_TRUE(log.ok()) << log.status();
  Write(**log, 0, ticks);
}

// Flips the bits of the byte at `offset` of the file at `path`.
void FlipByte(const std::string& path, std::streamoff offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(offset);
  char byte = 0;
  file.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x5a);
  file.seekp(offset);
  file.write(&byte, 1);
  ASSERT_TRUE(file.good()) << path;
}

struct Seen {
  int env;
  std::vector<uint8_t> image;
  std::vector<float> vector, deter, stoch;
  int action;
  float reward;
  bool first, last, terminal;
};

ReplayLog::AddFn Collect(std::vector<Seen>* seen) {
  return [seen](int env, const services::StepRecord& r, const float* deter, const float* stoch) {
    Seen s{env,
           std::vector<uint8_t>(r.image, r.image + 4),
           std::vector<float>(r.vector, r.vector + 3),
           deter ? std::vector<float>(deter, deter + 2) : std::vector<float>(),
           stoch ? std::vector<float>(stoch, stoch + 4) : std::vector<float>(),
           r.action,
           r.reward,
           r.is_first,
           r.is_last,
           r.is_terminal};
    seen->push_back(std::move(s));
  };
}

// `seen` holds ticks `ticks` in order; those in `starts` begin new episodes (after a gap).
void ExpectTicks(const std::vector<Seen>& seen, const std::vector<int>& ticks,
                 const std::vector<int>& starts = {}) {
  ASSERT_EQ(seen.size(), 2 * ticks.size());
  for (size_t k = 0; k < ticks.size(); ++k) {
    const int t = ticks[k];
    for (int env = 0; env < 2; ++env) {
      const Seen& got = seen[2 * k + env];
      const Step want = MakeStep(t, env);
      EXPECT_EQ(got.env, env);
      EXPECT_EQ(got.image, want.image) << "tick " << t;
      EXPECT_EQ(got.vector, want.vector) << "tick " << t;
      EXPECT_EQ(got.deter, want.deter) << "tick " << t;
      EXPECT_EQ(got.stoch, want.stoch) << "tick " << t;
      EXPECT_EQ(got.action, want.record.action);
      EXPECT_EQ(got.reward, want.record.reward);
      const bool start = std::find(starts.begin(), starts.end(), t) != starts.end();
      EXPECT_EQ(got.first, want.record.is_first || start) << "tick " << t;
      EXPECT_EQ(got.last, want.record.is_last);
      EXPECT_EQ(got.terminal, want.record.is_terminal);
    }
  }
}

std::vector<int> Range(int from, int to) {
  std::vector<int> v;
  for (int t = from; t < to; ++t) v.push_back(t);
  return v;
}

std::vector<int64_t> Firsts(const std::string& dir) {
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> segments = ReplayLog::Segments(dir);
  EXPECT_TRUE(segments.ok()) << segments.status();
  std::vector<int64_t> firsts;
  for (const auto& segment : *segments) firsts.push_back(segment.first);
  return firsts;
}

TEST(ReplayLogTest, AResumeReadsBackTheTicksBeforeItsStepAndCutsTheRest) {
  dreamfleet::testing::ScopedTempDir temp("replay_log_test_");
  const std::string dir = temp.path() + "/replay";
  std::vector<Seen> seen;
  {
    absl::StatusOr<std::unique_ptr<ReplayLog>> log =
        ReplayLog::Open(dir, Layout(), 0, /*resume=*/false, Collect(&seen), nullptr,
                        /*segment_ticks=*/3);
    ASSERT_TRUE(log.ok()) << log.status();
    Write(**log, 0, 10);
    ASSERT_TRUE((*log)->Sync().ok());
  }
  EXPECT_TRUE(seen.empty());
  // Segments of 3 ticks, named by their first env step.
  EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(0, 6, 12, 18));

  // A checkpoint at env step 14 holds ticks 0..6 (env steps 0..12); 7..9 are cut.
  ReplayLogResume resume;
  {
    absl::StatusOr<std::unique_ptr<ReplayLog>> log =
        ReplayLog::Open(dir, Layout(), 14, true, Collect(&seen), &resume, 3);
    ASSERT_TRUE(log.ok()) << log.status();
    ExpectTicks(seen, Range(0, 7));
    EXPECT_EQ(resume.ticks, 7);
    EXPECT_EQ(resume.first_env_step, 0);
    EXPECT_EQ(resume.last_env_step, 12);
    EXPECT_EQ(resume.cut, 3);
    EXPECT_EQ(resume.damaged, 0);
    // Writing goes on from the resume point in a new segment.
    EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(0, 6, 12, 14));
    Write(**log, 7, 8);
  }
  seen.clear();
  {
    absl::StatusOr<std::unique_ptr<ReplayLog>> again =
        ReplayLog::Open(dir, Layout(), 1000, true, Collect(&seen), &resume, 3);
    ASSERT_TRUE(again.ok()) << again.status();
    ExpectTicks(seen, Range(0, 8));
    EXPECT_EQ(resume.cut, 0);
  }
  // That open left a segment at env step 1000 (its layout only); resuming at 14 again removes
  // it with everything else at or after 14.
  EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(0, 6, 12, 14, 1000));
  seen.clear();
  {
    absl::StatusOr<std::unique_ptr<ReplayLog>> back =
        ReplayLog::Open(dir, Layout(), 14, true, Collect(&seen), &resume, 3);
    ASSERT_TRUE(back.ok()) << back.status();
    ExpectTicks(seen, Range(0, 7));
    EXPECT_EQ(resume.cut, 1);  // tick 7
    EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(0, 6, 12, 14));
  }
  ASSERT_TRUE(ReplayLog::HoldsTicks(dir).ok());
  EXPECT_TRUE(*ReplayLog::HoldsTicks(dir));
  // A fresh run empties the directory and starts over.
  absl::StatusOr<std::unique_ptr<ReplayLog>> fresh =
      ReplayLog::Open(dir, Layout(), 0, false, Collect(&seen), &resume, 3);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(0));
  // Its layout record alone is no logged step.
  EXPECT_FALSE(*ReplayLog::HoldsTicks(dir));
}

TEST(ReplayLogTest, ATornTailIsCutAndTheTicksBeforeItKept) {
  dreamfleet::testing::ScopedTempDir temp("replay_log_torn_");
  const std::string dir = temp.path();
  std::vector<Seen> seen;
  WriteFresh(dir, 5, 100);
  const std::string path = ReplayLog::Segments(dir)->at(0).second;
  const auto whole = std::filesystem::file_size(path);
  // A crash in the middle of the sixth record.
  std::ofstream(path, std::ios::binary | std::ios::app)
      << std::string("\x40\x00\x00\x00\x12\x34", 6);
  ReplayLogResume resume;
  {
    absl::StatusOr<std::unique_ptr<ReplayLog>> log =
        ReplayLog::Open(dir, Layout(), 1000, true, Collect(&seen), &resume, 100);
    ASSERT_TRUE(log.ok()) << log.status();
    ExpectTicks(seen, Range(0, 5));
    EXPECT_EQ(resume.torn, 1);
    EXPECT_EQ(resume.damaged, 0);  // a crash's torn tail is not damage
  }
  EXPECT_EQ(std::filesystem::file_size(path), whole);
  seen.clear();
  absl::StatusOr<std::unique_ptr<ReplayLog>> again =
      ReplayLog::Open(dir, Layout(), 1000, true, Collect(&seen), &resume, 100);
  ASSERT_TRUE(again.ok()) << again.status();
  ExpectTicks(seen, Range(0, 5));
  EXPECT_EQ(resume.torn, 0);
}

TEST(ReplayLogTest, ADamagedRecordInAnOlderSegmentCostsOnlyItself) {
  dreamfleet::testing::ScopedTempDir temp("replay_log_damage_");
  const std::string dir = temp.path();
  std::vector<Seen> seen;
  WriteFresh(dir, 10, 3);
  // One flipped byte inside tick 3, the first tick of the segment at env step 6 (after its layout
  // record: 8 bytes of framing + 44 of payload).
  const std::string path = ReplayLog::Segments(dir)->at(1).second;
  FlipByte(path, 52 + 12);
  ReplayLogResume resume;
  absl::StatusOr<std::unique_ptr<ReplayLog>> log =
      ReplayLog::Open(dir, Layout(), 1000, true, Collect(&seen), &resume, 3);
  ASSERT_TRUE(log.ok()) << log.status();
  // Tick 3 is lost; tick 4 starts new episodes, and the later segments are all there.
  std::vector<int> ticks = Range(0, 10);
  ticks.erase(ticks.begin() + 3);
  ExpectTicks(seen, ticks, /*starts=*/{4});
  EXPECT_EQ(resume.damaged, 1);
  EXPECT_THAT(resume.damage, ::testing::HasSubstr(path));
  EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(0, 6, 12, 18, 1000));
}

TEST(ReplayLogTest, ADamagedLayoutRecordCostsOnlyItself) {
  dreamfleet::testing::ScopedTempDir temp("replay_log_layout_damage_");
  const std::string dir = temp.path();
  std::vector<Seen> seen;
  WriteFresh(dir, 10, 3);
  const std::string path = ReplayLog::Segments(dir)->at(1).second;
  FlipByte(path, 8 + 2);  // inside the layout record's magic
  ReplayLogResume resume;
  absl::StatusOr<std::unique_ptr<ReplayLog>> log =
      ReplayLog::Open(dir, Layout(), 1000, true, Collect(&seen), &resume, 3);
  ASSERT_TRUE(log.ok()) << log.status();
  // Every tick is read; the first after the damage starts new episodes.
  ExpectTicks(seen, Range(0, 10), /*starts=*/{3});
  EXPECT_EQ(resume.damaged, 1);
  EXPECT_THAT(resume.damage, ::testing::HasSubstr(path));
}

TEST(ReplayLogTest, ALogOfAnotherLayoutIsRefusedNamingBoth) {
  dreamfleet::testing::ScopedTempDir temp("replay_log_layout_");
  const std::string dir = temp.path() + "/replay";
  std::vector<Seen> seen;
  WriteFresh(dir, 2, 4096);
  ReplayLogLayout other = Layout();
  other.envs = 3;
  absl::StatusOr<std::unique_ptr<ReplayLog>> refused =
      ReplayLog::Open(dir, other, 4, true, Collect(&seen));
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  const std::string message(refused.status().message());
  EXPECT_THAT(message, ::testing::HasSubstr(dir));
  EXPECT_THAT(message, ::testing::HasSubstr("written by a run with 2 envs"));
  EXPECT_THAT(message, ::testing::HasSubstr("this run has 3 envs"));
  EXPECT_TRUE(seen.empty());
  EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(0));  // nothing deleted or cut
  seen.clear();
  absl::StatusOr<std::unique_ptr<ReplayLog>> same =
      ReplayLog::Open(dir, Layout(), 4, true, Collect(&seen));
  ASSERT_TRUE(same.ok()) << same.status();
  ExpectTicks(seen, Range(0, 2));

  // A tick of the wrong shape is refused too.
  const Step one = MakeStep(0, 0);
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*same)->Append(4, {RecordOf(one)}, one.deter.data(), one.stoch.data())));
  services::StepRecord no_vector = RecordOf(one);
  no_vector.vector = nullptr;
  std::vector<float> deter = {0, 0, 0, 0}, stoch(8, 0.0f);
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*same)->Append(4, {RecordOf(one), no_vector}, deter.data(), stoch.data())));
  EXPECT_TRUE(absl::IsInvalidArgument((*same)->Append(4, {RecordOf(one), RecordOf(one)})));

  // A directory that cannot be made is an error at Open, naming it.
  const std::string file = temp.path() + "/a_file";
  std::ofstream(file) << "x";
  absl::StatusOr<std::unique_ptr<ReplayLog>> unmade =
      ReplayLog::Open(file + "/replay", Layout(), 0, false, Collect(&seen));
  ASSERT_FALSE(unmade.ok());
  EXPECT_THAT(std::string(unmade.status().message()), ::testing::HasSubstr(file + "/replay"));
}

TEST(ReplayLogTest, PruneDeletesOnlySegmentsOlderThanTheReplayCanHold) {
  dreamfleet::testing::ScopedTempDir temp("replay_log_prune_");
  const std::string dir = temp.path();
  std::vector<Seen> seen;
  absl::StatusOr<std::unique_ptr<ReplayLog>> log =
      ReplayLog::Open(dir, Layout(), 0, false, Collect(&seen), nullptr, 2);
  ASSERT_TRUE(log.ok()) << log.status();
  Write(**log, 0, 10);  // segments at env steps 0, 4, 8, 12, 16
  absl::StatusOr<int> pruned = (*log)->Prune(9);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 2);  // 0-2 and 4-6 lie before 9; 8-10 does not
  EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(8, 12, 16));
  pruned = (*log)->Prune(1000);  // never the open segment
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 2);
  EXPECT_THAT(Firsts(dir), ::testing::ElementsAre(16));
}

}  // namespace
}  // namespace dreamfleet::learner
