// MinAtar Seaquest: a submarine shoots fish and enemy subs (+1 each), collects divers (up to 6)
// and must surface before its oxygen (200 steps) runs out. Surfacing with no diver ends the game;
// surfacing with 6 divers gives a bonus of oxygen*10/200 and empties the sub; surfacing with fewer
// uses up one diver. Enemies, enemy bullets and running out of oxygen end the game. With ramping,
// each surfacing speeds up enemy spawning and movement.
// One deliberate difference from the MinAtar code: there, surfacing with 6 divers empties the sub
// and then also subtracts one diver (count -1, after which surfacing no longer checks for divers);
// we follow the published rule (the sub is simply emptied).
#include <algorithm>
#include <memory>
#include <vector>

#include "envs/minatar_game.h"

namespace dreamfleet::envs {
namespace {

constexpr int kMaxOxygen = 200;
constexpr int kInitSpawnSpeed = 20;
constexpr int kDiverSpawnSpeed = 30;
constexpr int kInitMoveInterval = 5;
constexpr int kShotCoolDown = 5;
constexpr int kEnemyShotInterval = 10;
constexpr int kDiverMoveInterval = 5;
constexpr int kMaxDivers = 6;

enum Channel {
  kSubFront = 0,
  kSubBack,
  kFriendlyBullet,
  kTrail,
  kEnemyBullet,
  kEnemyFish,
  kEnemySub,
  kOxygenGauge,
  kDiverGauge,
  kDiver
};

struct Mover {
  int x, y;
  bool right;      // moving right (or, for bullets, flying right)
  int move_timer;  // steps until the next move (unused for bullets)
  int shot_timer;  // enemy subs: steps until the next shot
};

bool At(const Mover& m, int x, int y) { return m.x == x && m.y == y; }

class Seaquest : public MinAtarGame {
 public:
  explicit Seaquest(bool ramping) : ramping_(ramping) {}

  const std::vector<std::string>& channel_names() const override {
    static const auto* names = new std::vector<std::string>{
        "sub_front",  "sub_back",  "friendly_bullet", "trail",       "enemy_bullet",
        "enemy_fish", "enemy_sub", "oxygen_gauge",    "diver_gauge", "diver"};
    return *names;
  }
  float max_reward() const override { return 13.0f; }  // <= 3 bullets in flight + a full bonus
  std::vector<int> minimal_actions() const override {
    return {kNoop, kLeft, kUp, kRight, kDown, kFire};
  }

  void Reset(Rng* /*rng*/) override {
    oxygen_ = kMaxOxygen;
    diver_count_ = 0;
    sub_x_ = 5;
    sub_y_ = 0;
    sub_right_ = false;
    f_bullets_.clear();
    e_bullets_.clear();
    e_fish_.clear();
    e_subs_.clear();
    divers_.clear();
    e_spawn_speed_ = kInitSpawnSpeed;
    e_spawn_timer_ = e_spawn_speed_;
    d_spawn_timer_ = kDiverSpawnSpeed;
    move_speed_ = kInitMoveInterval;
    ramp_index_ = 0;
    shot_timer_ = 0;
    surface_ = true;
    terminal_ = false;
  }

