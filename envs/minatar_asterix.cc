// MinAtar Asterix: the player moves in rows 1-8; enemies and gold spawn at a row's edge and cross
// it. Touching gold gives +1, touching an enemy ends the game. With ramping, spawning and movement
// speed up every 100 steps.
#include <algorithm>
#include <memory>
#include <optional>

#include "envs/minatar_game.h"

namespace dreamfleet::envs {
namespace {

constexpr int kRampInterval = 100;
constexpr int kInitSpawnSpeed = 10;
constexpr int kInitMoveInterval = 5;
constexpr int kSlots = 8;  // one entity per row 1..8

class Asterix : public MinAtarGame {
 public:
  explicit Asterix(bool ramping) : ramping_(ramping) {}

  const std::vector<std::string>& channel_names() const override {
    static const auto* names = new std::vector<std::string>{"player", "enemy", "trail", "gold"};
    return *names;
  }
  float max_reward() const override { return 1.0f; }  // one entity per row
  std::vector<int> minimal_actions() const override { return {kNoop, kLeft, kUp, kRight, kDown}; }

  void Reset(Rng* /*rng*/) override {
    player_x_ = 5;
    player_y_ = 5;
    for (auto& e : entities_) e.reset();
    spawn_speed_ = kInitSpawnSpeed;
    spawn_timer_ = spawn_speed_;
    move_speed_ = kInitMoveInterval;
    move_timer_ = move_speed_;
    ramp_timer_ = kRampInterval;
    ramp_index_ = 0;
    terminal_ = false;
  }

  float Act(int action, Rng* rng, bool* terminal) override {
    float reward = 0.0f;
    if (terminal_) {
      *terminal = true;
      return reward;
    }
    if (spawn_timer_ == 0) {
      SpawnEntity(rng);
      spawn_timer_ = spawn_speed_;
    }
    if (action == kLeft) player_x_ = std::max(0, player_x_ - 1);
    if (action == kRight) player_x_ = std::min(9, player_x_ + 1);
    if (action == kUp) player_y_ = std::max(1, player_y_ - 1);
    if (action == kDown) player_y_ = std::min(8, player_y_ + 1);
    for (auto& e : entities_) {
      if (e && e->x == player_x_ && e->y == player_y_) reward += Collide(&e);
    }
    if (move_timer_ == 0) {
      move_timer_ = move_speed_;
      for (auto& e : entities_) {
        if (!e) continue;
        e->x += e->moving_right ? 1 : -1;
        if (e->x < 0 || e->x > 9) {
          e.reset();
        } else if (e->x == player_x_ && e->y == player_y_) {
          reward += Collide(&e);
        }
      }
    }
    --spawn_timer_;
    --move_timer_;
    if (ramping_ && (spawn_speed_ > 1 || move_speed_ > 1)) {
      if (ramp_timer_ >= 0) {
        --ramp_timer_;
      } else {
        if (move_speed_ > 1 && ramp_index_ % 2 == 1) --move_speed_;
        if (spawn_speed_ > 1) --spawn_speed_;
        ++ramp_index_;
        ramp_timer_ = kRampInterval;
      }
    }
    *terminal = terminal_;
    return reward;
  }

  void WriteState(uint8_t* state) const override {
    const int c = 4;
    SetState(state, c, player_y_, player_x_, 0);
    for (const auto& e : entities_) {
      if (!e) continue;
      SetState(state, c, e->y, e->x, e->gold ? 3 : 1);
      const int back_x = e->moving_right ? e->x - 1 : e->x + 1;
      if (back_x >= 0 && back_x <= 9) SetState(state, c, e->y, back_x, 2);
    }
  }

 private:
  struct Entity {
    int x, y;
    bool moving_right;
    bool gold;
  };

  float Collide(std::optional<Entity>* e) {
    if ((*e)->gold) {
      e->reset();
      return 1.0f;
    }
    terminal_ = true;
    return 0.0f;
  }

  void SpawnEntity(Rng* rng) {
    const bool moving_right = rng->UniformInt(0, 1) == 0;
    const bool gold = rng->Uniform() < 1.0 / 3.0;
    int free[kSlots];
    int num_free = 0;
    for (int i = 0; i < kSlots; ++i) {
      if (!entities_[i]) free[num_free++] = i;
    }
    if (num_free == 0) return;
    const int slot = free[rng->UniformInt(0, num_free - 1)];
    entities_[slot] = Entity{moving_right ? 0 : 9, slot + 1, moving_right, gold};
  }

  bool ramping_;
  std::optional<Entity> entities_[kSlots];
  int player_x_ = 5, player_y_ = 5;
  int spawn_speed_ = kInitSpawnSpeed, spawn_timer_ = kInitSpawnSpeed;
  int move_speed_ = kInitMoveInterval, move_timer_ = kInitMoveInterval;
  int ramp_timer_ = kRampInterval, ramp_index_ = 0;
  bool terminal_ = false;
};

}  // namespace

std::unique_ptr<MinAtarGame> MakeMinAtarAsterix(bool ramping) {
  return std::make_unique<Asterix>(ramping);
}

}  // namespace dreamfleet::envs
