#include "envs/gridworld.h"

#include <deque>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "envs/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

using Cell = GridWorld::Cell;

std::unique_ptr<GridWorld> MakeGrid(GridLayout layout, int size, int max_steps = 0,
                                    bool egocentric = false) {
  GridWorldOptions o;
  o.name = "test";
  o.layout = layout;
  o.size = size;
  o.max_steps = max_steps;
  o.egocentric = egocentric;
  auto env = GridWorld::Create(o);
  EXPECT_TRUE(env.ok()) << env.status();
  return *std::move(env);
}

struct Frame {
  std::vector<uint8_t> image;
  StepBuffer buffer;
  explicit Frame(const EnvSpec& spec) : image(spec.image_bytes()) { buffer.image = image.data(); }
  Rgb Pixel(int y, int x, int width = 64) const {
    const uint8_t* p = image.data() + (y * width + x) * 3;
    return Rgb{p[0], p[1], p[2]};
  }
};

// Centre pixel of cell (row, col) of an n x n grid drawn at 64x64.
Rgb CellPixel(const Frame& f, int row, int col, int n) {
  return f.Pixel((2 * row + 1) * 64 / (2 * n), (2 * col + 1) * 64 / (2 * n));
}

constexpr int kDx[4] = {1, 0, -1, 0};
constexpr int kDy[4] = {0, 1, 0, -1};

bool Walkable(Cell c) { return c == Cell::kFloor || c == Cell::kGoal || c == Cell::kDoorOpen; }

// Breadth-first search over (x, y, dir) with left/right/forward: the shortest action sequence that
// leaves the agent facing cell (tx, ty). Empty when unreachable.
std::vector<int> PlanToFace(const GridWorld& env, int tx, int ty, bool* found) {
  using State = std::tuple<int, int, int>;
  std::map<State, std::pair<State, int>> parent;
  const State start{env.agent_x(), env.agent_y(), env.agent_dir()};
  std::deque<State> queue{start};
  parent[start] = {start, -1};
  *found = false;
  while (!queue.empty()) {
    const auto [x, y, d] = queue.front();
    queue.pop_front();
    if (x + kDx[d] == tx && y + kDy[d] == ty) {
      std::vector<int> actions;
      for (State s{x, y, d}; s != start; s = parent[s].first) actions.push_back(parent[s].second);
      *found = true;
      return std::vector<int>(actions.rbegin(), actions.rend());
    }
    const State next[3] = {{x, y, (d + 3) % 4}, {x, y, (d + 1) % 4}, {x + kDx[d], y + kDy[d], d}};
    for (int a = 0; a < 3; ++a) {
      const auto [nx, ny, nd] = next[a];
      if (a == GridWorld::kForward && !Walkable(env.cell(nx, ny))) continue;
      if (a == GridWorld::kForward && env.cell(nx, ny) == Cell::kGoal) continue;  // not yet
      if (parent.count(next[a])) continue;
      parent[next[a]] = {State{x, y, d}, a};
      queue.push_back(next[a]);
    }
  }
  return {};
}

TEST(GridWorldTest, EmptyStartsAtTopLeftFacingRightWithGoalBottomRight) {
  auto env = MakeGrid(GridLayout::kEmpty, 5);
  Frame f(env->spec());
  ASSERT_TRUE(env->Reset(7, &f.buffer).ok());
  EXPECT_TRUE(f.buffer.is_first);
  EXPECT_EQ(f.buffer.reward, 0.0f);
  EXPECT_EQ(env->agent_x(), 1);
  EXPECT_EQ(env->agent_y(), 1);
  EXPECT_EQ(env->agent_dir(), 0);
  EXPECT_EQ(env->cell(3, 3), Cell::kGoal);
  EXPECT_EQ(env->max_steps(), 4 * 5 * 5);
  EXPECT_EQ(env->spec().num_actions, 3);
}

TEST(GridWorldTest, EmptyRandomStartsAnywhereButTheGoal) {
  auto env = MakeGrid(GridLayout::kEmptyRandom, 5);
  Frame f(env->spec());
  std::set<std::tuple<int, int, int>> starts;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    ASSERT_TRUE(env->Reset(seed, &f.buffer).ok());
    EXPECT_EQ(env->cell(env->agent_x(), env->agent_y()), Cell::kFloor);
    starts.emplace(env->agent_x(), env->agent_y(), env->agent_dir());
  }
  EXPECT_EQ(starts.size(), 8u * 4u);  // 9 interior cells minus the goal, 4 directions
}

