#include "services/learning_curve.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/durable_file.h"
#include "services/status_macros.h"

namespace dreamfleet::services {
namespace {

constexpr char kLevelPrefix[] = "# level ";
constexpr char kMetricPrefix[] = "# metric ";

std::vector<std::string> Header() {
  std::vector<std::string> columns = {"env_steps",   "updates", "wall_seconds",   "episodes",
                                      "mean_return", "success", "window_episodes"};
  for (const std::string& loss : CurveLossNames()) columns.push_back("loss_" + loss);
  for (const std::string& stat : CurveStatNames()) columns.push_back("ac_" + stat);
  for (const std::string& eval : CurveEvalNames()) columns.push_back("eval_" + eval);
  return columns;
}

// The cell of column `name`; empty for a value the row lacks or a column this version does not
// know (a file written by another version keeps its own columns).
std::string Cell(const CurveRow& row, const std::string& name) {
  auto from = [](const std::map<std::string, double>& values, const std::string& key) {
    auto it = values.find(key);
    return it == values.end() ? std::string() : absl::StrFormat("%.6g", it->second);
  };
  if (name == "env_steps") return absl::StrCat(row.env_steps);
  if (name == "eval_env_steps") {  // a count: whole, not rounded to 6 digits
    auto it = row.eval.find("env_steps");
    return it == row.eval.end() ? std::string()
                                : absl::StrCat(static_cast<int64_t>(std::llround(it->second)));
  }
  if (name == "updates") return absl::StrCat(row.updates);
  if (name == "wall_seconds") return absl::StrFormat("%.1f", row.wall_seconds);
  if (name == "episodes") return absl::StrCat(row.episodes);
  if (name == "mean_return") return absl::StrFormat("%.6g", row.mean_return);
  if (name == "success") return absl::StrFormat("%.4g", row.success);
  if (name == "window_episodes") {
    return row.window_episodes < 0 ? std::string() : absl::StrCat(row.window_episodes);
  }
  if (absl::StartsWith(name, "loss_")) return from(row.losses, name.substr(5));
  if (absl::StartsWith(name, "ac_")) return from(row.stats, name.substr(3));
  if (absl::StartsWith(name, "eval_")) return from(row.eval, name.substr(5));
  return "";
}

std::string FormatRow(const CurveRow& row, const std::vector<std::string>& columns) {
  std::vector<std::string> cells;
  cells.reserve(columns.size());
  for (const std::string& column : columns) cells.push_back(Cell(row, column));
  return absl::StrJoin(cells, ",");
}

// 1, 2 or 5 times a power of ten, giving about `target` ticks over `span`.
double NiceStep(double span, int target) {
  if (span <= 0) return 1;
  const double raw = span / target;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * power) return m * power;
  }
  return 10 * power;
}

std::string TickLabel(double value, double step) {
  const double magnitude = std::abs(value);
  if (magnitude >= 1e6 && step >= 1e5) return absl::StrFormat("%gM", value / 1e6);
  if (magnitude >= 1e3 && step >= 1e2) return absl::StrFormat("%gk", value / 1e3);
  if (std::abs(value) < step * 1e-6) return "0";
  return absl::StrFormat("%g", value);
}

struct Rgb {
  double r, g, b;
};
// Ten series colours before one repeats (an A/B of two seeds each with their evaluations is 8).
constexpr Rgb kPalette[] = {{0.12, 0.47, 0.71}, {0.84, 0.15, 0.16}, {0.17, 0.63, 0.17},
                            {0.58, 0.40, 0.74}, {1.00, 0.50, 0.05}, {0.55, 0.34, 0.29},
                            {0.89, 0.47, 0.76}, {0.74, 0.74, 0.13}, {0.09, 0.75, 0.81},
                            {0.10, 0.10, 0.44}};
constexpr Rgb kLevelColours[] = {
    {0.45, 0.45, 0.45}, {0.80, 0.55, 0.00}, {0.00, 0.60, 0.55}, {0.70, 0.20, 0.50}};

}  // namespace

