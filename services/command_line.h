// Command-line flags for every dreamfleet binary: `--name value` or `--name=value`, `--help`, and
// the shared config flags `--config FILE` and repeated `--set section.key=value`. Unknown flags are
// errors that name the flag.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/config.h"

namespace dreamfleet::services {

class CommandLine {
 public:
  // `usage` is the first line of --help, e.g. "dreamfleet-replay [flags]".
  CommandLine(std::string usage, std::string description);

  void AddString(std::string name, std::string* value, std::string help);
  void AddInt(std::string name, int64_t* value, std::string help);
  void AddDouble(std::string name, double* value, std::string help);
  void AddBool(std::string name, bool* value, std::string help);  // --name, --name=false
  void AddRepeated(std::string name, std::vector<std::string>* values, std::string help);
  // Adds --config FILE and --set section.key=value (repeatable).
  void AddConfigFlags();

  // Parses argv[first..argc). Arguments that are not flags go to positional() when
  // `allow_positional`, otherwise they are errors.
  absl::Status Parse(int argc, char** argv, int first = 1, bool allow_positional = false);
  bool help_requested() const { return help_; }
  const std::vector<std::string>& positional() const { return positional_; }
  std::string Help() const;

  // The config from --config (or the embedded default) with every --set applied, validated.
  absl::StatusOr<Config> LoadConfig() const;
  const std::string& config_path() const { return config_path_; }
  const std::vector<std::string>& overrides() const { return overrides_; }

 private:
  struct Flag {
    std::string name;
    std::variant<std::string*, int64_t*, double*, bool*, std::vector<std::string>*> value;
    std::string help;
    std::string default_text;
  };
  const Flag* Find(const std::string& name) const;

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_ = false;
  std::string config_path_;
  std::vector<std::string> overrides_;
};

// Common start of every main(): parses flags, prints --help (returns 0 in *exit_code) or the error
// (returns 2). Returns true when the program should go on.
bool ParseCommandLineOrExit(CommandLine& command_line, int argc, char** argv, int* exit_code,
                            int first = 1, bool allow_positional = false);

// The next step of every main(): loads the config of --config and --set and, with
// `validate_cluster`, checks it as a whole (ValidateCluster). On an error prints
// "<prefix>: <message>" and returns nullopt with *exit_code = 2.
std::optional<Config> LoadConfigOrExit(const CommandLine& command_line, const char* prefix,
                                       bool validate_cluster, int* exit_code);

}  // namespace dreamfleet::services
