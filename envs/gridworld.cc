// See gridworld.h. Layouts follow MiniGrid's generators; random choices come from the episode seed.
#include "envs/gridworld.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "envs/env_options.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {
namespace {

constexpr int kDx[4] = {1, 0, -1, 0};  // right, down, left, up
constexpr int kDy[4] = {0, 1, 0, -1};

bool Passable(GridWorld::Cell c) {
  return c == GridWorld::Cell::kFloor || c == GridWorld::Cell::kGoal ||
         c == GridWorld::Cell::kDoorOpen;
}

bool Opaque(GridWorld::Cell c) {
  return c == GridWorld::Cell::kWall || c == GridWorld::Cell::kDoorLocked ||
         c == GridWorld::Cell::kDoorClosed;
}

}  // namespace

int GridWorld::DefaultMaxSteps(GridLayout layout, int size) {
  switch (layout) {
    case GridLayout::kEmpty:
    case GridLayout::kEmptyRandom:
      return 4 * size * size;
    case GridLayout::kFourRooms:
      return 100;
    case GridLayout::kDoorKey:
      return 10 * size * size;
  }
  return 4 * size * size;
}

absl::StatusOr<std::unique_ptr<GridWorld>> GridWorld::Create(const GridWorldOptions& options) {
  if (options.size < 5 || options.size > 64) {
    return absl::InvalidArgumentError(absl::StrCat("gridworld size ", options.size, " for \"",
                                                   options.name, "\" is outside [5, 64]"));
  }
  if (options.layout == GridLayout::kFourRooms && options.size % 2 == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("fourrooms size must be odd, got ", options.size));
  }
  RETURN_IF_ERROR(CheckImageSizeAndTimeLimit(options.image_size, options.max_steps));
  const int max_steps =
      options.max_steps > 0 ? options.max_steps : DefaultMaxSteps(options.layout, options.size);
  return std::unique_ptr<GridWorld>(new GridWorld(options, max_steps));
}

GridWorld::GridWorld(const GridWorldOptions& options, int max_steps)
    : options_(options),
      size_(options.size),
      max_steps_(max_steps),
      renderer_(options.egocentric ? kViewSize : options.size,
                options.egocentric ? kViewSize : options.size, options.image_size,
                options.image_size, options.grayscale ? 1 : 3),
      grid_(options.size * options.size, Cell::kFloor),
      cell_colors_(renderer_.rows() * renderer_.cols()) {
  spec_.name = options.name;
  spec_.image_height = options.image_size;
  spec_.image_width = options.image_size;
  spec_.image_channels = options.grayscale ? 1 : 3;
  if (options.symbolic) {
    spec_.image_height = spec_.image_width = spec_.image_channels = 0;
    if (options.egocentric) {
      spec_.vector_size = kViewSize * kViewSize * kEgocentricChannels;
      spec_.vector_grid_channels = kEgocentricChannels;
    } else {
      spec_.vector_size = options.size * options.size * kSymbolicChannels;
      spec_.vector_grid_channels = kSymbolicChannels;
    }
  }
  if (options.layout == GridLayout::kDoorKey) {
    spec_.num_actions = 5;
    spec_.action_names = {"left", "right", "forward", "pickup", "toggle"};
  } else {
    spec_.num_actions = 3;
    spec_.action_names = {"left", "right", "forward"};
  }
  spec_.reward_min = 0.0f;
  spec_.reward_max = 1.0f;
  spec_.max_episode_steps = max_steps;
}

void GridWorld::PlaceRandomly(int x0, int y0, int w, int h, int* x, int* y) {
  // Rejection sampling as MiniGrid's place_obj: an empty floor cell not under the agent.
  while (true) {
    const int cx = rng_.UniformInt(x0, x0 + w - 1);
    const int cy = rng_.UniformInt(y0, y0 + h - 1);
    if (cell(cx, cy) != Cell::kFloor) continue;
    if (cx == agent_x_ && cy == agent_y_) continue;
    *x = cx;
    *y = cy;
    return;
  }
}