const std::vector<std::string>& CurveLossNames() {
  static const auto* names = new std::vector<std::string>{
      "rec", "rew", "con", "dyn", "rep", "policy", "value", "repval", "disag"};
  return *names;
}

const std::vector<std::string>& CurveStatNames() {
  static const auto* names = new std::vector<std::string>{"entropy",
                                                          "ret",
                                                          "retnorm_scale",
                                                          "explored_beat_value",
                                                          "reinforce_grad_norm",
                                                          "dynamics_grad_norm",
                                                          "disag"};
  return *names;
}

const std::vector<std::string>& CurveEvalNames() {
  static const auto* names = new std::vector<std::string>{
      "env_steps", "greedy_return", "greedy_success", "sampled_return", "sampled_success"};
  return *names;
}

std::map<std::string, double> CurveLosses(const std::map<std::string, double>& agent_losses) {
  std::map<std::string, double> out;
  for (const char* decoder : {"image", "vector", "text"}) {
    if (auto it = agent_losses.find(decoder); it != agent_losses.end()) out["rec"] += it->second;
  }
  for (const std::string& name : CurveLossNames()) {
    if (auto it = agent_losses.find(name); it != agent_losses.end()) out[name] = it->second;
  }
  return out;
}

absl::StatusOr<CurveWriter> CurveWriter::Open(const std::string& path,
                                              const std::vector<CurveLevel>& levels,
                                              const std::string& metric) {
  // An existing file keeps its header: rows follow its columns (a run resumed by a newer
  // version leaves the new columns out rather than misaligning the old ones).
  std::vector<std::string> columns;
  bool has_content = false;
  {
    std::ifstream existing(path);
    std::string line;
    while (existing && std::getline(existing, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      has_content = true;
      if (line[0] == '#') continue;
      columns = absl::StrSplit(line, ',');
      break;
    }
  }
  if (!columns.empty() && std::find(columns.begin(), columns.end(), "env_steps") == columns.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " exists and its header has no env_steps column: not a progress CSV; not appending"));
  }
  std::ofstream out(path, std::ios::app);
  if (!out) return absl::InternalError(absl::StrCat("cannot open ", path, " for appending"));
  if (!has_content) {
    if (!metric.empty()) out << kMetricPrefix << metric << "\n";
    for (const CurveLevel& level : levels) {
      out << kLevelPrefix << level.label << " = " << absl::StrFormat("%.6g", level.value) << "\n";
    }
  }
  if (columns.empty()) {
    columns = Header();
    out << absl::StrJoin(columns, ",") << "\n";
  }
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return CurveWriter(path, std::move(columns));
}

absl::Status CurveWriter::Append(const CurveRow& row) {
  std::ofstream out(path_, std::ios::app);
  out << FormatRow(row, columns_) << "\n";
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat("cannot append to ", path_));
  return absl::OkStatus();
}

