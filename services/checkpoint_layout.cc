// The checkpoint directory layout; see checkpoint_layout.h.
#include "services/checkpoint_layout.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/durable_file.h"

namespace dreamfleet::services {
namespace fs = std::filesystem;

std::string CheckpointName(int64_t step) { return absl::StrCat(kCheckpointPrefix, step); }

bool ParseCheckpointName(const std::string& name, int64_t* step) {
  absl::string_view rest = name;
  if (!absl::ConsumePrefix(&rest, kCheckpointPrefix)) return false;
  if (rest.empty() ||
      !std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return absl::SimpleAtoi(rest, step);
}

absl::StatusOr<std::vector<int64_t>> ListCheckpoints(const std::string& dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  for (const fs::directory_entry& entry : it) {
    int64_t step = 0;
    if (entry.is_directory(ec) && ParseCheckpointName(entry.path().filename().string(), &step)) {
      steps.push_back(step);
    }
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

absl::StatusOr<std::string> ReadCheckpointFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return text.str();
}

absl::StatusOr<std::string> LatestCheckpointDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("no checkpoint directory ", dir));
  }
  const fs::path latest = fs::path(dir) / kCheckpointLatestFile;
  if (fs::exists(latest, ec)) {
    absl::StatusOr<std::string> text = ReadCheckpointFile(latest.string());
    if (!text.ok()) return text.status();
    const std::string name(absl::StripAsciiWhitespace(*text));
    int64_t step = 0;
    if (!ParseCheckpointName(name, &step)) {
      return absl::DataLossError(absl::StrCat(latest.string(), " holds \"", name, "\", not ",
                                              kCheckpointPrefix, "<step>"));
    }
    return (fs::path(dir) / name).string();
  }
  absl::StatusOr<std::vector<int64_t>> steps = ListCheckpoints(dir);
  if (!steps.ok()) return steps.status();
  if (steps->empty()) return absl::NotFoundError(absl::StrCat("no checkpoint in ", dir));
  return (fs::path(dir) / CheckpointName(steps->back())).string();
}

absl::Status PointLatestAt(const std::string& dir, const std::string& name) {
  return ReplaceFileDurably((fs::path(dir) / kCheckpointLatestFile).string(), name + "\n");
}

absl::StatusOr<std::map<std::string, int64_t>> ParseCheckpointCounters(const std::string& text,
                                                                       const std::string& path) {
  std::map<std::string, int64_t> counters;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    int64_t value = 0;
    if (fields.size() != 2 || !absl::SimpleAtoi(fields[1], &value)) {
      return absl::DataLossError(absl::StrCat(path, ": malformed counter line \"", line, "\""));
    }
    counters[fields[0]] = value;
  }
  return counters;
}

absl::StatusOr<std::map<std::string, int64_t>> ReadCheckpointCounters(const std::string& ckpt_dir) {
  const std::string path = (fs::path(ckpt_dir) / kCheckpointCountersFile).string();
  absl::StatusOr<std::string> text = ReadCheckpointFile(path);
  if (!text.ok()) return text.status();
  return ParseCheckpointCounters(*text, path);
}

absl::Status RemoveCheckpoints(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    std::string base = entry.path().filename().string();
    if (absl::EndsWith(base, kCheckpointTmpSuffix)) {
      base.resize(base.size() - (sizeof(kCheckpointTmpSuffix) - 1));
    }
    int64_t step = 0;
    if (base == kCheckpointLatestFile || ParseCheckpointName(base, &step)) {
      doomed.push_back(entry.path());
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  }
  for (const fs::path& path : doomed) {
    fs::remove_all(path, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot remove ", path.string(), ": ", ec.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace dreamfleet::services
