#include "services/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace dreamfleet::services {
namespace {

std::atomic<int> g_level{static_cast<int>(LogSeverity::kInfo)};
std::mutex g_component_mu;
std::string& Component() {
  static auto* component = new std::string(program_invocation_short_name);
  return *component;
}

char SeverityLetter(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kDebug: return 'D';
    case LogSeverity::kInfo: return 'I';
    case LogSeverity::kWarning: return 'W';
    case LogSeverity::kError: return 'E';
    case LogSeverity::kFatal: return 'F';
  }
  return '?';
}

}  // namespace

void SetLogLevel(LogSeverity level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogSeverity severity) { return static_cast<int>(severity) >= g_level.load(); }

bool ParseLogSeverity(absl::string_view text, LogSeverity* out) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "debug") *out = LogSeverity::kDebug;
  else if (lower == "info") *out = LogSeverity::kInfo;
  else if (lower == "warning") *out = LogSeverity::kWarning;
  else if (lower == "error") *out = LogSeverity::kError;
  else return false;
  return true;
}

std::string QuoteClientText(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return absl::StrCat("\"", absl::CHexEscape(text), "\"");
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, max_bytes)), "\"... (", text.size(),
                      " bytes)");
}

void SetLogComponent(absl::string_view component) {
  std::lock_guard<std::mutex> lock(g_component_mu);
  Component() = std::string(component);
}

LogMessage::LogMessage(LogSeverity severity, const char* file, int line) : severity_(severity) {
  std::string component;
  {
    std::lock_guard<std::mutex> lock(g_component_mu);
    component = Component();
  }
  const char* base = std::strrchr(file, '/');
  stream_ << SeverityLetter(severity)
          << absl::FormatTime("%Y%m%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone()) << ' '
          << component;
  if (severity != LogSeverity::kInfo) stream_ << ' ' << (base ? base + 1 : file) << ':' << line;
  stream_ << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string text = stream_.str();
  // One write(2) per line: atomic for lines below PIPE_BUF on pipes, never interleaved.
  ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
  if (severity_ == LogSeverity::kFatal) std::abort();
}

}  // namespace dreamfleet::services