absl::StatusOr<Curve> ReadCurve(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no progress CSV at ", path));
  Curve curve;
  std::map<std::string, size_t> column;
  std::string line;
  int line_number = 0;
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": ", why));
  };
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (absl::StartsWith(line, kLevelPrefix)) {
      std::vector<std::string> parts =
          absl::StrSplit(line.substr(sizeof(kLevelPrefix) - 1), absl::MaxSplits(" = ", 1));
      CurveLevel level;
      if (parts.size() != 2 || !absl::SimpleAtod(parts[1], &level.value)) {
        return bad("a level line must read \"# level <label> = <number>\"");
      }
      level.label = std::string(absl::StripAsciiWhitespace(parts[0]));
      curve.levels.push_back(level);
      continue;
    }
    if (absl::StartsWith(line, kMetricPrefix)) {
      curve.metric =
          std::string(absl::StripAsciiWhitespace(line.substr(sizeof(kMetricPrefix) - 1)));
      continue;
    }
    if (line[0] == '#') continue;
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (column.empty()) {
      for (size_t i = 0; i < cells.size(); ++i) column[cells[i]] = i;
      if (!column.count("env_steps") || !column.count("mean_return")) {
        return bad("the header needs env_steps and mean_return columns");
      }
      continue;
    }
    CurveRow row;
    auto number = [&](const std::string& name, double* out) -> absl::Status {
      auto it = column.find(name);
      if (it == column.end() || it->second >= cells.size() || cells[it->second].empty()) {
        return absl::NotFoundError(name);
      }
      if (!absl::SimpleAtod(cells[it->second], out)) {
        return bad(absl::StrCat(name, " is not a number: \"", cells[it->second], "\""));
      }
      return absl::OkStatus();
    };
    // Reads column `name` into *out; a missing or empty cell leaves `fallback` unless required.
    auto read = [&](const std::string& name, bool required, double fallback,
                    double* out) -> absl::Status {
      absl::Status status = number(name, out);
      if (absl::IsNotFound(status)) {
        if (required) return bad(absl::StrCat("row has no ", name));
        *out = fallback;
        return absl::OkStatus();
      }
      return status;
    };
    // Counters are whole numbers a run can reach.
    auto read_count = [&](const std::string& name, bool required, int64_t fallback,
                          int64_t* out) -> absl::Status {
      double value = 0;
      RETURN_IF_ERROR(read(name, required, static_cast<double>(fallback), &value));
      if (!std::isfinite(value) || std::abs(value) > 9e15 || value != std::floor(value)) {
        return bad(absl::StrCat(name, " is not a whole number of at most 9e15: ", value));
      }
      *out = static_cast<int64_t>(value);
      return absl::OkStatus();
    };
    double v = 0;
    RETURN_IF_ERROR(read_count("env_steps", true, 0, &row.env_steps));
    RETURN_IF_ERROR(read("mean_return", true, 0, &row.mean_return));
    RETURN_IF_ERROR(read_count("updates", false, 0, &row.updates));
    RETURN_IF_ERROR(read("wall_seconds", false, 0, &row.wall_seconds));
    RETURN_IF_ERROR(read_count("episodes", false, 0, &row.episodes));
    RETURN_IF_ERROR(read("success", false, 0, &row.success));
    RETURN_IF_ERROR(read_count("window_episodes", false, -1, &row.window_episodes));
    // The named columns "<prefix><name>" that have a value, into *out.
    auto read_group = [&](const std::string& prefix, const std::vector<std::string>& names,
                          std::map<std::string, double>* out) -> absl::Status {
      for (const std::string& name : names) {
        absl::Status status = number(prefix + name, &v);
        if (status.ok()) {
          (*out)[name] = v;
        } else if (!absl::IsNotFound(status)) {
          return status;
        }
      }
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(read_group("loss_", CurveLossNames(), &row.losses));
    RETURN_IF_ERROR(read_group("ac_", CurveStatNames(), &row.stats));
    RETURN_IF_ERROR(read_group("eval_", CurveEvalNames(), &row.eval));
    curve.rows.push_back(std::move(row));
  }
  if (column.empty()) {
    line_number = 0;
    return bad("no header line");
  }
  return curve;
}

absl::StatusOr<CurveOffsets> ResumeCurve(const std::string& path, int64_t env_steps) {
  RETURN_IF_ERROR(TruncateCurve(path, env_steps));
  CurveOffsets offsets;
  absl::StatusOr<Curve> kept = ReadCurve(path);
  if (absl::IsNotFound(kept.status())) return offsets;
  RETURN_IF_ERROR(kept.status());
  if (!kept->rows.empty()) {
    offsets.wall_seconds = kept->rows.back().wall_seconds;
    offsets.episodes = kept->rows.back().episodes;
  }
  return offsets;
}

absl::Status TruncateCurve(const std::string& path, int64_t env_steps) {
  std::ifstream in(path);
  if (!in) return absl::OkStatus();
  std::vector<std::string> kept;
  std::string line;
  std::optional<size_t> steps_column;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      kept.push_back(line);
      continue;
    }
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (!steps_column) {
      auto it = std::find(cells.begin(), cells.end(), "env_steps");
      if (it == cells.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": the header has no env_steps column; not truncating"));
      }
      steps_column = static_cast<size_t>(it - cells.begin());
      kept.push_back(line);
      continue;
    }
    int64_t steps = 0;
    if (*steps_column < cells.size() && absl::SimpleAtoi(cells[*steps_column], &steps) &&
        steps <= env_steps) {
      kept.push_back(line);
    }
  }
  in.close();
  std::string text;
  for (const std::string& l : kept) absl::StrAppend(&text, l, "\n");
  return ReplaceFileDurably(path, text);
}

