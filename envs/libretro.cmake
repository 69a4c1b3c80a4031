# Emulator envs (libretro adapter, nes_homebrew, nes_mario, gb_pokemon_red): library
# dreamfleet_libretro, linked into dreamfleet_envs. Included from envs/CMakeLists.txt.
# No gRPC, no LibTorch: absl, libdl and the libretro.h header (Debian's retroarch-dev).
find_path(LIBRETRO_INCLUDE_DIR libretro-common/libretro.h REQUIRED)

add_library(dreamfleet_libretro STATIC
  ${CMAKE_CURRENT_LIST_DIR}/libretro_frame.cc
  ${CMAKE_CURRENT_LIST_DIR}/libretro_core.cc
  ${CMAKE_CURRENT_LIST_DIR}/libretro_env.cc
  ${CMAKE_CURRENT_LIST_DIR}/nes_homebrew_env.cc
  ${CMAKE_CURRENT_LIST_DIR}/mario_env.cc
  ${CMAKE_CURRENT_LIST_DIR}/pokemon_red_env.cc
)
target_include_directories(dreamfleet_libretro PUBLIC ${PROJECT_SOURCE_DIR}
                           PRIVATE ${LIBRETRO_INCLUDE_DIR})
target_link_libraries(dreamfleet_libretro PUBLIC absl::status absl::statusor absl::strings
                      absl::str_format absl::span ${CMAKE_DL_LIBS} Threads::Threads
                      dreamfleet_services_base)
if(NOT DREAMFLEET_ROM_OUTPUT_DIR)
  set(DREAMFLEET_ROM_OUTPUT_DIR ${CMAKE_BINARY_DIR}/roms)
endif()
target_compile_definitions(dreamfleet_libretro PRIVATE
                           DREAMFLEET_DEFAULT_ROM_DIR="${DREAMFLEET_ROM_OUTPUT_DIR}")
if(TARGET dreamfleet_homebrew_rom)
  add_dependencies(dreamfleet_libretro dreamfleet_homebrew_rom)
endif()

dreamfleet_add_test(libretro_frame_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/libretro_frame_test.cc
  LIBS dreamfleet_libretro LABELS unit)
# These run the homebrew ROM through the real Nestopia core: only where cc65 built the ROM.
if(TARGET dreamfleet_homebrew_rom)
  dreamfleet_add_test(libretro_core_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/libretro_core_test.cc
    LIBS dreamfleet_libretro LABELS integration)
  dreamfleet_add_test(nes_homebrew_env_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/nes_homebrew_env_test.cc
    LIBS dreamfleet_libretro LABELS integration)
endif()
dreamfleet_add_test(mario_env_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mario_env_test.cc
  LIBS dreamfleet_libretro LABELS unit)
dreamfleet_add_test(pokemon_red_env_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pokemon_red_env_test.cc
  LIBS dreamfleet_libretro LABELS unit)
# Needs dreamfleet_envs (registry, VectorEnv), which links this library, and the ROM.
if(TARGET dreamfleet_homebrew_rom)
  dreamfleet_add_test(libretro_registry_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/libretro_registry_test.cc
    LIBS dreamfleet_envs LABELS integration)
endif()
