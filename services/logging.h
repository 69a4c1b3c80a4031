// Minimal line logging for every dreamfleet process: `I20261121 20:31:02.123 replay-0] text` on
// stderr, one write per line so lines from threads and child processes never interleave.
#pragma once

#include <sstream>
#include <string>
#include "absl/strings/string_view.h"

namespace dreamfleet::services {

enum class LogSeverity { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// Lines below `level` are dropped. Default: kInfo.
void SetLogLevel(LogSeverity level);
bool LogEnabled(LogSeverity severity);
// Parses "debug", "info", "warning", "error"; false for anything else.
bool ParseLogSeverity(absl::string_view text, LogSeverity* out);
// The name shown in every line (e.g. "replay-0", "actor-3"); defaults to the program name.
void SetLogComponent(absl::string_view component);

// `text` from a client (an actor id, a table name) for a log line or an error message: in double
// quotes, C-escaped (a newline cannot forge a log line) and cut to `max_bytes` bytes of the
// original with the full length named, so that a huge id is never echoed back whole.
std::string QuoteClientText(absl::string_view text, size_t max_bytes = 96);

// One log line; written when destroyed. kFatal aborts after writing.
class LogMessage {
 public:
  LogMessage(LogSeverity severity, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};

namespace log_internal {
constexpr LogSeverity kDEBUG = LogSeverity::kDebug;
constexpr LogSeverity kINFO = LogSeverity::kInfo;
constexpr LogSeverity kWARNING = LogSeverity::kWarning;
constexpr LogSeverity kERROR = LogSeverity::kError;
constexpr LogSeverity kFATAL = LogSeverity::kFatal;
}  // namespace log_internal

}  // namespace dreamfleet::services

// DF_LOG(INFO) << "inserted " << n << " steps";   Severities: DEBUG, INFO, WARNING, ERROR, FATAL.
#define DF_LOG(severity)                                                                   \
  if (!::dreamfleet::services::LogEnabled(::dreamfleet::services::log_internal::k##severity)) \
    ;                                                                                      \
  else                                                                                     \
    ::dreamfleet::services::LogMessage(::dreamfleet::services::log_internal::k##severity,  \
                                       __FILE__, __LINE__)                                 \
        .stream()
