// The one table of every dreamfleet environment: name, one-line description, factory. To add an
// env, add one row to Table() (and its sources to DREAMFLEET_ENVS_SOURCES in CMakeLists.txt).
#include "envs/registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "envs/gridworld.h"
#include "envs/mario_env.h"
#include "envs/minatar_env.h"
#include "envs/minatar_game.h"
#include "envs/nes_homebrew_env.h"
#include "envs/pokemon_red_env.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {
namespace {

struct Entry {
  const char* name;
  const char* description;
  EnvFactory factory;
  EnvSpecFunction spec = nullptr;  // null: build the env and read its spec (native envs)
};

template <LibretroEnvConfig (*kConfig)(const EnvOptions&)>
absl::StatusOr<EnvSpec> EmulatorSpec(const EnvOptions& options) {
  return LibretroSpec(kConfig(options));
}

EnvFactory Grid(GridLayout layout, int size) {
  return [layout, size](const EnvOptions& o) -> absl::StatusOr<std::unique_ptr<Environment>> {
    GridWorldOptions g;
    g.name = o.name;
    g.layout = layout;
    g.size = size;
    g.max_steps = o.max_episode_steps;
    g.image_size = o.image_size;
    g.grayscale = o.grayscale;
    if (o.view == "egocentric") {
      g.egocentric = true;
    } else if (o.view == "symbolic") {
      g.symbolic = true;
    } else if (o.view == "symbolic_egocentric") {
      g.symbolic = true;
      g.egocentric = true;
    } else if (o.view != "full" && !o.view.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "view \"", o.view, "\" for \"", o.name,
          "\" is not \"full\", \"egocentric\", \"symbolic\" or \"symbolic_egocentric\""));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<GridWorld> env, GridWorld::Create(g));
    return std::unique_ptr<Environment>(std::move(env));
  };
}

EnvFactory MinAtar(std::unique_ptr<MinAtarGame> (*make_game)()) {
  return [make_game](const EnvOptions& o) -> absl::StatusOr<std::unique_ptr<Environment>> {
    MinAtarOptions m;
    m.name = o.name;
    m.sticky_actions =
        o.sticky_actions >= 0.0f ? o.sticky_actions : MinAtarEnv::kDefaultStickyActions;
    m.max_steps = o.max_episode_steps;
    m.image_size = o.image_size;
    m.grayscale = o.grayscale;
    if (o.view == "symbolic") {
      m.symbolic = true;
    } else if (o.view != "full" && !o.view.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("view \"", o.view, "\" for \"", o.name,
                                                     "\" is not \"full\" or \"symbolic\""));
    }
    m.minimal_actions = o.action_set == "minimal";  // Find() refused any other value but full
    ASSIGN_OR_RETURN(std::unique_ptr<MinAtarEnv> env, MinAtarEnv::Create(make_game(), m));
    return std::unique_ptr<Environment>(std::move(env));
  };
}