TEST(GridWorldTest, ReachingTheGoalGivesDocumentedRewardAndTerminates) {
  auto env = MakeGrid(GridLayout::kEmpty, 5);
  Frame f(env->spec());
  ASSERT_TRUE(env->Reset(1, &f.buffer).ok());
  const int script[] = {GridWorld::kForward, GridWorld::kForward, GridWorld::kRight,
                        GridWorld::kForward, GridWorld::kForward};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(env->Step(script[i], &f.buffer).ok());
    if (i < 4) {
      EXPECT_EQ(f.buffer.reward, 0.0f);
      EXPECT_FALSE(f.buffer.is_last);
    }
  }
  EXPECT_EQ(env->agent_x(), 3);
  EXPECT_EQ(env->agent_y(), 3);
  EXPECT_FLOAT_EQ(f.buffer.reward, 1.0f - 0.9f * 5.0f / 100.0f);
  EXPECT_TRUE(f.buffer.is_last);
  EXPECT_TRUE(f.buffer.is_terminal);
  EXPECT_TRUE(f.buffer.success);
  EXPECT_FALSE(f.buffer.is_first);
  EXPECT_EQ(env->Step(GridWorld::kForward, &f.buffer).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(GridWorldTest, WallsBlockMovement) {
  auto env = MakeGrid(GridLayout::kEmpty, 5);
  Frame f(env->spec());
  ASSERT_TRUE(env->Reset(1, &f.buffer).ok());
  ASSERT_TRUE(env->Step(GridWorld::kLeft, &f.buffer).ok());  // face the top wall
  EXPECT_EQ(env->agent_dir(), 3);
  ASSERT_TRUE(env->Step(GridWorld::kForward, &f.buffer).ok());
  EXPECT_EQ(env->agent_x(), 1);
  EXPECT_EQ(env->agent_y(), 1);
  ASSERT_TRUE(env->Step(GridWorld::kRight, &f.buffer).ok());  // face right again
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(env->Step(GridWorld::kForward, &f.buffer).ok());
  EXPECT_EQ(env->agent_x(), 3);  // stopped by the right wall at x = 4
  EXPECT_EQ(env->agent_y(), 1);
  EXPECT_EQ(f.buffer.reward, 0.0f);
}

TEST(GridWorldTest, TimeLimitGivesIsLastWithoutIsTerminal) {
  auto env = MakeGrid(GridLayout::kEmpty, 5, /*max_steps=*/3);
  Frame f(env->spec());
  ASSERT_TRUE(env->Reset(1, &f.buffer).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(env->Step(GridWorld::kLeft, &f.buffer).ok());
    EXPECT_EQ(f.buffer.is_last, i == 2);
  }
  EXPECT_FALSE(f.buffer.is_terminal);
  EXPECT_FALSE(f.buffer.success);
  EXPECT_EQ(f.buffer.reward, 0.0f);
  EXPECT_EQ(env->spec().max_episode_steps, 3);
}

TEST(GridWorldTest, DefaultTimeLimitsFollowMiniGrid) {
  EXPECT_EQ(GridWorld::DefaultMaxSteps(GridLayout::kEmpty, 8), 256);
  EXPECT_EQ(GridWorld::DefaultMaxSteps(GridLayout::kFourRooms, 19), 100);
  EXPECT_EQ(GridWorld::DefaultMaxSteps(GridLayout::kDoorKey, 8), 640);
}

TEST(GridWorldTest, RewardShrinksWithStepsTaken) {
  auto env = MakeGrid(GridLayout::kEmpty, 5);
  Frame f(env->spec());
  ASSERT_TRUE(env->Reset(1, &f.buffer).ok());
  // Four extra turns before the shortest path: 9 steps.
  for (int a : {0, 1, 0, 1, 2, 2, 1, 2, 2}) ASSERT_TRUE(env->Step(a, &f.buffer).ok());
  EXPECT_FLOAT_EQ(f.buffer.reward, 1.0f - 0.9f * 9.0f / 100.0f);
}

TEST(GridWorldTest, DoorKeyLayoutHasKeyLockedDoorAndGoal) {
  auto env = MakeGrid(GridLayout::kDoorKey, 8);
  Frame f(env->spec());
  for (uint64_t seed = 0; seed < 20; ++seed) {
    ASSERT_TRUE(env->Reset(seed, &f.buffer).ok());
    int keys = 0, doors = 0, door_x = -1;
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        keys += env->cell(x, y) == Cell::kKey;
        if (env->cell(x, y) == Cell::kDoorLocked) {
          ++doors;
          door_x = x;
        }
      }
    }
    EXPECT_EQ(keys, 1);
    ASSERT_EQ(doors, 1);
    EXPECT_EQ(env->cell(6, 6), Cell::kGoal);
    EXPECT_LT(env->agent_x(), door_x);  // the agent starts on the key's side
  }
}

