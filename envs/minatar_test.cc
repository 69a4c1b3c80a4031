#include <memory>
#include <string>
#include <vector>

#include "envs/minatar_breakout.h"
#include "envs/minatar_env.h"
#include "envs/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

const char* const kGames[] = {"minatar_breakout", "minatar_freeway", "minatar_asterix",
                              "minatar_seaquest", "minatar_space_invaders"};

std::unique_ptr<MinAtarEnv> MakeMinAtar(const std::string& name, float sticky = 0.0f,
                                        int max_steps = 0) {
  EnvOptions o;
  o.name = name;
  o.sticky_actions = sticky;
  o.max_episode_steps = max_steps;
  auto env = MakeEnvironment(o);
  EXPECT_TRUE(env.ok()) << env.status();
  return std::unique_ptr<MinAtarEnv>(static_cast<MinAtarEnv*>(env->release()));
}

struct Frame {
  std::vector<uint8_t> image = std::vector<uint8_t>(64 * 64 * 3);
  StepBuffer buffer;
  Frame() { buffer.image = image.data(); }
  Rgb Cell(int row, int col) const {
    const int y = (2 * row + 1) * 64 / 20, x = (2 * col + 1) * 64 / 20;
    const uint8_t* p = image.data() + (y * 64 + x) * 3;
    return Rgb{p[0], p[1], p[2]};
  }
};

uint8_t StateAt(const MinAtarEnv& env, int y, int x, int channel) {
  return env.state()[(y * 10 + x) * env.num_channels() + channel];
}

