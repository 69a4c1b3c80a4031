// Atomic checkpoint directories; layout and protocol in checkpoint.h.
#include "learner/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "services/durable_file.h"
#include "services/hash.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

namespace fs = std::filesystem;
using services::SyncDirectory;
using services::WriteFileDurably;

constexpr char kManifest[] = "MANIFEST";
constexpr char kManifestHeader[] = "dreamfleet-checkpoint v1";
using services::CheckpointName;
using services::kCheckpointCountersFile;
using services::kCheckpointPrefix;
using services::kCheckpointTmpSuffix;
using services::ParseCheckpointName;
constexpr char kTensorsFile[] = "tensors.pt";
constexpr char kConfigFile[] = "config.yaml";
constexpr char kModulePrefix[] = "module-";
constexpr char kOptimizerPrefix[] = "optimizer-";
constexpr char kPtSuffix[] = ".pt";

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

bool IsFileNameSafe(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
  });
}

bool IsTokenSafe(const std::string& name) {
  return !name.empty() && std::none_of(name.begin(), name.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  });
}

std::string PickleNamedTensors(const std::map<std::string, torch::Tensor>& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor.detach().cpu());
  std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  return std::string(bytes.begin(), bytes.end());
}

absl::StatusOr<std::map<std::string, torch::Tensor>> UnpickleNamedTensors(
    const std::string& data, const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  try {
    c10::IValue value = torch::pickle_load(std::vector<char>(data.begin(), data.end()));
    if (!value.isGenericDict()) {
      return absl::DataLossError(absl::StrCat(path, " does not hold a dict of tensors"));
    }
    for (const auto& entry : value.toGenericDict()) {
      if (!entry.key().isString() || !entry.value().isTensor()) {
        return absl::DataLossError(absl::StrCat(path, " holds a non-tensor entry"));
      }
      out[entry.key().toStringRef()] = entry.value().toTensor();
    }
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat("cannot parse ", path, ": ", e.what_without_backtrace()));
  }
  return out;
}

std::map<std::string, torch::Tensor> ModuleTensors(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    tensors[item.key()] = item.value();
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    if (item.value().defined()) tensors[item.key()] = item.value();
  }
  return tensors;
}

struct ManifestEntry {
  uint64_t size = 0;
  uint64_t hash = 0;
};

absl::StatusOr<std::map<std::string, ManifestEntry>> ReadManifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifest).string();
  absl::StatusOr<std::string> text = services::ReadCheckpointFile(path);
  if (!text.ok()) {
    return absl::DataLossError(
        absl::StrCat("checkpoint ", dir, " has no readable ", kManifest, " (", path, ")"));
  }
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kManifestHeader) {
    return absl::DataLossError(absl::StrCat(path, ": missing header \"", kManifestHeader, "\""));
  }
  std::map<std::string, ManifestEntry> entries;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> fields = absl::StrSplit(lines[i], ' ');
    ManifestEntry entry;
    if (fields.size() != 3 || !IsFileNameSafe(fields[0]) ||
        !absl::SimpleAtoi(fields[1], &entry.size) ||
        !absl::SimpleHexAtoi(fields[2], &entry.hash)) {
      return absl::DataLossError(
          absl::StrCat(path, ": malformed line ", i + 1, ": \"", lines[i], "\""));
    }
    entries[fields[0]] = entry;
  }
  return entries;
}

}  // namespace