TEST(GridWorldTest, DoorKeyNeedsTheKeyToOpenTheDoor) {
  auto env = MakeGrid(GridLayout::kDoorKey, 8);
  Frame f(env->spec());
  for (uint64_t seed = 0; seed < 10; ++seed) {
    ASSERT_TRUE(env->Reset(seed, &f.buffer).ok());
    int door_x = -1, door_y = -1, key_x = -1, key_y = -1;
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        if (env->cell(x, y) == Cell::kDoorLocked) door_x = x, door_y = y;
        if (env->cell(x, y) == Cell::kKey) key_x = x, key_y = y;
      }
    }
    auto run = [&](const std::vector<int>& actions) {
      for (int a : actions) ASSERT_TRUE(env->Step(a, &f.buffer).ok());
    };
    bool found = false;
    // Without the key, toggling and walking into the locked door do nothing. The path to the door
    // may be blocked by the key itself; then skip straight to the key.
    std::vector<int> to_door = PlanToFace(*env, door_x, door_y, &found);
    if (found) {
      run(to_door);
      run({GridWorld::kToggle, GridWorld::kForward});
      EXPECT_EQ(env->cell(door_x, door_y), Cell::kDoorLocked);
      EXPECT_LT(env->agent_x(), door_x);
    }
    run(PlanToFace(*env, key_x, key_y, &found));
    ASSERT_TRUE(found) << "seed " << seed;
    run({GridWorld::kPickup});
    EXPECT_TRUE(env->carrying_key());
    EXPECT_EQ(env->cell(key_x, key_y), Cell::kFloor);
    run(PlanToFace(*env, door_x, door_y, &found));
    ASSERT_TRUE(found);
    run({GridWorld::kToggle});
    EXPECT_EQ(env->cell(door_x, door_y), Cell::kDoorOpen);
    run(PlanToFace(*env, 6, 6, &found));
    ASSERT_TRUE(found);
    EXPECT_FALSE(f.buffer.is_last);
    run({GridWorld::kForward});
    EXPECT_TRUE(f.buffer.is_terminal);
    EXPECT_TRUE(f.buffer.success);
    EXPECT_FLOAT_EQ(f.buffer.reward, 1.0f - 0.9f * env->step_count() / 640.0f);
  }
}

TEST(GridWorldTest, FourRoomsGoalIsAlwaysReachable) {
  auto env = MakeGrid(GridLayout::kFourRooms, 19);
  Frame f(env->spec());
  for (uint64_t seed = 0; seed < 20; ++seed) {
    ASSERT_TRUE(env->Reset(seed, &f.buffer).ok());
    int gx = -1, gy = -1, floor_on_middle_walls = 0;
    for (int y = 0; y < 19; ++y) {
      for (int x = 0; x < 19; ++x) {
        if (env->cell(x, y) == Cell::kGoal) gx = x, gy = y;
        if ((x == 9 || y == 9) && x > 0 && y > 0 && x < 18 && y < 18 &&
            env->cell(x, y) != Cell::kWall) {
          ++floor_on_middle_walls;
        }
      }
    }
    EXPECT_EQ(floor_on_middle_walls, 4) << "one gap per wall segment";
    ASSERT_GE(gx, 0);
    bool found = false;
    PlanToFace(*env, gx, gy, &found);
    EXPECT_TRUE(found) << "seed " << seed;
  }
}

TEST(GridWorldTest, SameSeedSameLayoutDifferentSeedsDiffer) {
  auto a = MakeGrid(GridLayout::kFourRooms, 19);
  auto b = MakeGrid(GridLayout::kFourRooms, 19);
  Frame fa(a->spec()), fb(b->spec());
  ASSERT_TRUE(a->Reset(42, &fa.buffer).ok());
  ASSERT_TRUE(b->Reset(42, &fb.buffer).ok());
  EXPECT_EQ(fa.image, fb.image);
  int differing = 0;
  for (uint64_t seed = 43; seed < 48; ++seed) {
    ASSERT_TRUE(b->Reset(seed, &fb.buffer).ok());
    differing += fa.image != fb.image;
  }
  EXPECT_GE(differing, 4);
}