TEST(MinAtarSymbolicTest, EveryGameObservesItsChannelGridAsAVector) {
  for (const char* name : kGames) {
    EnvOptions o;
    o.name = name;
    o.view = "symbolic";
    o.sticky_actions = 0;
    auto made = MakeEnvironment(o);
    ASSERT_TRUE(made.ok()) << name << ": " << made.status();
    auto* env = static_cast<MinAtarEnv*>(made->get());
    const EnvSpec& spec = env->spec();
    EXPECT_EQ(spec.image_bytes(), 0) << name;
    ASSERT_EQ(spec.vector_size, 10 * 10 * env->num_channels()) << name;
    ASSERT_EQ(spec.vector_grid_channels, env->num_channels()) << name;
    EXPECT_EQ(spec.num_actions, 6) << name;
    std::vector<float> vector(spec.vector_size, -1.0f);
    StepBuffer out;
    out.vector = vector.data();
    ASSERT_TRUE(env->Reset(3, &out).ok());
    for (int step = 0; step < 20 && !out.is_last; ++step) {
      ASSERT_TRUE(env->Step(step % 6, &out).ok());
      // The vector is the binary state, cell by cell and channel by channel.
      for (int i = 0; i < spec.vector_size; ++i) {
        ASSERT_EQ(vector[i], static_cast<float>(env->state()[i])) << name << " index " << i;
      }
    }
    float ones = 0;
    for (float v : vector) ones += v;
    EXPECT_GT(ones, 0) << name << ": an empty state";
  }
  EnvOptions o;
  o.name = "minatar_breakout";
  o.view = "egocentric";  // a gridworld view
  EXPECT_EQ(MakeEnvironment(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MinAtarSymbolicTest, RendersThePictureOfItsBoardForPeople) {
  EnvOptions o;
  o.name = "minatar_breakout";
  o.view = "symbolic";
  auto made = MakeEnvironment(o);
  ASSERT_TRUE(made.ok()) << made.status();
  std::vector<float> vector((*made)->spec().vector_size);
  StepBuffer out;
  out.vector = vector.data();
  ASSERT_TRUE((*made)->Reset(1, &out).ok());
  std::vector<uint8_t> rgb;
  int h = 0, w = 0;
  ASSERT_TRUE((*made)->RenderRgb(&rgb, &h, &w).ok());
  ASSERT_EQ(h, 160);
  ASSERT_EQ(w, 160);
  ASSERT_EQ(rgb.size(), 160u * 160 * 3);
  // Every cell is a 16x16 block of its channel's colour (black where empty); bricks fill row 3.
  auto* env = static_cast<MinAtarEnv*>(made->get());
  int bricks = 0;
  for (int x = 0; x < 10; ++x) {
    const uint8_t* p = rgb.data() + ((3 * 16 + 8) * 160 + x * 16 + 8) * 3;
    bool any = false;
    for (int c = 0; c < env->num_channels(); ++c) any |= StateAt(*env, 3, x, c) != 0;
    if (any) {
      ++bricks;
      EXPECT_TRUE(p[0] || p[1] || p[2]) << "brick at column " << x << " drawn black";
    }
  }
  EXPECT_EQ(bricks, 10);
}

TEST(MinAtarBreakoutTest, ResetPlacesBricksPaddleAndBallInACorner) {
  auto env = MakeMinAtar("minatar_breakout");
  auto* game = static_cast<MinAtarBreakout*>(env->game());
  Frame f;
  bool saw_left = false, saw_right = false;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    ASSERT_TRUE(env->Reset(seed, &f.buffer).ok());
    EXPECT_TRUE(f.buffer.is_first);
    EXPECT_EQ(game->bricks_left(), 30);
    EXPECT_EQ(game->paddle_x(), 4);
    EXPECT_EQ(game->ball_y(), 3);
    saw_left |= game->ball_x() == 0;
    saw_right |= game->ball_x() == 9;
  }
  EXPECT_TRUE(saw_left && saw_right);
  EXPECT_EQ(env->state().size(), 10u * 10u * 4u);
  EXPECT_EQ(StateAt(*env, 9, 4, MinAtarBreakout::kPaddle), 1);
  EXPECT_EQ(StateAt(*env, 2, 7, MinAtarBreakout::kBrick), 1);
  EXPECT_EQ(StateAt(*env, 5, 7, MinAtarBreakout::kBrick), 0);
}

TEST(MinAtarBreakoutTest, BallBouncesOffSideWallCeilingAndPaddle) {
  MinAtarBreakout game;
  Rng rng(1);
  game.Reset(&rng);
  bool terminal = false;
  // Side wall: moving up-left from the left edge turns up-right.
  game.SetBall(0, 5, 0);
  game.Act(kNoop, &rng, &terminal);
  EXPECT_EQ(game.ball_x(), 0);
  EXPECT_EQ(game.ball_y(), 4);
  EXPECT_EQ(game.ball_dir(), 1);
  // Ceiling: with no bricks the ball reaches row 0 and turns down.
  game.ClearBricks();
  game.SetBall(5, 1, 1);
  game.Act(kNoop, &rng, &terminal);
  EXPECT_EQ(game.ball_y(), 0);
  game.Act(kNoop, &rng, &terminal);
  EXPECT_EQ(game.ball_y(), 0);
  EXPECT_EQ(game.ball_dir(), 2);  // down-right
  // Paddle: a ball above the paddle bounces back up.
  game.SetPaddle(4);
  game.SetBall(4, 8, 2);
  game.Act(kNoop, &rng, &terminal);
  EXPECT_FALSE(terminal);
  EXPECT_EQ(game.ball_y(), 8);
  EXPECT_EQ(game.ball_dir(), 1);  // up-right
}

TEST(MinAtarBreakoutTest, HittingABrickRemovesItAndGivesOne) {
  MinAtarBreakout game;
  Rng rng(1);
  game.Reset(&rng);
  bool terminal = false;
  game.SetBall(5, 4, 0);  // up-left into brick (4, 3)
  EXPECT_EQ(game.Act(kNoop, &rng, &terminal), 1.0f);
  EXPECT_FALSE(game.brick(3, 4));
  EXPECT_EQ(game.bricks_left(), 29);
  EXPECT_EQ(game.ball_y(), 4);    // bounced back to its row
  EXPECT_EQ(game.ball_dir(), 3);  // now down-left
}

TEST(MinAtarBreakoutTest, LosingTheBallTerminates) {
  auto env = MakeMinAtar("minatar_breakout");
  auto* game = static_cast<MinAtarBreakout*>(env->game());
  Frame f;
  ASSERT_TRUE(env->Reset(3, &f.buffer).ok());
  game->SetPaddle(9);
  game->SetBall(0, 8, 2);
  ASSERT_TRUE(env->Step(kNoop, &f.buffer).ok());
  EXPECT_TRUE(f.buffer.is_terminal);
  EXPECT_TRUE(f.buffer.is_last);
  EXPECT_EQ(env->Step(kNoop, &f.buffer).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MinAtarBreakoutTest, RendersChannelsInTheirColours) {
  auto env = MakeMinAtar("minatar_breakout");
  Frame f;
  ASSERT_TRUE(env->Reset(3, &f.buffer).ok());
  EXPECT_EQ(env->spec().image_height, 64);
  EXPECT_EQ(env->spec().image_width, 64);
  EXPECT_EQ(env->spec().image_channels, 3);
  EXPECT_EQ(f.Cell(9, 4), MinAtarEnv::ChannelColor(MinAtarBreakout::kPaddle));
  EXPECT_EQ(f.Cell(2, 5), MinAtarEnv::ChannelColor(MinAtarBreakout::kBrick));
  EXPECT_EQ(f.Cell(6, 5), (Rgb{0, 0, 0}));
  // MinAtar starts the ball inside the bottom brick row; the higher channel (brick) is drawn.
  auto* game = static_cast<MinAtarBreakout*>(env->game());
  EXPECT_EQ(f.Cell(3, game->ball_x()), MinAtarEnv::ChannelColor(MinAtarBreakout::kBrick));
  ASSERT_TRUE(env->Step(kNoop, &f.buffer).ok());
  ASSERT_EQ(game->ball_y(), 4);
  EXPECT_EQ(f.Cell(4, game->ball_x()), MinAtarEnv::ChannelColor(MinAtarBreakout::kBall));
  for (int c = 0; c < 10; ++c) {
    for (int d = c + 1; d < 10; ++d) {
      EXPECT_FALSE(MinAtarEnv::ChannelColor(c) == MinAtarEnv::ChannelColor(d));
    }
  }
}

TEST(MinAtarFreewayTest, AlwaysUpCrossesAndTheGameEndsAfter2500Steps) {
  auto env = MakeMinAtar("minatar_freeway");
  Frame f;
  ASSERT_TRUE(env->Reset(5, &f.buffer).ok());
  float total = 0.0f;
  int steps = 0;
  while (!f.buffer.is_last) {
    ASSERT_TRUE(env->Step(kUp, &f.buffer).ok());
    total += f.buffer.reward;
    ++steps;
  }
  EXPECT_EQ(steps, 2501);
  EXPECT_TRUE(f.buffer.is_terminal);
  // A hit sends the chicken back to the bottom, so holding `up` crosses only now and then.
  EXPECT_GE(total, 1.0f);
}

TEST(MinAtarSeaquestTest, SurfacingWithoutDiversEndsTheGame) {
  auto env = MakeMinAtar("minatar_seaquest");
  Frame f;
  ASSERT_TRUE(env->Reset(2, &f.buffer).ok());
  ASSERT_TRUE(env->Step(kDown, &f.buffer).ok());
  EXPECT_FALSE(f.buffer.is_last);
  ASSERT_TRUE(env->Step(kUp, &f.buffer).ok());
  EXPECT_TRUE(f.buffer.is_terminal);
}

TEST(MinAtarSeaquestTest, OxygenGaugeDrainsUnderwater) {
  auto env = MakeMinAtar("minatar_seaquest");
  Frame f;
  ASSERT_TRUE(env->Reset(2, &f.buffer).ok());
  auto gauge = [&] {
    int n = 0;
    for (int x = 0; x < 10; ++x) n += StateAt(*env, 9, x, 7);
    return n;
  };
  EXPECT_EQ(gauge(), 10);  // full: 200 steps of oxygen
  ASSERT_TRUE(env->Step(kDown, &f.buffer).ok());
  int steps = 1;
  while (!f.buffer.is_last && steps < 101) {
    ASSERT_TRUE(env->Step(kNoop, &f.buffer).ok());
    ++steps;
  }
  // Seed 2 leaves the sub alone for 101 steps (checked: is_last stays false).
  ASSERT_FALSE(f.buffer.is_last);
  EXPECT_EQ(gauge(), 4);  // 200 - 101 = 99 left: 99 * 10 / 200
  while (!f.buffer.is_last && steps < 300) {
    ASSERT_TRUE(env->Step(kNoop, &f.buffer).ok());
    ++steps;
  }
  EXPECT_TRUE(f.buffer.is_terminal);  // out of oxygen at the latest
  EXPECT_LE(steps, 203);
}

TEST(MinAtarSpaceInvadersTest, FiringUpHitsTheAlienBlock) {
  auto env = MakeMinAtar("minatar_space_invaders");
  Frame f;
  ASSERT_TRUE(env->Reset(2, &f.buffer).ok());
  EXPECT_EQ(StateAt(*env, 9, 5, 0), 1);  // cannon
  int aliens = 0;
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) aliens += StateAt(*env, y, x, 1);
  }
  EXPECT_EQ(aliens, 24);
  float total = 0.0f;
  for (int i = 0; i < 12 && !f.buffer.is_last; ++i) {
    ASSERT_TRUE(env->Step(kFire, &f.buffer).ok());
    total += f.buffer.reward;
  }
  EXPECT_GE(total, 1.0f);
}

