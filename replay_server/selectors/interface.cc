#include "replay_server/selectors/interface.h"

#include "absl/strings/str_cat.h"
#include "replay_server/selectors/prioritized.h"
#include "replay_server/selectors/recency.h"
#include "replay_server/selectors/uniform.h"

namespace dreamfleet::replay {

absl::StatusOr<std::unique_ptr<Selector>> CreateSelector(const SelectorOptions& options) {
  if (options.name == "uniform") return std::unique_ptr<Selector>(new UniformSelector());
  if (options.name == "recency") {
    if (!(options.recency_decay > 0 && options.recency_decay <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("recency_decay must be in (0, 1], got ", options.recency_decay));
    }
    return std::unique_ptr<Selector>(new RecencySelector(options.recency_decay));
  }
  if (options.name == "prioritized") {
    if (!(options.priority_exponent >= 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("priority_exponent must be >= 0, got ", options.priority_exponent));
    }
    return std::unique_ptr<Selector>(new PrioritizedSelector(options.priority_exponent));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown selector \"", options.name, "\" (expected uniform, recency or prioritized)"));
}

}  // namespace dreamfleet::replay