void GridWorld::Layout() {
  const int n = size_;
  std::fill(grid_.begin(), grid_.end(), Cell::kFloor);
  for (int i = 0; i < n; ++i) {
    Set(i, 0, Cell::kWall);
    Set(i, n - 1, Cell::kWall);
    Set(0, i, Cell::kWall);
    Set(n - 1, i, Cell::kWall);
  }
  agent_x_ = agent_y_ = -1;  // not placed yet
  int x, y;
  switch (options_.layout) {
    case GridLayout::kEmpty:
      Set(n - 2, n - 2, Cell::kGoal);
      agent_x_ = 1;
      agent_y_ = 1;
      agent_dir_ = 0;
      break;
    case GridLayout::kEmptyRandom:
      Set(n - 2, n - 2, Cell::kGoal);
      PlaceRandomly(1, 1, n - 2, n - 2, &x, &y);
      agent_x_ = x;
      agent_y_ = y;
      agent_dir_ = rng_.UniformInt(0, 3);
      break;
    case GridLayout::kFourRooms: {
      // Two walls through the middle; each of the four wall segments gets one random gap.
      const int half = n / 2;
      for (int i = 0; i < n; ++i) {
        Set(half, i, Cell::kWall);
        Set(i, half, Cell::kWall);
      }
      Set(half, rng_.UniformInt(1, half - 1), Cell::kFloor);      // upper vertical
      Set(rng_.UniformInt(1, half - 1), half, Cell::kFloor);      // left horizontal
      Set(rng_.UniformInt(half + 1, n - 2), half, Cell::kFloor);  // right horizontal
      Set(half, rng_.UniformInt(half + 1, n - 2), Cell::kFloor);  // lower vertical
      PlaceRandomly(1, 1, n - 2, n - 2, &x, &y);
      agent_x_ = x;
      agent_y_ = y;
      agent_dir_ = rng_.UniformInt(0, 3);
      PlaceRandomly(1, 1, n - 2, n - 2, &x, &y);
      Set(x, y, Cell::kGoal);
      break;
    }
    case GridLayout::kDoorKey: {
      Set(n - 2, n - 2, Cell::kGoal);
      const int split = rng_.UniformInt(2, n - 3);
      for (int i = 0; i < n; ++i) Set(split, i, Cell::kWall);
      PlaceRandomly(1, 1, split - 1, n - 2, &x, &y);
      agent_x_ = x;
      agent_y_ = y;
      agent_dir_ = rng_.UniformInt(0, 3);
      Set(split, rng_.UniformInt(1, n - 3), Cell::kDoorLocked);
      PlaceRandomly(1, 1, split - 1, n - 2, &x, &y);
      Set(x, y, Cell::kKey);
      break;
    }
  }
}

absl::Status GridWorld::Reset(uint64_t seed, StepBuffer* out) {
  rng_.Seed(seed);
  Layout();
  carrying_key_ = false;
  step_count_ = 0;
  done_ = false;
  out->reward = 0.0f;
  out->is_first = true;
  out->is_last = false;
  out->is_terminal = false;
  out->success = false;
  Observe(out);
  return absl::OkStatus();
}

absl::Status GridWorld::Step(int action, StepBuffer* out) {
  if (done_) {
    return absl::FailedPreconditionError(
        absl::StrCat(spec_.name, ": Step after the episode ended; call Reset"));
  }
  if (action < 0 || action >= spec_.num_actions) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec_.name, ": action ", action, " is outside [0, ", spec_.num_actions, ")"));
  }
  ++step_count_;
  float reward = 0.0f;
  bool terminal = false;
  const int fx = agent_x_ + kDx[agent_dir_];
  const int fy = agent_y_ + kDy[agent_dir_];
  const Cell ahead = InGrid(fx, fy) ? cell(fx, fy) : Cell::kWall;
  switch (action) {
    case kLeft:
      agent_dir_ = (agent_dir_ + 3) % 4;
      break;
    case kRight:
      agent_dir_ = (agent_dir_ + 1) % 4;
      break;
    case kForward:
      if (Passable(ahead)) {
        agent_x_ = fx;
        agent_y_ = fy;
        if (ahead == Cell::kGoal) {
          terminal = true;
          reward = 1.0f - 0.9f * static_cast<float>(step_count_) / static_cast<float>(max_steps_);
        }
      }
      break;
    case kPickup:
      if (ahead == Cell::kKey && !carrying_key_) {
        carrying_key_ = true;
        Set(fx, fy, Cell::kFloor);
      }
      break;
    case kToggle:
      if (ahead == Cell::kDoorLocked) {
        if (carrying_key_) Set(fx, fy, Cell::kDoorOpen);
      } else if (ahead == Cell::kDoorClosed) {
        Set(fx, fy, Cell::kDoorOpen);
      } else if (ahead == Cell::kDoorOpen) {
        Set(fx, fy, Cell::kDoorClosed);
      }
      break;
  }
  done_ = terminal || step_count_ >= max_steps_;
  out->reward = reward;
  out->is_first = false;
  out->is_last = done_;
  out->is_terminal = terminal;
  out->success = terminal;
  Observe(out);
  return absl::OkStatus();
}