TEST(GridWorldTest, FullViewRendersWallsGoalAgentAndFloor) {
  auto env = MakeGrid(GridLayout::kEmpty, 5);
  Frame f(env->spec());
  ASSERT_EQ(env->spec().image_height, 64);
  ASSERT_EQ(env->spec().image_channels, 3);
  ASSERT_TRUE(env->Reset(1, &f.buffer).ok());
  EXPECT_EQ(CellPixel(f, 0, 0, 5), GridWorld::kWallColor);
  EXPECT_EQ(CellPixel(f, 4, 2, 5), GridWorld::kWallColor);
  EXPECT_EQ(CellPixel(f, 3, 3, 5), GridWorld::kGoalColor);
  EXPECT_EQ(CellPixel(f, 1, 1, 5), GridWorld::kAgentColor);
  EXPECT_EQ(CellPixel(f, 2, 2, 5), GridWorld::kFloorColor);
  // The agent's triangle points right: its tip column is red near the cell's right edge only on
  // the middle row, and the cell's corners stay floor.
  EXPECT_EQ(f.Pixel(13, 13), GridWorld::kFloorColor);
  ASSERT_TRUE(env->Step(GridWorld::kForward, &f.buffer).ok());
  EXPECT_EQ(CellPixel(f, 1, 1, 5), GridWorld::kFloorColor);
  EXPECT_EQ(CellPixel(f, 1, 2, 5), GridWorld::kAgentColor);
}

TEST(GridWorldTest, DoorKeyRendersKeyAsSmallSquareAndDoorByState) {
  auto env = MakeGrid(GridLayout::kDoorKey, 8);
  Frame f(env->spec());
  ASSERT_TRUE(env->Reset(4, &f.buffer).ok());
  int kx = -1, ky = -1, dx = -1, dy = -1;
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      if (env->cell(x, y) == Cell::kKey) kx = x, ky = y;
      if (env->cell(x, y) == Cell::kDoorLocked) dx = x, dy = y;
    }
  }
  ASSERT_GE(kx, 0);
  ASSERT_GE(dx, 0);
  EXPECT_EQ(CellPixel(f, ky, kx, 8), GridWorld::kKeyColor);
  EXPECT_EQ(f.Pixel(ky * 8, kx * 8), GridWorld::kFloorColor);       // the key's cell corner
  EXPECT_EQ(f.Pixel(dy * 8, dx * 8), GridWorld::kDoorLockedColor);  // doors fill their cell
}

TEST(GridWorldTest, EgocentricViewPutsAgentBottomCentreAndHidesBehindWalls) {
  auto env = MakeGrid(GridLayout::kEmpty, 5, 0, /*egocentric=*/true);
  Frame f(env->spec());
  ASSERT_TRUE(env->Reset(1, &f.buffer).ok());
  // Agent at (1,1) facing right: view row r is (6 - r) cells ahead, column c is (c - 3) cells to
  // the agent's right (south).
  EXPECT_EQ(CellPixel(f, 6, 3, 7), GridWorld::kAgentColor);
  EXPECT_EQ(CellPixel(f, 5, 3, 7), GridWorld::kFloorColor);   // (2,1)
  EXPECT_EQ(CellPixel(f, 4, 5, 7), GridWorld::kGoalColor);    // (3,3)
  EXPECT_EQ(CellPixel(f, 6, 2, 7), GridWorld::kWallColor);    // (1,0): the top wall
  EXPECT_EQ(CellPixel(f, 3, 3, 7), GridWorld::kWallColor);    // (4,1): the right wall
  EXPECT_EQ(CellPixel(f, 1, 3, 7), GridWorld::kUnseenColor);  // behind the right wall
}

