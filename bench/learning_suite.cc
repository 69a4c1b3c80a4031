#include "bench/learning_suite.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dreamfleet::bench {
namespace {

absl::Status Bad(const std::string& source, const std::string& task, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": task ", task.empty() ? "?" : task, ": ", why));
}

std::string Steps(double steps) {
  if (steps < 0) return "—";
  if (steps >= 1e6) return absl::StrFormat("%.2fM", steps / 1e6);
  if (steps >= 1e3) return absl::StrFormat("%.0fk", steps / 1e3);
  return absl::StrFormat("%.0f", steps);
}

std::string Minutes(double seconds) {
  if (seconds < 0) return "—";
  return absl::StrFormat("%.0f min", seconds / 60);
}

}  // namespace

absl::StatusOr<std::vector<LearningTask>> ParseLearningSuite(const std::string& yaml,
                                                             const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not YAML: ", e.what()));
  }
  if (!root.IsMap() || !root["tasks"] || !root["tasks"].IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": needs a top-level `tasks:` list of tasks"));
  }
  for (const auto& entry : root) {
    if (!entry.first.IsScalar() || entry.first.Scalar() != "tasks") {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": unknown top-level key `",
          entry.first.IsScalar() ? entry.first.Scalar() : std::string("(not a name)"), "`"));
    }
  }
  static const std::set<std::string> kKeys = {"name",         "config", "set",         "env_steps",
                                              "seeds",        "metric", "target",      "anchor",
                                              "anchor_label", "notes",  "min_episodes"};
  std::vector<LearningTask> tasks;
  std::set<std::string> names;
  for (const YAML::Node& node : root["tasks"]) {
    LearningTask task;
    if (!node.IsMap()) return Bad(source, "", "each task is a map of keys");
    try {
      if (node["name"]) task.name = node["name"].as<std::string>();
      for (const auto& entry : node) {
        const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "(not a name)";
        if (!kKeys.count(key)) {
          return Bad(source, task.name,
                     absl::StrCat("unknown key `", key,
                                  "` (known: name, config, set, env_steps, seeds, metric, target, "
                                  "min_episodes, anchor, anchor_label, notes)"));
        }
      }
      if (task.name.empty()) return Bad(source, "", "every task needs a `name`");
      // The name is a directory under --out.
      if (task.name[0] == '.' ||
          task.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_.-") != std::string::npos) {
        return Bad(source, task.name,
                   "a task name may only hold letters, digits, _ . - and not start with .");
      }
      if (!names.insert(task.name).second) return Bad(source, task.name, "duplicate task name");
      if (!node["config"]) return Bad(source, task.name, "needs a `config` file");
      task.config = node["config"].as<std::string>();
      if (node["set"]) task.overrides = node["set"].as<std::vector<std::string>>();
      if (!node["env_steps"]) return Bad(source, task.name, "needs `env_steps` (the budget)");
      task.env_steps = node["env_steps"].as<int64_t>();
      if (task.env_steps < 1) return Bad(source, task.name, "env_steps must be >= 1");
      if (node["seeds"]) task.seeds = node["seeds"].as<std::vector<int64_t>>();
      if (task.seeds.empty()) return Bad(source, task.name, "seeds must not be empty");
      std::set<int64_t> distinct;
      for (int64_t seed : task.seeds) {
        if (seed < 0) return Bad(source, task.name, absl::StrCat("seed ", seed, " is negative"));
        if (!distinct.insert(seed).second) {
          return Bad(source, task.name, absl::StrCat("seed ", seed, " is listed twice"));
        }
      }
      if (node["min_episodes"]) task.min_episodes = node["min_episodes"].as<int64_t>();
      if (task.min_episodes < 1) return Bad(source, task.name, "min_episodes must be >= 1");
      if (node["metric"]) task.metric = node["metric"].as<std::string>();
      if (task.metric != "return" && task.metric != "success") {
        return Bad(source, task.name,
                   absl::StrCat("metric must be return or success, got ", task.metric));
      }
      if (node["target"]) task.target = node["target"].as<double>();
      if (node["anchor"]) {
        task.anchor = node["anchor"].as<double>();
        task.has_anchor = true;
        task.anchor_label =
            node["anchor_label"] ? node["anchor_label"].as<std::string>() : std::string("anchor");
      }
      if (node["notes"]) task.notes = node["notes"].as<std::string>();
    } catch (const YAML::Exception& e) {
      return Bad(source, task.name, absl::StrCat("bad value: ", e.what()));
    }
    tasks.push_back(std::move(task));
  }
  return tasks;
}