void GridWorld::Observe(StepBuffer* out) {
  if (options_.symbolic) {
    if (out->vector != nullptr) Encode(out->vector);
  } else if (out->image != nullptr) {
    Render(out->image);
  }
}

namespace {

// The one-hot channels of a cell (GridWorld::kSymbolicChannels' first six); floor is all zeros.
void EncodeCell(GridWorld::Cell c, float* cell_out) {
  switch (c) {
    case GridWorld::Cell::kFloor:
      break;
    case GridWorld::Cell::kWall:
      cell_out[0] = 1.0f;
      break;
    case GridWorld::Cell::kGoal:
      cell_out[1] = 1.0f;
      break;
    case GridWorld::Cell::kKey:
      cell_out[2] = 1.0f;
      break;
    case GridWorld::Cell::kDoorLocked:
      cell_out[3] = 1.0f;
      break;
    case GridWorld::Cell::kDoorClosed:
      cell_out[4] = 1.0f;
      break;
    case GridWorld::Cell::kDoorOpen:
      cell_out[5] = 1.0f;
      break;
  }
}

}  // namespace

void GridWorld::Encode(float* vector) const {
  std::fill(vector, vector + spec_.vector_size, 0.0f);
  if (options_.egocentric) {
    Cell view[kViewSize][kViewSize];
    bool seen[kViewSize][kViewSize];
    EgocentricView(view, seen);
    for (int r = 0; r < kViewSize; ++r) {
      for (int c = 0; c < kViewSize; ++c) {
        float* cell_out = vector + (r * kViewSize + c) * kEgocentricChannels;
        if (seen[r][c]) {
          EncodeCell(view[r][c], cell_out);
        } else {
          cell_out[kEgocentricChannels - 1] = 1.0f;
        }
      }
    }
    float* agent = vector + ((kViewSize - 1) * kViewSize + kViewSize / 2) * kEgocentricChannels;
    agent[6 + agent_dir_] = 1.0f;
    if (carrying_key_) agent[10] = 1.0f;
    return;
  }
  for (int y = 0; y < size_; ++y) {
    for (int x = 0; x < size_; ++x) {
      EncodeCell(cell(x, y), vector + (y * size_ + x) * kSymbolicChannels);
    }
  }
  float* agent = vector + (agent_y_ * size_ + agent_x_) * kSymbolicChannels;
  agent[6 + agent_dir_] = 1.0f;
  if (carrying_key_) agent[10] = 1.0f;
}

void GridWorld::DrawAgent(int row, int col, int dir, uint8_t* image) const {
  // A triangle pointing in `dir`: tip at 90% of the cell, base at 15%, 70% wide.
  int y0, y1, x0, x1;
  renderer_.CellBox(row, col, &y0, &y1, &x0, &x1);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      const float u = (x - x0 + 0.5f) / (x1 - x0);
      const float v = (y - y0 + 0.5f) / (y1 - y0);
      float along, across;
      switch (dir) {
        case 0:
          along = u;
          across = v;
          break;
        case 1:
          along = v;
          across = u;
          break;
        case 2:
          along = 1.0f - u;
          across = v;
          break;
        default:
          along = 1.0f - v;
          across = u;
          break;
      }
      if (along >= 0.15f && along <= 0.9f &&
          std::fabs(across - 0.5f) <= 0.35f * (0.9f - along) / 0.75f + 1e-6f) {
        renderer_.SetPixel(y, x, kAgentColor, image);
      }
    }
  }
}

