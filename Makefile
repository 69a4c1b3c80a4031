# The two commands: `make run` trains on the embedded default config; `make test` builds and runs
# every test. Both install the Debian packages first (scripts/setup.sh, idempotent).
.PHONY: run test build setup clean

CTEST_ARGS ?=
# The slow cluster test runs at a reduced size by default (and so in CI, where CI=true);
# `DREAMFLEET_TEST_SCALE=full make test` runs it to the learning goal instead.

setup:
	@bash scripts/setup.sh

build: setup
	@bash scripts/build.sh

run: build
	./build/bin/dreamfleet up $(ARGS)

test: build
	cmake --build build --target dreamfleet_test_extras
	cd build && ctest --output-on-failure --timeout 1200 -j 2 $(CTEST_ARGS)

clean:
	rm -rf build
