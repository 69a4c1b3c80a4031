#include "services/command_line.h"

#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dreamfleet::services {

CommandLine::CommandLine(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void CommandLine::AddString(std::string name, std::string* value, std::string help) {
  flags_.push_back({std::move(name), value, std::move(help), value->empty() ? "" : "\"" + *value + "\""});
}
void CommandLine::AddInt(std::string name, int64_t* value, std::string help) {
  flags_.push_back({std::move(name), value, std::move(help), absl::StrCat(*value)});
}
void CommandLine::AddDouble(std::string name, double* value, std::string help) {
  flags_.push_back({std::move(name), value, std::move(help), absl::StrCat(*value)});
}
void CommandLine::AddBool(std::string name, bool* value, std::string help) {
  flags_.push_back({std::move(name), value, std::move(help), *value ? "true" : ""});
}
void CommandLine::AddRepeated(std::string name, std::vector<std::string>* values,
                              std::string help) {
  flags_.push_back({std::move(name), values, std::move(help), ""});
}
void CommandLine::AddConfigFlags() {
  AddString("config", &config_path_,
            "YAML config file (default: the embedded configs/default.yaml).");
  AddRepeated("set", &overrides_,
              "Override one config key, e.g. --set replay.shards=2 (repeatable).");
}

const CommandLine::Flag* CommandLine::Find(const std::string& name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

absl::Status CommandLine::Parse(int argc, char** argv, int first, bool allow_positional) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      if (allow_positional) {
        positional_.push_back(arg);
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (auto* b = std::get_if<bool*>(&flag->value)) {
      if (!has_value) {
        **b = true;
      } else if (value == "true" || value == "1") {
        **b = true;
      } else if (value == "false" || value == "0") {
        **b = false;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " expects true or false, got \"", value, "\""));
      }
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = argv[++i];
    }
    if (auto* s = std::get_if<std::string*>(&flag->value)) {
      **s = value;
    } else if (auto* n = std::get_if<int64_t*>(&flag->value)) {
      if (!absl::SimpleAtoi(value, *n)) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " expects an integer, got \"", value, "\""));
      }
    } else if (auto* d = std::get_if<double*>(&flag->value)) {
      if (!absl::SimpleAtod(value, *d)) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " expects a number, got \"", value, "\""));
      }
    } else if (auto* r = std::get_if<std::vector<std::string>*>(&flag->value)) {
      (*r)->push_back(value);
    }
  }
  return absl::OkStatus();
}

std::string CommandLine::Help() const {
  std::string out = absl::StrCat("Usage: ", usage_, "\n\n", description_, "\n\nFlags:\n");
  for (const Flag& flag : flags_) {
    std::string left = absl::StrCat("  --", flag.name);
    if (!std::holds_alternative<bool*>(flag.value)) {
      left += std::holds_alternative<std::vector<std::string>*>(flag.value) ? " VALUE..." : " VALUE";
    }
    absl::StrAppend(&out, absl::StrFormat("%-28s %s", left, flag.help));
    if (!flag.default_text.empty()) absl::StrAppend(&out, " [default: ", flag.default_text, "]");
    out += "\n";
  }
  absl::StrAppend(&out, absl::StrFormat("%-28s %s\n", "  --help", "Show this help and exit."));
  return out;
}

absl::StatusOr<Config> CommandLine::LoadConfig() const {
  return services::LoadConfig(config_path_, overrides_);
}

bool ParseCommandLineOrExit(CommandLine& command_line, int argc, char** argv, int* exit_code,
                            int first, bool allow_positional) {
  absl::Status status = command_line.Parse(argc, argv, first, allow_positional);
  if (command_line.help_requested()) {
    std::cout << command_line.Help();
    *exit_code = 0;
    return false;
  }
  if (!status.ok()) {
    std::cerr << "error: " << status.message() << "\n";
    *exit_code = 2;
    return false;
  }
  return true;
}

std::optional<Config> LoadConfigOrExit(const CommandLine& command_line, const char* prefix,
                                       bool validate_cluster, int* exit_code) {
  absl::StatusOr<Config> config = command_line.LoadConfig();
  absl::Status status = config.status();
  if (status.ok() && validate_cluster) status = ValidateCluster(*config);
  if (!status.ok()) {
    std::cerr << prefix << ": " << status.message() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  return *std::move(config);
}

}  // namespace dreamfleet::services
