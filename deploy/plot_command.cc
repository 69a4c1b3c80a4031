#include "deploy/plot_command.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "services/command_line.h"
#include "services/learning_curve.h"

namespace dreamfleet::deploy {
namespace fs = std::filesystem;

int RunPlot(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::string output, metric, title;
  services::CommandLine command_line(
      "dreamfleet plot RUN_DIR [--out FILE] [--metric return|success] [--title TEXT]",
      "Draws RUN_DIR/progress.csv (or every RUN_DIR/*/progress.csv, one line per run) as a PNG: "
      "the mean return (or success rate) of the last 100 episodes against env steps, with the "
      "random-policy, anchor and target levels the CSV records (drawn only beside the metric "
      "they are levels of).");
  command_line.AddString("out", &output, "PNG to write (\"\" = RUN_DIR/curve.png)");
  command_line.AddString("metric", &metric,
                         "return or success (\"\" = the metric the CSV's levels are of, e.g. "
                         "success for bench_learning's gridworld and NES tasks; else return)");
  command_line.AddString("title", &title, "plot title (\"\" = the run directory's name)");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code, 1,
                                        /*allow_positional=*/true)) {
    return exit_code;
  }
  const std::vector<std::string>& positional = command_line.positional();
  if (positional.size() != 1) {
    err << "error: expected one RUN_DIR, got " << positional.size() << " arguments\n";
    return 2;
  }
  if (!metric.empty() && metric != "return" && metric != "success") {
    err << "error: --metric must be return or success, got " << metric << "\n";
    return 2;
  }
  const fs::path dir = positional[0];
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    err << "error: " << dir.string() << " is not a directory\n";
    return 1;
  }
  std::vector<fs::path> csvs;
  if (fs::exists(dir / "progress.csv", ec)) {
    csvs.push_back(dir / "progress.csv");
  } else {
    fs::directory_iterator it(dir, ec);
    if (ec) {
      err << "error: cannot list " << dir.string() << ": " << ec.message() << "\n";
      return 1;
    }
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code entry_error;
      if (it->is_directory(entry_error) && fs::exists(it->path() / "progress.csv", entry_error)) {
        csvs.push_back(it->path() / "progress.csv");
      }
    }
    if (ec) {
      err << "error: cannot list " << dir.string() << ": " << ec.message() << "\n";
      return 1;
    }
    std::sort(csvs.begin(), csvs.end());
  }
  if (csvs.empty()) {
    err << "error: no progress.csv in " << dir.string() << " or its subdirectories (bench_learning "
        << "and dreamfleet-train-local --progress-csv write one)\n";
    return 1;
  }
  std::vector<services::PlotSeries> series;
  services::PlotOptions options;
  options.title = title.empty() ? fs::absolute(dir).lexically_normal().filename().string() : title;
  if (options.title.empty()) options.title = fs::absolute(dir).parent_path().filename().string();
  std::vector<services::Curve> curves;
  for (const fs::path& csv : csvs) {
    absl::StatusOr<services::Curve> curve = services::ReadCurve(csv.string());
    if (!curve.ok()) {
      err << "error: " << curve.status().message() << "\n";
      return 1;
    }
    curves.push_back(*std::move(curve));
  }
  if (metric.empty()) {
    // The first CSV that says which metric its levels are of (older ones do not).
    for (const services::Curve& curve : curves) {
      if (!curve.metric.empty()) {
        metric = curve.metric == "success" ? "success" : "return";
        break;
      }
    }
    if (metric.empty()) metric = "return";
  }
  options.y_label =
      metric == "success" ? "success rate (last 100 episodes)" : "mean return (last 100 episodes)";
  bool noted_levels = false;
  for (size_t i = 0; i < csvs.size(); ++i) {
    const fs::path& csv = csvs[i];
    const services::Curve& curve = curves[i];
    // Levels of another metric (a success-rate target on a plot of returns) would mislead.
    if (curve.metric.empty() || curve.metric == metric) {
      if (options.levels.empty()) options.levels = curve.levels;
    } else if (!curve.levels.empty() && !noted_levels) {
      noted_levels = true;
      err << "note: " << csv.string() << "'s levels (random policy, target) are of its "
          << curve.metric << ", not drawn on a plot of " << metric << "\n";
    }
    const std::string run = csvs.size() == 1 ? "" : csv.parent_path().filename().string();
    services::PlotSeries s;
    s.label = run;
    for (const services::CurveRow& row : curve.rows) {
      s.points.emplace_back(static_cast<double>(row.env_steps),
                            metric == "success" ? row.success : row.mean_return);
    }
    // A run that evaluated its policy also gets its greedy evaluations, as dots.
    services::PlotSeries greedy =
        services::EvalSeries(curve, metric == "success" ? "greedy_success" : "greedy_return",
                             run.empty() ? "greedy evaluation" : run + " greedy evaluation");
    if (s.label.empty() && !greedy.points.empty()) s.label = "training episodes";
    series.push_back(std::move(s));
    if (!greedy.points.empty()) series.push_back(std::move(greedy));
  }
  const std::string png = output.empty() ? (dir / "curve.png").string() : output;
  if (absl::Status status = services::PlotPng(series, options, png); !status.ok()) {
    err << "error: " << status.message() << "\n";
    return 1;
  }
  out << "wrote " << png << " (" << csvs.size() << (csvs.size() == 1 ? " run" : " runs") << ", "
      << (metric == "success" ? "success rate" : "mean return") << ")\n";
  return 0;
}

}  // namespace dreamfleet::deploy
