// See minatar_breakout.h. Rules from the MinAtar paper and its published game description.
#include "envs/minatar_breakout.h"

#include <algorithm>
#include <memory>

namespace dreamfleet::envs {
namespace {
// Direction after bouncing off a side wall, off the ceiling/a brick, or off the paddle's corner.
constexpr int kFlipX[4] = {1, 0, 3, 2};
constexpr int kFlipY[4] = {3, 2, 1, 0};
constexpr int kFlipXY[4] = {2, 3, 0, 1};
}  // namespace

const std::vector<std::string>& MinAtarBreakout::channel_names() const {
  static const auto* names = new std::vector<std::string>{"paddle", "ball", "trail", "brick"};
  return *names;
}

void MinAtarBreakout::FillBricks() {
  for (int y = 1; y <= 3; ++y) {
    for (int x = 0; x < kMinAtarSize; ++x) bricks_[y][x] = 1;
  }
}

void MinAtarBreakout::ClearBricks() {
  for (auto& row : bricks_) std::fill(std::begin(row), std::end(row), 0);
}

int MinAtarBreakout::bricks_left() const {
  int n = 0;
  for (const auto& row : bricks_) {
    for (uint8_t b : row) n += b;
  }
  return n;
}

void MinAtarBreakout::Reset(Rng* rng) {
  ClearBricks();
  FillBricks();
  // The ball starts on row 3 in the left or right corner, heading down and inwards.
  if (rng->UniformInt(0, 1) == 0) {
    ball_x_ = 0;
    ball_dir_ = 2;
  } else {
    ball_x_ = 9;
    ball_dir_ = 3;
  }
  ball_y_ = 3;
  last_x_ = ball_x_;
  last_y_ = ball_y_;
  paddle_x_ = 4;
  strike_ = false;
  terminal_ = false;
}

float MinAtarBreakout::Act(int action, Rng* /*rng*/, bool* terminal) {
  float reward = 0.0f;
  if (terminal_) {
    *terminal = true;
    return reward;
  }
  if (action == kLeft) paddle_x_ = std::max(0, paddle_x_ - 1);
  if (action == kRight) paddle_x_ = std::min(9, paddle_x_ + 1);

  last_x_ = ball_x_;
  last_y_ = ball_y_;
  int new_x = ball_x_ + ((ball_dir_ == 1 || ball_dir_ == 2) ? 1 : -1);
  int new_y = ball_y_ + (ball_dir_ <= 1 ? -1 : 1);
  bool strike_now = false;
  if (new_x < 0 || new_x > 9) {
    new_x = std::clamp(new_x, 0, 9);
    ball_dir_ = kFlipX[ball_dir_];
  }
  if (new_y < 0) {
    new_y = 0;
    ball_dir_ = kFlipY[ball_dir_];
  } else if (bricks_[new_y][new_x]) {
    // A brick is removed (+1) and the ball bounces back to its row; a second brick touched on the
    // very next step does not count (MinAtar's `strike` flag).
    strike_now = true;
    if (!strike_) {
      reward += 1.0f;
      strike_ = true;
      bricks_[new_y][new_x] = 0;
      new_y = last_y_;
      ball_dir_ = kFlipY[ball_dir_];
    }
  } else if (new_y == 9) {
    if (bricks_left() == 0) FillBricks();
    if (ball_x_ == paddle_x_) {
      ball_dir_ = kFlipY[ball_dir_];
      new_y = last_y_;
    } else if (new_x == paddle_x_) {
      ball_dir_ = kFlipXY[ball_dir_];
      new_y = last_y_;
    } else {
      terminal_ = true;
    }
  }
  if (!strike_now) strike_ = false;
  ball_x_ = new_x;
  ball_y_ = new_y;
  *terminal = terminal_;
  return reward;
}

void MinAtarBreakout::WriteState(uint8_t* state) const {
  const int c = 4;
  SetState(state, c, 9, paddle_x_, kPaddle);
  SetState(state, c, ball_y_, ball_x_, kBall);
  SetState(state, c, last_y_, last_x_, kTrail);
  for (int y = 0; y < kMinAtarSize; ++y) {
    for (int x = 0; x < kMinAtarSize; ++x) {
      if (bricks_[y][x]) SetState(state, c, y, x, kBrick);
    }
  }
}

std::unique_ptr<MinAtarGame> MakeMinAtarBreakout() { return std::make_unique<MinAtarBreakout>(); }

}  // namespace dreamfleet::envs