TEST(GridWorldTest, GrayscaleAndImageSizeAreConfigurable) {
  EnvOptions o;
  o.name = "grid_empty_8x8";
  o.image_size = 32;
  o.grayscale = true;
  auto env = MakeEnvironment(o);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->spec().image_height, 32);
  EXPECT_EQ((*env)->spec().image_channels, 1);
  std::vector<uint8_t> image(32 * 32, 7);
  StepBuffer b;
  b.image = image.data();
  ASSERT_TRUE((*env)->Reset(3, &b).ok());
  EXPECT_EQ(image[0], Luma(GridWorld::kWallColor));
  const int goal_centre = (2 * 6 + 1) * 32 / 16;  // cell (6, 6) of 8x8 at 32 px
  EXPECT_EQ(image[goal_centre * 32 + goal_centre], Luma(GridWorld::kGoalColor));
}

// A registry gridworld with env.view = `view`.
std::unique_ptr<Environment> MakeSymbolic(const std::string& name,
                                          const std::string& view = "symbolic") {
  EnvOptions o;
  o.name = name;
  o.view = view;
  auto env = MakeEnvironment(o);
  EXPECT_TRUE(env.ok()) << env.status();
  return env.ok() ? *std::move(env) : nullptr;
}

TEST(GridWorldTest, SymbolicViewEncodesEveryCellAndTheAgentWithoutAnImage) {
  auto env = MakeSymbolic("grid_doorkey_5x5");
  ASSERT_NE(env, nullptr);
  const EnvSpec& spec = env->spec();
  constexpr int kC = GridWorld::kSymbolicChannels;
  EXPECT_EQ(spec.image_bytes(), 0);
  ASSERT_EQ(spec.vector_size, 5 * 5 * kC);
  ASSERT_EQ(spec.vector_grid_channels, kC) << "the report draws it as a 5x5 grid";
  std::vector<float> vec(spec.vector_size, -1.0f);
  StepBuffer b;
  b.vector = vec.data();
  ASSERT_TRUE(env->Reset(11, &b).ok());
  auto* grid = static_cast<GridWorld*>(env.get());
  auto at = [&](int x, int y, int channel) { return vec[(y * 5 + x) * kC + channel]; };
  int ones = 0;
  for (float v : vec) {
    ASSERT_TRUE(v == 0.0f || v == 1.0f) << v;
    ones += v == 1.0f;
  }
  // 16 outer walls + 2 inner cells of the splitting wall + its locked door + goal + key + agent.
  EXPECT_EQ(at(0, 0, 0), 1.0f);
  EXPECT_EQ(at(3, 3, 1), 1.0f);  // goal
  EXPECT_EQ(at(grid->agent_x(), grid->agent_y(), 6 + grid->agent_dir()), 1.0f);
  int keys = 0, locked = 0;
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 5; ++x) {
      keys += at(x, y, 2) == 1.0f;
      locked += at(x, y, 3) == 1.0f;
      EXPECT_EQ(at(x, y, 0) == 1.0f, grid->cell(x, y) == Cell::kWall) << x << "," << y;
    }
  }
  EXPECT_EQ(keys, 1);
  EXPECT_EQ(locked, 1);
  EXPECT_EQ(ones, 16 + 2 + 1 + 1 + 1 + 1);

  // Turning moves the agent's one-hot to the new direction channel.
  const int x = grid->agent_x(), y = grid->agent_y(), dir = grid->agent_dir();
  ASSERT_TRUE(env->Step(GridWorld::kRight, &b).ok());
  EXPECT_EQ(at(x, y, 6 + dir), 0.0f);
  EXPECT_EQ(at(x, y, 6 + (dir + 1) % 4), 1.0f);
}