PlotSeries ReturnSeries(const Curve& curve, const std::string& label) {
  PlotSeries series;
  series.label = label;
  for (const CurveRow& row : curve.rows) {
    series.points.emplace_back(static_cast<double>(row.env_steps), row.mean_return);
  }
  return series;
}

PlotSeries EvalSeries(const Curve& curve, const std::string& name, const std::string& label) {
  PlotSeries series;
  series.label = label;
  series.markers = true;
  for (const CurveRow& row : curve.rows) {
    auto at = row.eval.find("env_steps");
    auto value = row.eval.find(name);
    if (at == row.eval.end() || value == row.eval.end()) continue;
    // Rows repeat the latest evaluation: one point per evaluation, in order.
    if (!series.points.empty() && series.points.back().first >= at->second) continue;
    series.points.emplace_back(at->second, value->second);
  }
  return series;
}

absl::Status PlotPng(const std::vector<PlotSeries>& series, const PlotOptions& options,
                     const std::string& path) {
  double x_max = 0, y_min = std::numeric_limits<double>::infinity(), y_max = -y_min;
  bool any = false;
  for (const PlotSeries& s : series) {
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      any = true;
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  }
  if (!any) return absl::InvalidArgumentError(absl::StrCat("nothing to plot into ", path));
  for (const CurveLevel& level : options.levels) {
    if (!std::isfinite(level.value)) continue;
    y_min = std::min(y_min, level.value);
    y_max = std::max(y_max, level.value);
  }
  y_min = std::min(y_min, 0.0);
  if (y_max - y_min < 1e-9) y_max = y_min + 1;
  const double y_pad = 0.05 * (y_max - y_min);
  y_max += y_pad;
  if (y_min < 0) y_min -= y_pad;
  if (x_max <= 0) x_max = 1;
  const double x_step = NiceStep(x_max, 6), y_step = NiceStep(y_max - y_min, 6);
  x_max = std::ceil(x_max / x_step) * x_step;
  y_max = std::ceil(y_max / y_step) * y_step;
  y_min = std::floor(y_min / y_step) * y_step;

  cairo_surface_t* surface =
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, options.width, options.height);
  cairo_t* cr = cairo_create(surface);
  const double left = 80, right = 24, top = options.title.empty() ? 24 : 48, bottom = 64;
  const double plot_w = options.width - left - right, plot_h = options.height - top - bottom;
  auto px = [&](double x) { return left + x / x_max * plot_w; };
  auto py = [&](double y) { return top + (y_max - y) / (y_max - y_min) * plot_h; };

  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 13);
  cairo_text_extents_t ext;

  // Grid, ticks and their labels.
  cairo_set_line_width(cr, 1);
  for (double x = 0; x <= x_max + x_step * 1e-6; x += x_step) {
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, std::round(px(x)) + 0.5, top);
    cairo_line_to(cr, std::round(px(x)) + 0.5, top + plot_h);
    cairo_stroke(cr);
    const std::string label = TickLabel(x, x_step);
    cairo_text_extents(cr, label.c_str(), &ext);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_move_to(cr, px(x) - ext.width / 2, top + plot_h + 18);
    cairo_show_text(cr, label.c_str());
  }
  for (double y = y_min; y <= y_max + y_step * 1e-6; y += y_step) {
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, left, std::round(py(y)) + 0.5);
    cairo_line_to(cr, left + plot_w, std::round(py(y)) + 0.5);
    cairo_stroke(cr);
    const std::string label = TickLabel(y, y_step);
    cairo_text_extents(cr, label.c_str(), &ext);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_move_to(cr, left - 8 - ext.width, py(y) + ext.height / 2);
    cairo_show_text(cr, label.c_str());
  }
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_rectangle(cr, left + 0.5, top + 0.5, plot_w, plot_h);
  cairo_stroke(cr);

  // Axis labels and title.
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_text_extents(cr, options.x_label.c_str(), &ext);
  cairo_move_to(cr, left + plot_w / 2 - ext.width / 2, options.height - 20);
  cairo_show_text(cr, options.x_label.c_str());
  cairo_save(cr);
  cairo_text_extents(cr, options.y_label.c_str(), &ext);
  cairo_move_to(cr, 22, top + plot_h / 2 + ext.width / 2);
  cairo_rotate(cr, -M_PI / 2);
  cairo_show_text(cr, options.y_label.c_str());
  cairo_restore(cr);
  if (!options.title.empty()) {
    cairo_set_font_size(cr, 16);
    cairo_text_extents(cr, options.title.c_str(), &ext);
    cairo_move_to(cr, left + plot_w / 2 - ext.width / 2, 30);
    cairo_show_text(cr, options.title.c_str());
    cairo_set_font_size(cr, 13);
  }

  // Clip the data to the plot area.
  cairo_save(cr);
  cairo_rectangle(cr, left, top, plot_w, plot_h);
  cairo_clip(cr);
  const double dashes[] = {8, 5};
  // Labels already drawn (baseline y, left x): a level at the same height (an anchor equal to the
  // target) gets its label to the left of the earlier one instead of on top of it.
  std::vector<std::pair<double, double>> placed;
  for (size_t i = 0; i < options.levels.size(); ++i) {
    const CurveLevel& level = options.levels[i];
    if (!std::isfinite(level.value)) continue;
    const Rgb c = kLevelColours[i % std::size(kLevelColours)];
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 1.5);
    cairo_set_dash(cr, dashes, 2, 0);
    cairo_move_to(cr, left, py(level.value));
    cairo_line_to(cr, left + plot_w, py(level.value));
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    const std::string text = absl::StrFormat("%s (%.3g)", level.label, level.value);
    cairo_text_extents(cr, text.c_str(), &ext);
    const double y = py(level.value) - 4;
    double right_edge = left + plot_w - 6;
    for (const auto& [other_y, other_left] : placed) {
      if (std::abs(other_y - y) < 14) right_edge = std::min(right_edge, other_left - 14);
    }
    cairo_move_to(cr, right_edge - ext.width, y);
    cairo_show_text(cr, text.c_str());
    placed.emplace_back(y, right_edge - ext.width);
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const Rgb c = kPalette[i % std::size(kPalette)];
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 2);
    bool started = false;
    for (const auto& [x, y] : series[i].points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      if (started) {
        cairo_line_to(cr, px(x), py(y));
      } else {
        cairo_move_to(cr, px(x), py(y));
        started = true;
      }
    }
    cairo_stroke(cr);
    if (!series[i].markers) continue;
    for (const auto& [x, y] : series[i].points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      cairo_new_sub_path(cr);
      cairo_arc(cr, px(x), py(y), 3.5, 0, 2 * M_PI);
    }
    cairo_fill(cr);
  }
  cairo_restore(cr);

  // Legend, top left inside the plot.
  double legend_y = top + 18;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].label.empty()) continue;
    const Rgb c = kPalette[i % std::size(kPalette)];
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 3);
    cairo_move_to(cr, left + 12, legend_y - 4);
    cairo_line_to(cr, left + 36, legend_y - 4);
    cairo_stroke(cr);
    if (series[i].markers) {
      cairo_arc(cr, left + 24, legend_y - 4, 3.5, 0, 2 * M_PI);
      cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, left + 42, legend_y);
    cairo_show_text(cr, series[i].label.c_str());
    legend_y += 18;
  }

  cairo_destroy(cr);
  const cairo_status_t written = cairo_surface_write_to_png(surface, path.c_str());
  cairo_surface_destroy(surface);
  if (written != CAIRO_STATUS_SUCCESS) {
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", cairo_status_to_string(written)));
  }
  return absl::OkStatus();
}

}  // namespace dreamfleet::services