const std::vector<Entry>& Table() {
  static const auto* table = new std::vector<Entry>{
      // Gridworlds (gridworld.h), MiniGrid's rules and default time limits.
      {"grid_empty_5x5", "MiniGrid Empty 5x5: fixed start (1,1) facing right, goal bottom-right",
       Grid(GridLayout::kEmpty, 5)},
      {"grid_empty_8x8", "MiniGrid Empty 8x8: fixed start, goal bottom-right",
       Grid(GridLayout::kEmpty, 8)},
      {"grid_empty_16x16", "MiniGrid Empty 16x16: fixed start, goal bottom-right",
       Grid(GridLayout::kEmpty, 16)},
      {"grid_empty_random_5x5", "MiniGrid Empty-Random 5x5: random start position and direction",
       Grid(GridLayout::kEmptyRandom, 5)},
      {"grid_fourrooms", "MiniGrid FourRooms 19x19: random agent and goal, 100 steps",
       Grid(GridLayout::kFourRooms, 19)},
      {"grid_doorkey_5x5", "MiniGrid DoorKey 5x5: pick up the key, unlock the door, reach the goal",
       Grid(GridLayout::kDoorKey, 5)},
      {"grid_doorkey_8x8", "MiniGrid DoorKey 8x8: pick up the key, unlock the door, reach the goal",
       Grid(GridLayout::kDoorKey, 8)},
      // MinAtar games (minatar_env.h): 6 actions (or the minimal set), sticky actions 0.1,
      // difficulty ramping.
      {"minatar_breakout", "MinAtar Breakout: +1 per brick, losing the ball ends the game",
       MinAtar(&MakeMinAtarBreakout)},
      {"minatar_freeway", "MinAtar Freeway: +1 per road crossing, 2500-step game",
       MinAtar(&MakeMinAtarFreeway)},
      {"minatar_asterix", "MinAtar Asterix: +1 per gold, touching an enemy ends the game",
       MinAtar([] { return MakeMinAtarAsterix(); })},
      {"minatar_seaquest", "MinAtar Seaquest: shoot enemies, rescue divers, surface for oxygen",
       MinAtar([] { return MakeMinAtarSeaquest(); })},
      {"minatar_space_invaders", "MinAtar SpaceInvaders: +1 per alien, alien bullets end the game",
       MinAtar([] { return MakeMinAtarSpaceInvaders(); })},
      // Emulators through libretro (libretro_env.h): 64x64 from the console screen, action
      // repeat 4 with max-pool, SIMPLE_MOVEMENT on NES.
      {"nes_homebrew",
       "dreamfleet's own NES platformer (cc65): run right, jump pits and enemy, "
       "reach the flag",
       &MakeNesHomebrew, &EmulatorSpec<&NesHomebrewConfig>},
      {"nes_mario", "Super Mario Bros. (your own ROM, env.rom): gym-super-mario-bros reward",
       &MakeNesMario, &EmulatorSpec<&NesMarioConfig>},
      {"gb_pokemon_red",
       "Pokemon Red (your own ROM, env.rom): badges, events, levels, "
       "exploration; text tokens",
       &MakeGbPokemonRed, &EmulatorSpec<&GbPokemonRedConfig>},
  };
  return *table;
}

// The entry named options.name, after checking the options every env shares.
absl::StatusOr<const Entry*> Find(const EnvOptions& options) {
  for (const Entry& entry : Table()) {
    if (options.name == entry.name) {
      if (options.image_size <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "image_size must be > 0, got ", options.image_size, " for \"", options.name, "\""));
      }
      if (options.action_set == "minimal" && !absl::StartsWith(options.name, "minatar_")) {
        return absl::InvalidArgumentError(
            absl::StrCat("action_set \"", options.action_set, "\" is for MinAtar games; \"",
                         options.name, "\" has one fixed action set (action_set: full)"));
      }
      if (!options.action_set.empty() && options.action_set != "full" &&
          options.action_set != "minimal") {
        return absl::InvalidArgumentError(absl::StrCat("action_set \"", options.action_set,
                                                       "\" for \"", options.name,
                                                       "\" is not \"full\" or \"minimal\""));
      }
      return &entry;
    }
  }
  std::vector<std::string> names;
  for (const auto& [name, description] : ListEnvironments()) names.push_back(name);
  return absl::NotFoundError(absl::StrCat("unknown environment \"", options.name,
                                          "\"; known: ", absl::StrJoin(names, ", ")));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Environment>> MakeEnvironment(const EnvOptions& options) {
  ASSIGN_OR_RETURN(const Entry* entry, Find(options));
  return entry->factory(options);
}

absl::StatusOr<EnvSpec> LookupEnvSpec(const EnvOptions& options) {
  ASSIGN_OR_RETURN(const Entry* entry, Find(options));
  if (entry->spec) return entry->spec(options);
  ASSIGN_OR_RETURN(std::unique_ptr<Environment> env, entry->factory(options));
  return env->spec();
}

std::vector<std::pair<std::string, std::string>> ListEnvironments() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Entry& entry : Table()) out.emplace_back(entry.name, entry.description);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace dreamfleet::envs
