// Gridworlds in the spirit of MiniGrid (Chevalier-Boisvert et al.), written from its published
// rules: Empty, FourRooms and DoorKey. Data flow: Reset(seed) lays out the grid from the seed,
// Step(action) moves the agent and Render writes the full grid (or MiniGrid's 7x7 egocentric view)
// into the caller's image. With out->image == nullptr rendering is skipped (state-only stepping).
//
// Rules (as MiniGrid): the agent has a position and a direction (0 right, 1 down, 2 left, 3 up);
// `left`/`right` turn, `forward` moves into the cell ahead unless it is a wall, a key or a closed
// door; `pickup` takes the key ahead when empty-handed; `toggle` opens/closes the door ahead and
// unlocks a locked door only while carrying the key. Reaching the goal ends the episode
// (is_terminal, success) with reward 1 - 0.9 * step_count / max_steps; every other step gives 0.
// The time limit max_steps ends the episode with is_last but not is_terminal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envs/cell_renderer.h"
#include "envs/environment.h"
#include "envs/rng.h"

namespace dreamfleet::envs {

enum class GridLayout {
  kEmpty,        // walls around an open room, goal in the bottom-right corner
  kEmptyRandom,  // the same with a random start position and direction
  kFourRooms,    // four rooms joined by one random gap per wall; random agent and goal
  kDoorKey,      // a wall with a locked door splits the room; key on the agent's side
};

struct GridWorldOptions {
  std::string name;
  GridLayout layout = GridLayout::kEmpty;
  int size = 5;       // grid side in cells, outer walls included (MiniGrid's `size`)
  int max_steps = 0;  // 0 = MiniGrid's default for the layout
  int image_size = 64;
  bool grayscale = false;
  bool egocentric = false;  // render MiniGrid's 7x7 agent-centred view instead of the whole grid
  // No image: the observation is the whole grid as one-hot cells in `vector` (MiniGrid's symbolic
  // encoding, fully observed), size * size * kSymbolicChannels floats; with `egocentric`, the 7x7
  // view as one-hot cells, kViewSize * kViewSize * kEgocentricChannels floats.
  bool symbolic = false;
};

class GridWorld : public Environment {
 public:
  enum Action { kLeft = 0, kRight = 1, kForward = 2, kPickup = 3, kToggle = 4 };
  enum class Cell : uint8_t { kFloor, kWall, kGoal, kKey, kDoorLocked, kDoorClosed, kDoorOpen };
  static constexpr int kViewSize = 7;  // MiniGrid's agent_view_size
  // Symbolic cell channels: wall, goal, key, locked door, closed door, open door, agent facing
  // right/down/left/up, agent carrying the key. An empty floor cell is all zeros.
  static constexpr int kSymbolicChannels = 11;
  // Symbolic egocentric view (agent at the bottom centre facing up, as MiniGrid draws it): the
  // same 11 channels, the direction ones holding the agent's compass direction at its own cell,
  // and a 12th marking cells the agent cannot see (occluded, or outside the grid).
  static constexpr int kEgocentricChannels = 12;

  static absl::StatusOr<std::unique_ptr<GridWorld>> Create(const GridWorldOptions& options);
  // MiniGrid's default time limit for a layout and size.
  static int DefaultMaxSteps(GridLayout layout, int size);

  const EnvSpec& spec() const override { return spec_; }
  absl::Status Reset(uint64_t seed, StepBuffer* out) override;
  absl::Status Step(int action, StepBuffer* out) override;
  // What the image observation shows (the grid, or the egocentric view) at the observation's
  // size, also for a symbolic env; a grayscale env's gray is copied to all three channels.
  absl::Status RenderRgb(std::vector<uint8_t>* rgb, int* height, int* width) override;

  // Read-only state, for tests and debugging.
  int size() const { return size_; }
  Cell cell(int x, int y) const { return grid_[y * size_ + x]; }
  int agent_x() const { return agent_x_; }
  int agent_y() const { return agent_y_; }
  int agent_dir() const { return agent_dir_; }
  bool carrying_key() const { return carrying_key_; }
  int step_count() const { return step_count_; }
  int max_steps() const { return max_steps_; }

  // Colours used by the renderer (MiniGrid's palette), exposed for tests.
  static constexpr Rgb kFloorColor{0, 0, 0};
  static constexpr Rgb kWallColor{100, 100, 100};
  static constexpr Rgb kGoalColor{0, 255, 0};
  static constexpr Rgb kKeyColor{255, 255, 0};
  static constexpr Rgb kDoorLockedColor{255, 255, 0};
  static constexpr Rgb kDoorClosedColor{128, 128, 0};
  static constexpr Rgb kDoorOpenColor{64, 64, 0};
  static constexpr Rgb kAgentColor{255, 0, 0};
  static constexpr Rgb kUnseenColor{40, 40, 40};  // egocentric view: occluded or outside the grid

 private:
  GridWorld(const GridWorldOptions& options, int max_steps);

  void Layout();
  void PlaceRandomly(int x0, int y0, int w, int h, int* x, int* y);
  void Set(int x, int y, Cell c) { grid_[y * size_ + x] = c; }
  bool InGrid(int x, int y) const { return x >= 0 && y >= 0 && x < size_ && y < size_; }
  // MiniGrid's partial view: the 7x7 cells ahead of the agent, [row][col], rotated so that the
  // agent sits at the bottom centre facing up, and which of them it sees (walls and closed doors
  // hide what is behind them).
  void EgocentricView(Cell view[kViewSize][kViewSize], bool seen[kViewSize][kViewSize]) const;
  void Render(uint8_t* image);
  void Encode(float* vector) const;
  void Observe(StepBuffer* out);
  void DrawAgent(int row, int col, int dir, uint8_t* image) const;

  GridWorldOptions options_;
  EnvSpec spec_;
  int size_;
  int max_steps_;
  CellRenderer renderer_;
  Rng rng_;
  std::vector<Cell> grid_;  // [size, size] row-major: grid_[y * size + x]
  std::vector<Rgb> cell_colors_;
  int agent_x_ = 1, agent_y_ = 1, agent_dir_ = 0;
  bool carrying_key_ = false;
  int step_count_ = 0;
  bool done_ = false;
};

}  // namespace dreamfleet::envs