  float Act(int action, Rng* rng, bool* terminal) override {
    float reward = 0.0f;
    if (terminal_) {
      *terminal = true;
      return reward;
    }
    if (e_spawn_timer_ == 0) {
      SpawnEnemy(rng);
      e_spawn_timer_ = e_spawn_speed_;
    }
    if (d_spawn_timer_ == 0) {
      SpawnDiver(rng);
      d_spawn_timer_ = kDiverSpawnSpeed;
    }
    if (action == kFire && shot_timer_ == 0) {
      shot_timer_ = kShotCoolDown;
      f_bullets_.push_back(Mover{sub_x_, sub_y_, sub_right_, 0, 0});
    } else if (action == kLeft) {
      sub_x_ = std::max(0, sub_x_ - 1);
      sub_right_ = false;
    } else if (action == kRight) {
      sub_x_ = std::min(9, sub_x_ + 1);
      sub_right_ = true;
    } else if (action == kUp) {
      sub_y_ = std::max(0, sub_y_ - 1);
    } else if (action == kDown) {
      sub_y_ = std::min(8, sub_y_ + 1);
    }

    // Friendly bullets fly one cell a step and destroy what they meet (fish first).
    for (int i = static_cast<int>(f_bullets_.size()) - 1; i >= 0; --i) {
      Mover& b = f_bullets_[i];
      b.x += b.right ? 1 : -1;
      if (b.x < 0 || b.x > 9) {
        f_bullets_.erase(f_bullets_.begin() + i);
        continue;
      }
      const int bx = b.x, by = b.y;
      if (RemoveAllAt(&e_fish_, bx, by) || RemoveAllAt(&e_subs_, bx, by)) {
        f_bullets_.erase(f_bullets_.begin() + i);
        reward += 1.0f;
      }
    }

    // Divers drift and are picked up when the sub is on their cell (while there is room).
    for (int i = static_cast<int>(divers_.size()) - 1; i >= 0; --i) {
      Mover& d = divers_[i];
      if (At(d, sub_x_, sub_y_) && diver_count_ < kMaxDivers) {
        divers_.erase(divers_.begin() + i);
        ++diver_count_;
        continue;
      }
      if (d.move_timer == 0) {
        d.move_timer = kDiverMoveInterval;
        d.x += d.right ? 1 : -1;
        if (d.x < 0 || d.x > 9) {
          divers_.erase(divers_.begin() + i);
        } else if (At(d, sub_x_, sub_y_) && diver_count_ < kMaxDivers) {
          divers_.erase(divers_.begin() + i);
          ++diver_count_;
        }
      } else {
        --d.move_timer;
      }
    }

    reward += MoveEnemies(&e_subs_, /*shoots=*/true);

    // Enemy bullets.
    for (int i = static_cast<int>(e_bullets_.size()) - 1; i >= 0; --i) {
      Mover& b = e_bullets_[i];
      if (At(b, sub_x_, sub_y_)) terminal_ = true;
      b.x += b.right ? 1 : -1;
      if (b.x < 0 || b.x > 9) {
        e_bullets_.erase(e_bullets_.begin() + i);
      } else if (At(b, sub_x_, sub_y_)) {
        terminal_ = true;
      }
    }

    reward += MoveEnemies(&e_fish_, /*shoots=*/false);

    if (e_spawn_timer_ > 0) --e_spawn_timer_;
    if (d_spawn_timer_ > 0) --d_spawn_timer_;
    if (shot_timer_ > 0) --shot_timer_;
    if (oxygen_ < 0) terminal_ = true;
    if (sub_y_ > 0) {
      --oxygen_;
      surface_ = false;
    } else if (!surface_) {
      if (diver_count_ == 0) {
        terminal_ = true;
      } else {
        reward += Surface();
      }
    }
    *terminal = terminal_;
    return reward;
  }

  void WriteState(uint8_t* state) const override {
    const int c = 10;
    SetState(state, c, sub_y_, sub_x_, kSubFront);
    const int back_x = sub_right_ ? sub_x_ - 1 : sub_x_ + 1;
    if (back_x >= 0 && back_x <= 9) SetState(state, c, sub_y_, back_x, kSubBack);
    for (int x = 0; x < std::max(0, oxygen_) * 10 / kMaxOxygen; ++x) {
      SetState(state, c, 9, x, kOxygenGauge);
    }
    for (int x = 9 - diver_count_; x < 9; ++x) SetState(state, c, 9, x, kDiverGauge);
    for (const Mover& b : f_bullets_) SetState(state, c, b.y, b.x, kFriendlyBullet);
    for (const Mover& b : e_bullets_) SetState(state, c, b.y, b.x, kEnemyBullet);
    auto with_trail = [&](const std::vector<Mover>& movers, int channel) {
      for (const Mover& m : movers) {
        SetState(state, c, m.y, m.x, channel);
        const int tx = m.right ? m.x - 1 : m.x + 1;
        if (tx >= 0 && tx <= 9) SetState(state, c, m.y, tx, kTrail);
      }
    };
    with_trail(e_fish_, kEnemyFish);
    with_trail(e_subs_, kEnemySub);
    with_trail(divers_, kDiver);
  }