absl::StatusOr<std::vector<LearningTask>> LoadLearningSuite(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no suite file at ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseLearningSuite(text.str(), path);
}

double Score(const LearningTask& task, const services::CurveRow& row) {
  return task.metric == "success" ? row.success : row.mean_return;
}

std::string GreedyEvalName(const LearningTask& task) {
  return task.metric == "success" ? "greedy_success" : "greedy_return";
}

TaskSummary Summarize(const LearningTask& task, const std::vector<SeedResult>& seeds) {
  TaskSummary s;
  s.task = task.name;
  std::vector<double> finals, steps_to, seconds_to;
  double wall = 0, steps = 0;
  for (const SeedResult& seed : seeds) {
    if (seed.curve.rows.empty()) continue;
    ++s.seeds;
    const services::CurveRow& last = seed.curve.rows.back();
    if (last.env_steps >= task.env_steps) ++s.seeds_finished;
    finals.push_back(Score(task, last));
    if (auto greedy = last.eval.find(GreedyEvalName(task)); greedy != last.eval.end()) {
      ++s.seeds_evaluated;
      s.final_greedy += greedy->second;
    }
    wall += last.wall_seconds;
    steps += static_cast<double>(last.env_steps);
    if (task.target != 0) {
      for (const services::CurveRow& row : seed.curve.rows) {
        const bool enough = row.window_episodes < 0 || row.window_episodes >= task.min_episodes;
        if (enough && Score(task, row) >= task.target) {
          steps_to.push_back(static_cast<double>(row.env_steps));
          seconds_to.push_back(row.wall_seconds);
          break;
        }
      }
    }
  }
  if (s.seeds == 0) return s;
  if (s.seeds_evaluated > 0) s.final_greedy /= s.seeds_evaluated;
  double sum = 0;
  for (double f : finals) sum += f;
  s.final_mean = sum / finals.size();
  double var = 0;
  for (double f : finals) var += (f - s.final_mean) * (f - s.final_mean);
  s.final_std = finals.size() > 1 ? std::sqrt(var / (finals.size() - 1)) : 0.0;
  s.final_min = *std::min_element(finals.begin(), finals.end());
  s.final_max = *std::max_element(finals.begin(), finals.end());
  s.wall_seconds = wall / s.seeds;
  s.env_steps = static_cast<int64_t>(steps / s.seeds);
  s.seeds_at_target = static_cast<int>(steps_to.size());
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  if (!steps_to.empty()) {
    s.steps_to_target = median(steps_to);
    s.seconds_to_target = median(seconds_to);
  }
  return s;
}

std::string SummaryMarkdown(const std::vector<LearningTask>& tasks,
                            const std::vector<TaskSummary>& summaries,
                            const std::vector<double>& random) {
  std::string out =
      "| task | metric | seeds | random policy | final (mean ± sd, min–max) | final greedy eval | "
      "target | seeds at target | env steps to target | wall to target | env steps run | wall |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < tasks.size() && i < summaries.size(); ++i) {
    const LearningTask& t = tasks[i];
    const TaskSummary& s = summaries[i];
    const double r = i < random.size() ? random[i] : NAN;
    absl::StrAppend(&out, "| ", t.name, " | ", t.metric, " | ", s.seeds, " (", s.seeds_finished,
                    " finished) | ", std::isnan(r) ? "—" : absl::StrFormat("%.3g", r), " | ",
                    s.seeds == 0 ? "—"
                                 : absl::StrFormat("%.3g ± %.2g (%.3g–%.3g)", s.final_mean,
                                                   s.final_std, s.final_min, s.final_max),
                    " | ", s.seeds_evaluated == 0 ? "—" : absl::StrFormat("%.3g", s.final_greedy),
                    " | ", t.target != 0 ? absl::StrFormat("%g", t.target) : "—", " | ",
                    s.seeds_at_target, "/", s.seeds, " | ", Steps(s.steps_to_target), " | ",
                    Minutes(s.seconds_to_target), " | ",
                    s.seeds == 0 ? "—" : Steps(static_cast<double>(s.env_steps)), " | ",
                    s.seeds == 0 ? "—" : Minutes(s.wall_seconds), " |\n");
  }
  return out;
}

}  // namespace dreamfleet::bench