TEST(MinAtarStickyActionsTest, RepeatsThePreviousActionAboutTenPercentOfTheTime) {
  auto env = MakeMinAtar("minatar_freeway", /*sticky=*/-1.0f);  // default: 0.1
  Frame f;
  Rng rng(11);
  ASSERT_TRUE(env->Reset(9, &f.buffer).ok());
  int changed = 0, steps = 0;
  while (steps < 20000) {
    if (f.buffer.is_last) ASSERT_TRUE(env->Reset(steps, &f.buffer).ok());
    const int previous = env->last_action();
    const int chosen = rng.UniformInt(0, 5);
    ASSERT_TRUE(env->Step(chosen, &f.buffer).ok());
    if (env->last_action() != chosen) {
      ++changed;
      EXPECT_EQ(env->last_action(), previous);
    }
    ++steps;
  }
  // P(sticky) * P(previous != chosen) = 0.1 * 5/6; fixed seeds make this exact, the bounds say
  // what the rule implies.
  EXPECT_NEAR(changed / 20000.0, 0.1 * 5.0 / 6.0, 0.01);
}

TEST(MinAtarStickyActionsTest, ZeroAndOneBehaveAsNeverAndAlways) {
  auto never = MakeMinAtar("minatar_breakout", 0.0f);
  auto always = MakeMinAtar("minatar_breakout", 1.0f);
  Frame f;
  ASSERT_TRUE(never->Reset(1, &f.buffer).ok());
  ASSERT_TRUE(never->Step(kLeft, &f.buffer).ok());
  EXPECT_EQ(static_cast<MinAtarBreakout*>(never->game())->paddle_x(), 3);
  ASSERT_TRUE(always->Reset(1, &f.buffer).ok());
  ASSERT_TRUE(always->Step(kLeft, &f.buffer).ok());
  EXPECT_EQ(always->last_action(), kNoop);
  EXPECT_EQ(static_cast<MinAtarBreakout*>(always->game())->paddle_x(), 4);
}

