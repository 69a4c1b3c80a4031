// ReplayLog: the single-process trainer's replay on disk, so that a run resumed from its own
// checkpoint (bench_learning, dreamfleet-train-local --replay-log) starts with the replay it had
// at that checkpoint instead of an empty one: the job the replay shards' write-ahead log does for
// `dreamfleet up`. The official DreamerV3 keeps its replay in the run directory for the same
// reason.
//
// On disk: a directory of segment files `steps-<first env step, 12 digits>.log` of records
// (services/record_file.h: length, CRC-32, payload, so a torn tail is detected). A segment's first
// record is its layout (env count, observation sizes, latent sizes); each later record is one
// trainer tick, the current step of every env: u64 env steps before the tick, u32 envs, u32 raw
// bytes, then the steps zlib-compressed (level 1; MinAtar's 0/1 grids shrink ~35x), each step its
// observations (image bytes, vector floats, text ints), action, reward and flags, then, with
// replay context, the actor's latent (deter floats, stoch as class indices). A segment is closed
// after `segment_ticks` ticks; Prune() deletes segments that hold only steps too old to be in the
// replay. Not logged: write-backs of replay context (the learner's posterior latents; resumed
// steps keep the actor's) and priorities (resumed steps start at the initial one).
// Data flow: LocalTrainer::Tick -> Append; LocalTrainer::Save -> Sync, checkpoint, Prune;
// LocalTrainer::Build -> Open (on a resume: every logged tick before the checkpoint -> the
// replay's Add).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/step_record.h"

namespace dreamfleet::services {
class RecordWriter;
}

namespace dreamfleet::learner {

struct ReplayLogLayout {
  services::StepShape shape;
  int envs = 1;
  // With replay context: the latent's deter size and its stoch variables and classes (0: none).
  int64_t deter = 0;
  int64_t stoch = 0;
  int64_t classes = 0;
  // Bytes of one step in a tick record (before compression).
  int64_t step_bytes() const;
  std::string Describe() const;
  bool operator==(const ReplayLogLayout& other) const;
};

// What Open() read back on a resume.
struct ReplayLogResume {
  int64_t ticks = 0;            // ticks handed to `add`
  int64_t first_env_step = -1;  // env steps before the first of them (-1: none)
  int64_t last_env_step = -1;   // env steps before the last of them
  int64_t cut = 0;              // tick records cut: logged at or after the resume step
  int64_t damaged = 0;          // damaged stretches skipped (each costs its ticks only)
  std::string damage;           // the first of them ("" = none)
  int64_t torn = 0;             // a torn tail (a crash while writing it) cut from the last segment
};

class ReplayLog {
 public:
  // One logged step of env `env`: its record (pointers valid during the call) and, with replay
  // context, its deter [deter] and one-hot stoch [stoch x classes] (else null).
  using AddFn = std::function<void(int env, const services::StepRecord& step, const float* deter,
                                   const float* stoch)>;

  // Opens `dir` (created when missing) for a run that continues from env step `env_step`.
  // resume false: a fresh log; the segments there are deleted. resume true: the ticks logged
  // before `env_step` are handed to `add` in order and the later ones cut from the files (and
  // synced). A damaged record is skipped (the next tick's steps start new episodes; a damaged
  // layout record costs only itself too: the ticks after it are checked by their own headers)
  // and a torn tail of the last segment cut. A segment of another layout is FAILED_PRECONDITION
  // naming both, before anything is changed.
  // Writing continues in a new segment, created here (so an unwritable directory fails now).
  static absl::StatusOr<std::unique_ptr<ReplayLog>> Open(
      const std::string& dir, const ReplayLogLayout& layout, int64_t env_step, bool resume,
      const AddFn& add, ReplayLogResume* resumed = nullptr, int64_t segment_ticks = 4096);
  ~ReplayLog();
  ReplayLog(const ReplayLog&) = delete;
  ReplayLog& operator=(const ReplayLog&) = delete;

  // Logs one tick: `steps` (one per env) taken after env_steps_before env steps, with replay
  // context `deter` [envs, deter] and the one-hot `stoch` [envs, stoch x classes] (else null).
  absl::Status Append(int64_t env_steps_before, const std::vector<services::StepRecord>& steps,
                      const float* deter = nullptr, const float* stoch = nullptr);
  absl::Status Sync();  // fdatasync of the open segment
  // Deletes the segments all of whose ticks lie before env step `keep_from` (never the open one).
  // Returns how many it deleted.
  absl::StatusOr<int> Prune(int64_t keep_from);

  // Whether `dir` holds a logged tick (or a record that is not a layout): a run that does not
  // resume from it must not empty it unless it is its own.
  static absl::StatusOr<bool> HoldsTicks(const std::string& dir);
  // The segment files in `dir` with their first env step, in order.
  static absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> Segments(
      const std::string& dir);
  const std::string& dir() const { return dir_; }

 private:
  ReplayLog(std::string dir, const ReplayLogLayout& layout, int64_t segment_ticks);
  absl::Status StartSegment(int64_t first_env_step);

  std::string dir_;
  ReplayLogLayout layout_;
  int64_t segment_ticks_;
  std::unique_ptr<services::RecordWriter> writer_;
  int64_t segment_first_ = -1;  // first env step of the open segment
  int64_t ticks_in_segment_ = 0;
  std::string raw_;         // one tick's steps, uncompressed
  std::string compressed_;  // the record's payload
};

}  // namespace dreamfleet::learner
