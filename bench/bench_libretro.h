// The emulator part of bench_env: raw retro_run frames/s next to nes_homebrew at action repeat 4
// (64x64 resize and native size) in the same run, and the adapter's overhead.
#pragma once

namespace dreamfleet::envs {

// Prints a markdown table; returns the number of measurements that failed.
int PrintLibretroBench(double seconds);

}  // namespace dreamfleet::envs