TEST(MinAtarActionSetTest, MinimalSetsAreMinAtarsAndActAsTheirFullActions) {
  const std::vector<std::vector<std::string>> expected = {
      {"noop", "left", "right"},
      {"noop", "up", "down"},
      {"noop", "left", "up", "right", "down"},
      {"noop", "left", "up", "right", "down", "fire"},
      {"noop", "left", "right", "fire"}};
  // With sticky actions too: both envs draw the same coins, and a repeat must repeat the game's
  // action, not the agent's index (Breakout's minimal 2 is right, the full set's 2 is up).
  for (int g = 0; g < 10; ++g) {
    const float sticky = g < 5 ? 0.0f : 0.5f;
    SCOPED_TRACE(std::string(kGames[g % 5]) + " sticky " + std::to_string(sticky));
    EnvOptions o;
    o.name = kGames[g % 5];
    o.sticky_actions = sticky;
    o.action_set = "minimal";
    auto minimal = MakeEnvironment(o);
    ASSERT_TRUE(minimal.ok()) << minimal.status();
    EXPECT_EQ((*minimal)->spec().num_actions, static_cast<int>(expected[g % 5].size()));
    EXPECT_EQ((*minimal)->spec().action_names, expected[g % 5]);
    // Agent action i of the minimal set plays the game exactly as its full-set action does.
    auto full = MakeMinAtar(kGames[g % 5], sticky);
    auto* small = static_cast<MinAtarEnv*>(minimal->get());
    StepBuffer a, b;
    ASSERT_TRUE(small->Reset(4, &a).ok());
    ASSERT_TRUE(full->Reset(4, &b).ok());
    Rng rng(3);
    for (int step = 0; step < 300 && !a.is_last; ++step) {
      const int i = rng.UniformInt(0, small->spec().num_actions - 1);
      ASSERT_TRUE(small->Step(i, &a).ok());
      ASSERT_TRUE(full->Step(small->game_actions()[i], &b).ok());
      EXPECT_EQ(small->last_action(), full->last_action());
      ASSERT_EQ(small->state(), full->state()) << "step " << step;
      ASSERT_EQ(a.reward, b.reward);
      ASSERT_EQ(a.is_last, b.is_last);
    }
    ASSERT_TRUE(small->Reset(5, &a).ok());
    auto bad = small->Step(small->spec().num_actions, &a);
    EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(MinAtarActionSetTest, BreakoutsMinimalRightMovesThePaddleRight) {
  EnvOptions o;
  o.name = "minatar_breakout";
  o.sticky_actions = 0.0f;
  o.action_set = "minimal";
  auto env = MakeEnvironment(o);
  ASSERT_TRUE(env.ok()) << env.status();
  auto* breakout = static_cast<MinAtarEnv*>(env->get());
  StepBuffer f;
  ASSERT_TRUE(breakout->Reset(1, &f).ok());
  ASSERT_TRUE(breakout->Step(2, &f).ok());  // noop, left, right
  EXPECT_EQ(static_cast<MinAtarBreakout*>(breakout->game())->paddle_x(), 5);
}

TEST(MinAtarActionSetTest, UnknownSetsAndMinimalOutsideMinAtarAreNamedErrors) {
  EnvOptions o;
  o.name = "minatar_breakout";
  o.action_set = "tiny";
  auto bad = MakeEnvironment(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), testing::HasSubstr("action_set \"tiny\""));
  o.name = "grid_empty_5x5";
  o.action_set = "minimal";
  bad = MakeEnvironment(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), testing::HasSubstr("is for MinAtar games"));
  EXPECT_FALSE(LookupEnvSpec(o).ok());
}