absl::Status WriteCheckpoint(const std::string& dir, int64_t step,
                             const CheckpointContents& contents,
                             const CheckpointOptions& options) {
  if (step < 0) return absl::InvalidArgumentError(absl::StrCat("negative step ", step));
  // Serialise everything into memory first: a failure here leaves no trace on disk.
  std::map<std::string, std::string> files;
  try {
    for (const auto& [name, module] : contents.modules) {
      if (!IsFileNameSafe(name) || module == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad checkpoint module name or null module: \"", name, "\""));
      }
      files[absl::StrCat(kModulePrefix, name, kPtSuffix)] =
          PickleNamedTensors(ModuleTensors(*module));
    }
    for (const auto& [name, optimizer] : contents.optimizers) {
      if (!IsFileNameSafe(name) || optimizer == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad checkpoint optimizer name or null optimizer: \"", name, "\""));
      }
      torch::serialize::OutputArchive archive;
      optimizer->save(archive);
      std::string bytes;
      archive.save_to([&bytes](const void* data, size_t size) -> size_t {
        bytes.append(static_cast<const char*>(data), size);
        return size;
      });
      files[absl::StrCat(kOptimizerPrefix, name, kPtSuffix)] = std::move(bytes);
    }
    for (const auto& [name, tensor] : contents.tensors) {
      if (!IsTokenSafe(name) || !tensor.defined()) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad checkpoint tensor name or undefined tensor: \"", name, "\""));
      }
    }
    files[kTensorsFile] = PickleNamedTensors(contents.tensors);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("cannot serialise checkpoint ", step, ": ", e.what_without_backtrace()));
  }
  std::string counters;
  for (const auto& [name, value] : contents.counters) {
    if (!IsTokenSafe(name)) {
      return absl::InvalidArgumentError(absl::StrCat("bad counter name \"", name, "\""));
    }
    absl::StrAppend(&counters, name, " ", value, "\n");
  }
  files[kCheckpointCountersFile] = std::move(counters);
  files[kConfigFile] = contents.config_text;

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  const std::string name = CheckpointName(step);
  const std::string final_dir = (fs::path(dir) / name).string();
  const std::string tmp_dir = final_dir + kCheckpointTmpSuffix;
  if (fs::exists(final_dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("checkpoint ", final_dir, " already exists"));
  }
  fs::remove_all(tmp_dir, ec);  // A torn earlier attempt at the same step.
  if (!fs::create_directory(tmp_dir, ec) || ec) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp_dir, ": ", ec.message()));
  }
  std::string manifest = absl::StrCat(kManifestHeader, "\n");
  for (const auto& [file, data] : files) {
    RETURN_IF_ERROR(WriteFileDurably((fs::path(tmp_dir) / file).string(), data));
    absl::StrAppendFormat(&manifest, "%s %d %016x\n", file, data.size(), services::Fnv1a64(data));
  }
  RETURN_IF_ERROR(WriteFileDurably((fs::path(tmp_dir) / kManifest).string(), manifest));
  RETURN_IF_ERROR(SyncDirectory(tmp_dir));
  if (::rename(tmp_dir.c_str(), final_dir.c_str()) != 0) {
    return ErrnoError(absl::StrCat("cannot rename ", tmp_dir, " to"), final_dir);
  }
  RETURN_IF_ERROR(SyncDirectory(dir));
  RETURN_IF_ERROR(services::PointLatestAt(dir, name));

  if (options.keep_last > 0) {
    ASSIGN_OR_RETURN(std::vector<int64_t> steps, ListCheckpoints(dir));
    const int64_t excess = static_cast<int64_t>(steps.size()) - options.keep_last;
    for (int64_t i = 0; i < excess; ++i) {
      if (steps[i] == step) continue;
      fs::remove_all(fs::path(dir) / CheckpointName(steps[i]), ec);
      if (ec) {
        return absl::InternalError(absl::StrCat("cannot remove old checkpoint ",
                                                CheckpointName(steps[i]), " in ", dir, ": ",
                                                ec.message()));
      }
    }
  }
  return absl::OkStatus();
}

const std::map<std::string, torch::Tensor>* LoadedCheckpoint::module_tensors(
    const std::string& name) const {
  auto it = modules_.find(name);
  return it == modules_.end() ? nullptr : &it->second;
}

absl::Status LoadedCheckpoint::RestoreModule(const std::string& name,
                                             torch::nn::Module& module) const {
  const std::map<std::string, torch::Tensor>* saved = module_tensors(name);
  if (saved == nullptr) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", path_, " has no module \"", name, "\""));
  }
  std::map<std::string, torch::Tensor> targets = ModuleTensors(module);
  for (const auto& [key, tensor] : *saved) {
    if (targets.count(key) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint ", path_, " module \"", name,
                                                     "\" has \"", key,
                                                     "\" which the model does not have"));
    }
  }
  for (const auto& [key, target] : targets) {
    auto it = saved->find(key);
    if (it == saved->end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint ", path_, " module \"", name, "\" lacks \"", key, "\""));
    }
    if (it->second.sizes() != target.sizes()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "checkpoint %s module \"%s\" tensor \"%s\" has shape %s, the model has %s", path_,
          name, key, c10::str(it->second.sizes()), c10::str(target.sizes())));
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& [key, target] : targets) target.copy_(saved->at(key));
  return absl::OkStatus();
}

