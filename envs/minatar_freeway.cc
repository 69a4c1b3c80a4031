// MinAtar Freeway: the chicken (column 4) crosses eight lanes of cars from the bottom row to the
// top; each crossing gives +1, re-randomises the car speeds and puts the chicken back at the
// bottom. A car hitting the chicken sends it back to the bottom. The game ends after 2500 steps
// (a rule of the game, so it is a real termination). The chicken moves at most every 3 steps.
#include <algorithm>
#include <cstdlib>
#include <memory>

#include "envs/minatar_game.h"

namespace dreamfleet::envs {
namespace {

constexpr int kPlayerSpeed = 3;
constexpr int kTimeLimit = 2500;
constexpr int kNumCars = 8;

class Freeway : public MinAtarGame {
 public:
  const std::vector<std::string>& channel_names() const override {
    static const auto* names = new std::vector<std::string>{"chicken", "car",    "speed1", "speed2",
                                                            "speed3",  "speed4", "speed5"};
    return *names;
  }
  float max_reward() const override { return 1.0f; }
  std::vector<int> minimal_actions() const override { return {kNoop, kUp, kDown}; }

  void Reset(Rng* rng) override {
    RandomizeCars(rng, /*initialize=*/true);
    pos_ = 9;
    move_timer_ = kPlayerSpeed;
    terminate_timer_ = kTimeLimit;
    terminal_ = false;
  }

  float Act(int action, Rng* rng, bool* terminal) override {
    float reward = 0.0f;
    if (terminal_) {
      *terminal = true;
      return reward;
    }
    if (action == kUp && move_timer_ == 0) {
      move_timer_ = kPlayerSpeed;
      pos_ = std::max(0, pos_ - 1);
    } else if (action == kDown && move_timer_ == 0) {
      move_timer_ = kPlayerSpeed;
      pos_ = std::min(9, pos_ + 1);
    }
    if (pos_ == 0) {
      reward += 1.0f;
      RandomizeCars(rng, /*initialize=*/false);
      pos_ = 9;
    }
    for (Car& car : cars_) {
      if (car.x == 4 && car.y == pos_) pos_ = 9;
      if (car.timer == 0) {
        car.timer = std::abs(car.speed);
        car.x += car.speed > 0 ? 1 : -1;
        if (car.x < 0) car.x = 9;
        if (car.x > 9) car.x = 0;
        if (car.x == 4 && car.y == pos_) pos_ = 9;
      } else {
        --car.timer;
      }
    }
    if (move_timer_ > 0) --move_timer_;
    --terminate_timer_;
    if (terminate_timer_ < 0) terminal_ = true;
    *terminal = terminal_;
    return reward;
  }

  void WriteState(uint8_t* state) const override {
    const int c = 7;
    SetState(state, c, pos_, 4, 0);
    for (const Car& car : cars_) {
      SetState(state, c, car.y, car.x, 1);
      int back_x = car.speed > 0 ? car.x - 1 : car.x + 1;
      if (back_x < 0) back_x = 9;
      if (back_x > 9) back_x = 0;
      // The trail's channel encodes the speed: |speed| 1 (fastest) .. 5 (slowest).
      SetState(state, c, car.y, back_x, 1 + std::abs(car.speed));
    }
  }

 private:
  struct Car {
    int x, y, timer, speed;  // speed: +-(steps between moves); its sign is the direction
  };

  void RandomizeCars(Rng* rng, bool initialize) {
    for (int i = 0; i < kNumCars; ++i) {
      const int magnitude = rng->UniformInt(1, 5);
      const int speed = rng->UniformInt(0, 1) == 0 ? -magnitude : magnitude;
      if (initialize) {
        cars_[i] = Car{0, i + 1, magnitude, speed};
      } else {
        cars_[i].timer = magnitude;
        cars_[i].speed = speed;
      }
    }
  }

  Car cars_[kNumCars] = {};
  int pos_ = 9;
  int move_timer_ = kPlayerSpeed;
  int terminate_timer_ = kTimeLimit;
  bool terminal_ = false;
};

}  // namespace

std::unique_ptr<MinAtarGame> MakeMinAtarFreeway() { return std::make_unique<Freeway>(); }

}  // namespace dreamfleet::envs