absl::Status GridWorld::RenderRgb(std::vector<uint8_t>* rgb, int* height, int* width) {
  const int h = renderer_.height(), w = renderer_.width(), c = renderer_.channels();
  std::vector<uint8_t> image(static_cast<size_t>(h) * w * c);
  Render(image.data());
  ImageToRgb(image.data(), h, w, c, rgb);
  *height = h;
  *width = w;
  return absl::OkStatus();
}

void GridWorld::Render(uint8_t* image) {
  auto color_of = [](Cell c) {
    switch (c) {
      case Cell::kWall:
        return kWallColor;
      case Cell::kGoal:
        return kGoalColor;
      case Cell::kDoorLocked:
        return kDoorLockedColor;
      case Cell::kDoorClosed:
        return kDoorClosedColor;
      case Cell::kDoorOpen:
        return kDoorOpenColor;
      case Cell::kKey:  // drawn below as a smaller square on the floor
      case Cell::kFloor:
        return kFloorColor;
    }
    return kFloorColor;
  };
  const int rows = renderer_.rows();
  const int cols = renderer_.cols();
  int key_row = -1, key_col = -1;  // the (only) key, in render coordinates
  if (!options_.egocentric) {
    for (int y = 0; y < rows; ++y) {
      for (int x = 0; x < cols; ++x) {
        const Cell c = cell(x, y);
        cell_colors_[y * cols + x] = color_of(c);
        if (c == Cell::kKey) key_row = y, key_col = x;
      }
    }
  } else {
    Cell view[kViewSize][kViewSize];
    bool seen[kViewSize][kViewSize];
    EgocentricView(view, seen);
    for (int r = 0; r < kViewSize; ++r) {
      for (int c = 0; c < kViewSize; ++c) {
        cell_colors_[r * cols + c] = seen[r][c] ? color_of(view[r][c]) : kUnseenColor;
        if (seen[r][c] && view[r][c] == Cell::kKey) key_row = r, key_col = c;
      }
    }
  }
  renderer_.Render(cell_colors_.data(), image);
  if (key_row >= 0) {
    int y0, y1, x0, x1;
    renderer_.CellBox(key_row, key_col, &y0, &y1, &x0, &x1);
    const int my = (y1 - y0) / 4, mx = (x1 - x0) / 4;
    for (int y = y0 + my; y < y1 - my; ++y) {
      for (int x = x0 + mx; x < x1 - mx; ++x) renderer_.SetPixel(y, x, kKeyColor, image);
    }
  }
  if (options_.egocentric) {
    DrawAgent(kViewSize - 1, kViewSize / 2, 3, image);
  } else {
    DrawAgent(agent_y_, agent_x_, agent_dir_, image);
  }
}

void GridWorld::EgocentricView(Cell view[kViewSize][kViewSize],
                               bool seen[kViewSize][kViewSize]) const {
  const int right = (agent_dir_ + 1) % 4;
  for (int r = 0; r < kViewSize; ++r) {
    for (int c = 0; c < kViewSize; ++c) {
      const int ahead = kViewSize - 1 - r;
      const int side = c - kViewSize / 2;
      const int x = agent_x_ + ahead * kDx[agent_dir_] + side * kDx[right];
      const int y = agent_y_ + ahead * kDy[agent_dir_] + side * kDy[right];
      view[r][c] = InGrid(x, y) ? cell(x, y) : Cell::kWall;
    }
  }
  for (int r = 0; r < kViewSize; ++r) {
    for (int c = 0; c < kViewSize; ++c) seen[r][c] = false;
  }
  seen[kViewSize - 1][kViewSize / 2] = true;
  for (int r = kViewSize - 1; r >= 0; --r) {
    // Light spreads sideways along a row and diagonally away from the agent, stopping at
    // opaque cells (which are themselves visible).
    for (int c = 0; c < kViewSize - 1; ++c) {
      if (!seen[r][c] || Opaque(view[r][c])) continue;
      seen[r][c + 1] = true;
      if (r > 0) seen[r - 1][c + 1] = seen[r - 1][c] = true;
    }
    for (int c = kViewSize - 1; c > 0; --c) {
      if (!seen[r][c] || Opaque(view[r][c])) continue;
      seen[r][c - 1] = true;
      if (r > 0) seen[r - 1][c - 1] = seen[r - 1][c] = true;
    }
  }
}

}  // namespace dreamfleet::envs