absl::Status LoadedCheckpoint::RestoreOptimizer(const std::string& name,
                                                torch::optim::Optimizer& optimizer,
                                                std::optional<torch::Device> device) const {
  auto it = optimizer_bytes_.find(name);
  if (it == optimizer_bytes_.end()) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint ", path_, " has no optimizer \"", name, "\""));
  }
  if (!device.has_value()) {
    for (const auto& group : optimizer.param_groups()) {
      if (!group.params().empty()) {
        device = group.params().front().device();
        break;
      }
    }
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(it->second.data(), it->second.size(),
                      device.has_value() ? c10::optional<torch::Device>(*device)
                                         : c10::optional<torch::Device>());
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot restore optimizer from ", (fs::path(path_) / (kOptimizerPrefix + name + kPtSuffix)).string(),
        ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path) {
  LoadedCheckpoint ckpt;
  ckpt.path_ = path;
  const std::string base = fs::path(path).filename().string();
  if (!ParseCheckpointName(base, &ckpt.step_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is not a checkpoint directory (expected ", kCheckpointPrefix, "<step>)"));
  }
  ASSIGN_OR_RETURN(auto manifest, ReadManifest(path));
  for (const auto& [file, entry] : manifest) {
    const std::string file_path = (fs::path(path) / file).string();
    absl::StatusOr<std::string> data = services::ReadCheckpointFile(file_path);
    if (!data.ok()) {
      return absl::DataLossError(absl::StrCat("checkpoint file ", file_path, " is missing"));
    }
    if (data->size() != entry.size) {
      return absl::DataLossError(absl::StrCat("checkpoint file ", file_path, " has ",
                                              data->size(), " bytes, manifest says ",
                                              entry.size));
    }
    const uint64_t hash = services::Fnv1a64(*data);
    if (hash != entry.hash) {
      return absl::DataLossError(absl::StrFormat(
          "checkpoint file %s is corrupted: checksum %016x, manifest says %016x", file_path,
          hash, entry.hash));
    }
    absl::string_view name = file;
    if (absl::ConsumePrefix(&name, kModulePrefix) && absl::ConsumeSuffix(&name, kPtSuffix)) {
      ASSIGN_OR_RETURN(auto tensors, UnpickleNamedTensors(*data, file_path));
      ckpt.modules_[std::string(name)] = std::move(tensors);
    } else if (name = file; absl::ConsumePrefix(&name, kOptimizerPrefix) &&
                            absl::ConsumeSuffix(&name, kPtSuffix)) {
      ckpt.optimizer_bytes_[std::string(name)] = *std::move(data);
    } else if (file == kTensorsFile) {
      ASSIGN_OR_RETURN(auto tensors, UnpickleNamedTensors(*data, file_path));
      ckpt.tensors_ = std::move(tensors);
    } else if (file == kCheckpointCountersFile) {
      ASSIGN_OR_RETURN(ckpt.counters_, services::ParseCheckpointCounters(*data, file_path));
    } else if (file == kConfigFile) {
      ckpt.config_text_ = *std::move(data);
    }
  }
  for (const char* required : {kTensorsFile, kCheckpointCountersFile, kConfigFile}) {
    if (manifest.count(required) == 0) {
      return absl::DataLossError(absl::StrCat("checkpoint ", path, " manifest lacks ", required));
    }
  }
  return ckpt;
}

absl::StatusOr<LoadedCheckpoint> LoadLatestCheckpoint(const std::string& dir) {
  ASSIGN_OR_RETURN(std::string path, services::LatestCheckpointDir(dir));
  return LoadCheckpoint(path);
}

}  // namespace dreamfleet::learner
