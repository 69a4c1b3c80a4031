// MinAtar SpaceInvaders: a cannon on the bottom row shoots at a 4x6 block of aliens that sweeps
// sideways and steps down at the edges, moving faster as fewer remain. Each alien hit gives +1;
// an alien bullet or an alien reaching the cannon ends the game. A cleared wave is replaced; with
// ramping each new wave moves faster.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "envs/minatar_game.h"

namespace dreamfleet::envs {
namespace {

constexpr int kShotCoolDown = 5;
constexpr int kEnemyMoveInterval = 12;
constexpr int kEnemyShotInterval = 10;
constexpr int kN = kMinAtarSize;

class SpaceInvaders : public MinAtarGame {
 public:
  explicit SpaceInvaders(bool ramping) : ramping_(ramping) {}

  const std::vector<std::string>& channel_names() const override {
    static const auto* names = new std::vector<std::string>{
        "cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet"};
    return *names;
  }
  float max_reward() const override { return 2.0f; }  // at most two friendly bullets in flight
  std::vector<int> minimal_actions() const override { return {kNoop, kLeft, kRight, kFire}; }

  void Reset(Rng* /*rng*/) override {
    pos_ = 5;
    std::memset(f_bullets_, 0, sizeof(f_bullets_));
    std::memset(e_bullets_, 0, sizeof(e_bullets_));
    std::memset(aliens_, 0, sizeof(aliens_));
    FillAliens();
    alien_dir_ = -1;
    enemy_move_interval_ = kEnemyMoveInterval;
    alien_move_timer_ = enemy_move_interval_;
    alien_shot_timer_ = kEnemyShotInterval;
    ramp_index_ = 0;
    shot_timer_ = 0;
    terminal_ = false;
  }

  float Act(int action, Rng* /*rng*/, bool* terminal) override {
    float reward = 0.0f;
    if (terminal_) {
      *terminal = true;
      return reward;
    }
    if (action == kFire && shot_timer_ == 0) {
      f_bullets_[9][pos_] = 1;
      shot_timer_ = kShotCoolDown;
    } else if (action == kLeft) {
      pos_ = std::max(0, pos_ - 1);
    } else if (action == kRight) {
      pos_ = std::min(9, pos_ + 1);
    }
    // Friendly bullets rise one row, alien bullets fall one row.
    for (int y = 0; y < kN - 1; ++y) std::memcpy(f_bullets_[y], f_bullets_[y + 1], kN);
    std::memset(f_bullets_[kN - 1], 0, kN);
    for (int y = kN - 1; y > 0; --y) std::memcpy(e_bullets_[y], e_bullets_[y - 1], kN);
    std::memset(e_bullets_[0], 0, kN);
    if (e_bullets_[9][pos_]) terminal_ = true;

    if (aliens_[9][pos_]) terminal_ = true;
    if (alien_move_timer_ == 0) {
      alien_move_timer_ = std::min(CountAliens(), enemy_move_interval_);
      if ((ColumnHasAlien(0) && alien_dir_ < 0) || (ColumnHasAlien(9) && alien_dir_ > 0)) {
        alien_dir_ = -alien_dir_;
        if (RowHasAlien(9)) terminal_ = true;
        // The block steps down one row (MinAtar rolls the array, so row 9 wraps to row 0; it is
        // empty unless the game just ended).
        uint8_t bottom[kN];
        std::memcpy(bottom, aliens_[kN - 1], kN);
        for (int y = kN - 1; y > 0; --y) std::memcpy(aliens_[y], aliens_[y - 1], kN);
        std::memcpy(aliens_[0], bottom, kN);
      } else {
        uint8_t shifted[kN][kN];
        for (int y = 0; y < kN; ++y) {
          for (int x = 0; x < kN; ++x) shifted[y][(x + alien_dir_ + kN) % kN] = aliens_[y][x];
        }
        std::memcpy(aliens_, shifted, sizeof(aliens_));
      }
      if (aliens_[9][pos_]) terminal_ = true;
    }
    if (alien_shot_timer_ == 0) {
      alien_shot_timer_ = kEnemyShotInterval;
      int y, x;
      if (NearestAlien(&y, &x)) e_bullets_[y][x] = 1;
    }
    for (int y = 0; y < kN; ++y) {
      for (int x = 0; x < kN; ++x) {
        if (aliens_[y][x] && f_bullets_[y][x]) {
          reward += 1.0f;
          aliens_[y][x] = 0;
          f_bullets_[y][x] = 0;
        }
      }
    }
    if (shot_timer_ > 0) --shot_timer_;
    --alien_move_timer_;
    --alien_shot_timer_;
    if (CountAliens() == 0) {
      if (ramping_ && enemy_move_interval_ > 6) {
        --enemy_move_interval_;
        ++ramp_index_;
      }
      FillAliens();
    }
    *terminal = terminal_;
    return reward;
  }

  void WriteState(uint8_t* state) const override {
    const int c = 6;
    SetState(state, c, 9, pos_, 0);
    for (int y = 0; y < kN; ++y) {
      for (int x = 0; x < kN; ++x) {
        if (aliens_[y][x]) {
          SetState(state, c, y, x, 1);
          SetState(state, c, y, x, alien_dir_ < 0 ? 2 : 3);
        }
        if (f_bullets_[y][x]) SetState(state, c, y, x, 4);
        if (e_bullets_[y][x]) SetState(state, c, y, x, 5);
      }
    }
  }

 private:
  void FillAliens() {
    for (int y = 0; y < 4; ++y) {
      for (int x = 2; x < 8; ++x) aliens_[y][x] = 1;
    }
  }
  int CountAliens() const {
    int n = 0;
    for (const auto& row : aliens_) {
      for (uint8_t a : row) n += a;
    }
    return n;
  }
  bool ColumnHasAlien(int x) const {
    for (int y = 0; y < kN; ++y) {
      if (aliens_[y][x]) return true;
    }
    return false;
  }
  bool RowHasAlien(int y) const {
    for (int x = 0; x < kN; ++x) {
      if (aliens_[y][x]) return true;
    }
    return false;
  }
  // The lowest alien of the column nearest the cannon (ties: the left column), as MinAtar.
  bool NearestAlien(int* y, int* x) const {
    for (int d = 0; d < kN; ++d) {
      for (int cx : {pos_ - d, pos_ + d}) {
        if (cx < 0 || cx >= kN) continue;
        for (int cy = kN - 1; cy >= 0; --cy) {
          if (aliens_[cy][cx]) {
            *y = cy;
            *x = cx;
            return true;
          }
        }
      }
    }
    return false;
  }

  bool ramping_;
  int pos_ = 5;
  uint8_t f_bullets_[kN][kN] = {};
  uint8_t e_bullets_[kN][kN] = {};
  uint8_t aliens_[kN][kN] = {};
  int alien_dir_ = -1;
  int enemy_move_interval_ = kEnemyMoveInterval;
  int alien_move_timer_ = kEnemyMoveInterval;
  int alien_shot_timer_ = kEnemyShotInterval;
  int ramp_index_ = 0;
  int shot_timer_ = 0;
  bool terminal_ = false;
};

}  // namespace

std::unique_ptr<MinAtarGame> MakeMinAtarSpaceInvaders(bool ramping) {
  return std::make_unique<SpaceInvaders>(ramping);
}

}  // namespace dreamfleet::envs
