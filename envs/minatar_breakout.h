// MinAtar Breakout: a paddle on the bottom row, a ball moving diagonally and three rows of bricks.
// Each brick hit gives +1; the bricks come back when all are gone; missing the ball ends the game.
// No difficulty ramping (as in MinAtar).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "envs/minatar_game.h"

namespace dreamfleet::envs {

class MinAtarBreakout : public MinAtarGame {
 public:
  enum Channel { kPaddle = 0, kBall = 1, kTrail = 2, kBrick = 3 };

  const std::vector<std::string>& channel_names() const override;
  void Reset(Rng* rng) override;
  float Act(int action, Rng* rng, bool* terminal) override;
  void WriteState(uint8_t* state) const override;
  float max_reward() const override { return 1.0f; }
  std::vector<int> minimal_actions() const override { return {kNoop, kLeft, kRight}; }

  // State, for tests.
  int paddle_x() const { return paddle_x_; }
  int ball_x() const { return ball_x_; }
  int ball_y() const { return ball_y_; }
  int ball_dir() const { return ball_dir_; }  // 0 up-left, 1 up-right, 2 down-right, 3 down-left
  bool brick(int y, int x) const { return bricks_[y][x] != 0; }
  int bricks_left() const;
  // Places the ball (tests use this to set up a bounce or a miss).
  void SetBall(int x, int y, int dir) {
    ball_x_ = last_x_ = x;
    ball_y_ = last_y_ = y;
    ball_dir_ = dir;
  }
  void SetPaddle(int x) { paddle_x_ = x; }
  void ClearBricks();

 private:
  void FillBricks();

  uint8_t bricks_[kMinAtarSize][kMinAtarSize] = {};
  int paddle_x_ = 4;
  int ball_x_ = 0, ball_y_ = 3, ball_dir_ = 2;
  int last_x_ = 0, last_y_ = 3;
  bool strike_ = false;
  bool terminal_ = false;
};

}  // namespace dreamfleet::envs