 private:
  static bool RemoveAllAt(std::vector<Mover>* movers, int x, int y) {
    const auto end =
        std::remove_if(movers->begin(), movers->end(), [&](const Mover& m) { return At(m, x, y); });
    const bool any = end != movers->end();
    movers->erase(end, movers->end());
    return any;
  }

  // Moves fish or enemy subs; they end the game on contact, die on a friendly bullet (+1), and
  // enemy subs fire every kEnemyShotInterval steps.
  float MoveEnemies(std::vector<Mover>* enemies, bool shoots) {
    float reward = 0.0f;
    for (int i = static_cast<int>(enemies->size()) - 1; i >= 0; --i) {
      Mover& e = (*enemies)[i];
      if (At(e, sub_x_, sub_y_)) terminal_ = true;
      bool removed = false;
      if (e.move_timer == 0) {
        e.move_timer = move_speed_;
        e.x += e.right ? 1 : -1;
        if (e.x < 0 || e.x > 9) {
          removed = true;
        } else if (At(e, sub_x_, sub_y_)) {
          terminal_ = true;
        } else if (RemoveAllAt(&f_bullets_, e.x, e.y)) {
          removed = true;
          reward += 1.0f;
        }
      } else {
        --e.move_timer;
      }
      if (shoots && !removed) {
        if (e.shot_timer == 0) {
          e.shot_timer = kEnemyShotInterval;
          e_bullets_.push_back(Mover{e.x, e.y, e.right, 0, 0});
        } else {
          --e.shot_timer;
        }
      }
      if (removed) enemies->erase(enemies->begin() + i);
    }
    return reward;
  }

  float Surface() {
    surface_ = true;
    float reward = 0.0f;
    if (diver_count_ == kMaxDivers) {
      diver_count_ = 0;
      reward = static_cast<float>(oxygen_ * 10 / kMaxOxygen);
    } else {
      --diver_count_;
    }
    oxygen_ = kMaxOxygen;
    if (ramping_ && (e_spawn_speed_ > 1 || move_speed_ > 2)) {
      if (move_speed_ > 2 && ramp_index_ % 2 == 1) --move_speed_;
      if (e_spawn_speed_ > 1) --e_spawn_speed_;
      ++ramp_index_;
    }
    return reward;
  }

  void SpawnEnemy(Rng* rng) {
    const bool right = rng->UniformInt(0, 1) == 0;
    const bool is_sub = rng->Uniform() < 1.0 / 3.0;
    const int x = right ? 0 : 9;
    const int y = rng->UniformInt(1, 8);
    // No spawning into a row where an enemy already moves the other way.
    for (const auto* group : {&e_subs_, &e_fish_}) {
      for (const Mover& m : *group) {
        if (m.y == y && m.right != right) return;
      }
    }
    if (is_sub) {
      e_subs_.push_back(Mover{x, y, right, move_speed_, kEnemyShotInterval});
    } else {
      e_fish_.push_back(Mover{x, y, right, move_speed_, 0});
    }
  }

  void SpawnDiver(Rng* rng) {
    const bool right = rng->UniformInt(0, 1) == 0;
    const int x = right ? 0 : 9;
    const int y = rng->UniformInt(1, 8);
    divers_.push_back(Mover{x, y, right, kDiverMoveInterval, 0});
  }

  bool ramping_;
  int oxygen_ = kMaxOxygen;
  int diver_count_ = 0;
  int sub_x_ = 5, sub_y_ = 0;
  bool sub_right_ = false;
  std::vector<Mover> f_bullets_, e_bullets_, e_fish_, e_subs_, divers_;
  int e_spawn_speed_ = kInitSpawnSpeed, e_spawn_timer_ = kInitSpawnSpeed;
  int d_spawn_timer_ = kDiverSpawnSpeed;
  int move_speed_ = kInitMoveInterval;
  int ramp_index_ = 0;
  int shot_timer_ = 0;
  bool surface_ = true;
  bool terminal_ = false;
};

}  // namespace

std::unique_ptr<MinAtarGame> MakeMinAtarSeaquest(bool ramping) {
  return std::make_unique<Seaquest>(ramping);
}

}  // namespace dreamfleet::envs