TEST(MinAtarTest, EveryGameRunsThousandRandomStepsWithinSpec) {
  for (const char* name : kGames) {
    SCOPED_TRACE(name);
    auto env = MakeMinAtar(name, -1.0f);
    const EnvSpec& spec = env->spec();
    EXPECT_EQ(spec.num_actions, 6);
    Frame f;
    Rng rng(123);
    ASSERT_TRUE(env->Reset(0, &f.buffer).ok());
    int episodes = 0;
    for (int i = 0; i < 1000; ++i) {
      if (f.buffer.is_last) {
        ++episodes;
        ASSERT_TRUE(env->Reset(i, &f.buffer).ok());
      }
      ASSERT_TRUE(env->Step(rng.UniformInt(0, 5), &f.buffer).ok());
      EXPECT_GE(f.buffer.reward, spec.reward_min);
      EXPECT_LE(f.buffer.reward, spec.reward_max);
      for (uint8_t v : env->state()) ASSERT_LE(v, 1);
      if (f.buffer.is_terminal) EXPECT_TRUE(f.buffer.is_last);
    }
    if (std::string(name) != "minatar_freeway") EXPECT_GE(episodes, 1);
  }
}

TEST(MinAtarTest, TimeLimitEndsWithoutTermination) {
  auto env = MakeMinAtar("minatar_freeway", 0.0f, /*max_steps=*/50);
  Frame f;
  ASSERT_TRUE(env->Reset(0, &f.buffer).ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_FALSE(f.buffer.is_last);
    ASSERT_TRUE(env->Step(kNoop, &f.buffer).ok());
  }
  EXPECT_TRUE(f.buffer.is_last);
  EXPECT_FALSE(f.buffer.is_terminal);
}

TEST(MinAtarTest, SameSeedAndActionsGiveSameStates) {
  for (const char* name : kGames) {
    SCOPED_TRACE(name);
    auto a = MakeMinAtar(name, -1.0f);
    auto b = MakeMinAtar(name, -1.0f);
    Frame fa, fb;
    ASSERT_TRUE(a->Reset(77, &fa.buffer).ok());
    ASSERT_TRUE(b->Reset(77, &fb.buffer).ok());
    Rng rng(5);
    for (int i = 0; i < 300 && !fa.buffer.is_last; ++i) {
      const int action = rng.UniformInt(0, 5);
      ASSERT_TRUE(a->Step(action, &fa.buffer).ok());
      ASSERT_TRUE(b->Step(action, &fb.buffer).ok());
      ASSERT_EQ(a->state(), b->state());
      ASSERT_EQ(fa.image, fb.image);
      ASSERT_EQ(fa.buffer.reward, fb.buffer.reward);
    }
  }
}

TEST(MinAtarTest, RandomPlayScoresInGamesWhereItShould) {
  // Random play finds rewards in Breakout, Asterix and SpaceInvaders within a few episodes.
  for (const char* name : {"minatar_breakout", "minatar_asterix", "minatar_space_invaders"}) {
    SCOPED_TRACE(name);
    auto env = MakeMinAtar(name, -1.0f);
    Frame f;
    Rng rng(321);
    ASSERT_TRUE(env->Reset(0, &f.buffer).ok());
    float total = 0.0f;
    for (int i = 0; i < 5000; ++i) {
      if (f.buffer.is_last) ASSERT_TRUE(env->Reset(i, &f.buffer).ok());
      ASSERT_TRUE(env->Step(rng.UniformInt(0, 5), &f.buffer).ok());
      total += f.buffer.reward;
    }
    EXPECT_GT(total, 0.0f);
  }
}

}  // namespace
}  // namespace dreamfleet::envs
