// Atomic learner checkpoints. One checkpoint is a directory
//   <dir>/ckpt-<step>/   module-<name>.pt      named parameters + buffers
//                        optimizer-<name>.pt   torch::optim archive
//                        tensors.pt            extra named tensors (normaliser...)
//                        counters.txt          int64 counters, "name value" lines
//                        config.yaml           the config text
//                        MANIFEST              size + FNV-1a 64 checksum per file
// The .pt files of modules and tensors are torch::pickle_save'd dicts of CPU
// tensors (readable with torch.load in Python); optimiser files are
// torch::serialize archives.
// written first into <dir>/ckpt-<step>.tmp/, every file fsynced, the directory
// renamed into place, and then <dir>/latest (holding "ckpt-<step>") replaced
// atomically (write latest.tmp, fsync, rename, fsync <dir>). A crash at any
// point leaves either the old or the new checkpoint as latest; stale .tmp
// directories are ignored by loads and removed by the next write.
// Data flow: trainer -> WriteCheckpoint(); on start, LoadLatestCheckpoint() ->
// LoadedCheckpoint::Restore{Module,Optimizer}() and the plain fields.
// All LibTorch (de)serialisation stays inside this file; errors are
// absl::Status values naming the file that was wrong.
#ifndef DREAMFLEET_LEARNER_CHECKPOINT_H_
#define DREAMFLEET_LEARNER_CHECKPOINT_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/checkpoint_layout.h"

namespace dreamfleet::learner {

// What to save. Pointers are borrowed for the duration of WriteCheckpoint only.
// Module and optimizer names must be non-empty and use only [A-Za-z0-9_.-]
// (they become file names); counter and tensor names must not contain
// whitespace.
struct CheckpointContents {
  std::map<std::string, const torch::nn::Module*> modules;
  std::map<std::string, const torch::optim::Optimizer*> optimizers;
  std::map<std::string, int64_t> counters;
  std::map<std::string, torch::Tensor> tensors;
  std::string config_text;
};

struct CheckpointOptions {
  // Keep at most this many complete checkpoints (oldest removed after a
  // successful write); 0 keeps all.
  int keep_last = 3;
};

// Writes <dir>/ckpt-<step>/ atomically and points <dir>/latest at it. Creates
// <dir> if needed. Fails if ckpt-<step> already exists.
absl::Status WriteCheckpoint(const std::string& dir, int64_t step,
                             const CheckpointContents& contents,
                             const CheckpointOptions& options = {});

// A checkpoint read fully into memory (CPU tensors), verified against its
// MANIFEST.
class LoadedCheckpoint {
 public:
  int64_t step() const { return step_; }
  const std::string& path() const { return path_; }
  const std::map<std::string, int64_t>& counters() const { return counters_; }
  const std::map<std::string, torch::Tensor>& tensors() const { return tensors_; }
  const std::string& config_text() const { return config_text_; }
  // Named parameters + buffers of one saved module (CPU).
  const std::map<std::string, torch::Tensor>* module_tensors(const std::string& name) const;

  // Copies the saved parameters and buffers into `module` (same names and
  // shapes required, every one present on both sides; values are copied onto
  // the module's own devices and dtypes).
  absl::Status RestoreModule(const std::string& name, torch::nn::Module& module) const;
  // Loads the saved optimiser state into `optimizer`, whose parameters must
  // already be the restored module parameters in the same order. State
  // tensors are moved to `device`, or to the device of the optimizer's first
  // parameter when not given.
  absl::Status RestoreOptimizer(const std::string& name, torch::optim::Optimizer& optimizer,
                                std::optional<torch::Device> device = std::nullopt) const;

 private:
  friend absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path);
  int64_t step_ = 0;
  std::string path_;
  std::map<std::string, std::map<std::string, torch::Tensor>> modules_;
  std::map<std::string, std::string> optimizer_bytes_;
  std::map<std::string, int64_t> counters_;
  std::map<std::string, torch::Tensor> tensors_;
  std::string config_text_;
};

// Loads one checkpoint directory (…/ckpt-<step>).
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path);

// Loads the checkpoint <dir>/latest points at; without a latest file, the
// complete ckpt-<step> directory with the highest step. NotFound when <dir>
// holds no checkpoint (a fresh run); other errors name the broken file.
absl::StatusOr<LoadedCheckpoint> LoadLatestCheckpoint(const std::string& dir);

// The directory layout without LibTorch (services/checkpoint_layout.h): removing every
// checkpoint of a directory and listing the complete ones.
using services::ListCheckpoints;
using services::RemoveCheckpoints;

}  // namespace dreamfleet::learner

#endif  // DREAMFLEET_LEARNER_CHECKPOINT_H_