// env.view = symbolic_egocentric: MiniGrid's 7x7 view as one-hot cells, the agent at the bottom
// centre with its compass direction, a channel for what it cannot see.
TEST(GridWorldTest, SymbolicEgocentricViewEncodesTheCellsAheadOfTheAgent) {
  std::unique_ptr<Environment> env = MakeSymbolic("grid_empty_5x5", "symbolic_egocentric");
  ASSERT_NE(env, nullptr);
  constexpr int kV = GridWorld::kViewSize, kC = GridWorld::kEgocentricChannels;
  ASSERT_EQ(env->spec().vector_size, kV * kV * kC);
  EXPECT_EQ(env->spec().vector_grid_channels, kC);
  EXPECT_EQ(env->spec().image_bytes(), 0);
  std::vector<float> vec(env->spec().vector_size, -1.0f);
  StepBuffer b;
  b.vector = vec.data();
  ASSERT_TRUE(env->Reset(0, &b).ok());  // agent at (1, 1) facing right, goal at (3, 3)
  auto at = [&](int row, int col, int channel) { return vec[(row * kV + col) * kC + channel]; };
  int ones = 0;
  for (float v : vec) {
    ASSERT_TRUE(v == 0.0f || v == 1.0f) << v;
    ones += v == 1.0f;
  }
  EXPECT_EQ(at(6, 3, 6 + 0), 1.0f);  // the agent's cell: facing right (east)
  EXPECT_EQ(at(5, 3, 0) + at(5, 3, 11), 0.0f) << "the floor ahead is seen and empty";
  EXPECT_EQ(at(3, 3, 0), 1.0f) << "the outer wall three cells ahead";
  EXPECT_EQ(at(2, 3, 11), 1.0f) << "behind the wall: unseen";
  EXPECT_EQ(at(6, 2, 0), 1.0f) << "the wall to the agent's left (north)";
  EXPECT_EQ(at(4, 5, 1), 1.0f) << "the goal: two ahead, two to the right";
  int seen = 0;
  for (int r = 0; r < kV; ++r) {
    for (int c = 0; c < kV; ++c) seen += at(r, c, 11) == 0.0f;
  }
  // It sees a 5x4 patch: the wall row three ahead (5 cells) and the side walls of the three rows
  // before it (6).
  EXPECT_EQ(seen, 20);
  EXPECT_EQ(ones, (kV * kV - seen) + 1 + 1 + 11)
      << "unseen cells, the agent, the goal and the walls it sees";

  // One step forward brings the goal one row closer; a right turn faces south.
  ASSERT_TRUE(env->Step(GridWorld::kForward, &b).ok());
  EXPECT_EQ(at(5, 5, 1), 1.0f);
  EXPECT_EQ(at(4, 5, 1), 0.0f);
  ASSERT_TRUE(env->Step(GridWorld::kRight, &b).ok());
  EXPECT_EQ(at(6, 3, 6 + 1), 1.0f);
  EXPECT_EQ(at(6, 3, 6 + 0), 0.0f);
}

TEST(GridWorldTest, SymbolicEmptyGridReachesTheGoalLikeTheImageView) {
  auto env = MakeSymbolic("grid_empty_5x5");
  ASSERT_NE(env, nullptr);
  std::vector<float> vec(env->spec().vector_size);
  StepBuffer b;
  b.vector = vec.data();
  ASSERT_TRUE(env->Reset(0, &b).ok());
  for (int a : {GridWorld::kForward, GridWorld::kForward, GridWorld::kRight, GridWorld::kForward}) {
    ASSERT_TRUE(env->Step(a, &b).ok());
    EXPECT_FALSE(b.is_last);
  }
  ASSERT_TRUE(env->Step(GridWorld::kForward, &b).ok());
  EXPECT_TRUE(b.is_terminal);
  EXPECT_FLOAT_EQ(b.reward, 1.0f - 0.9f * 5 / 100);
  // The agent stands on the goal, facing down.
  const int goal = (3 * 5 + 3) * GridWorld::kSymbolicChannels;
  EXPECT_EQ(vec[goal + 1], 1.0f);
  EXPECT_EQ(vec[goal + 6 + 1], 1.0f);
}

TEST(GridWorldTest, RendersForPeopleWhatTheImageViewShowsAlsoWhenSymbolic) {
  auto symbolic = MakeSymbolic("grid_empty_5x5");
  EnvOptions o;
  o.name = "grid_empty_5x5";
  auto full = MakeEnvironment(o);
  ASSERT_TRUE(symbolic != nullptr && full.ok());
  std::vector<float> vec(symbolic->spec().vector_size);
  std::vector<uint8_t> image((*full)->spec().image_bytes());
  StepBuffer a, b;
  a.vector = vec.data();
  b.image = image.data();
  ASSERT_TRUE(symbolic->Reset(4, &a).ok());
  ASSERT_TRUE((*full)->Reset(4, &b).ok());
  for (int action : {GridWorld::kForward, GridWorld::kRight}) {
    ASSERT_TRUE(symbolic->Step(action, &a).ok());
    ASSERT_TRUE((*full)->Step(action, &b).ok());
  }
  std::vector<uint8_t> rgb;
  int h = 0, w = 0;
  ASSERT_TRUE(symbolic->RenderRgb(&rgb, &h, &w).ok());
  EXPECT_EQ(h, 64);
  EXPECT_EQ(w, 64);
  EXPECT_EQ(rgb, image);  // the same picture as the image observation
}

}  // namespace
}  // namespace dreamfleet::envs
