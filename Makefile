# Makefile — thin wrapper over CMake.
#   make          build build/zmlx (Release)
#   make test     the whole suite: Release tests, then ASan+UBSan tests and fuzz smoke runs
#   make bench    the CPU decode benchmark (bench/cpu_decode.sh)
.PHONY: all test test-release test-asan bench clean

JOBS ?= $(shell nproc)

all:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j $(JOBS)

test-release: all
	cd build && ctest --output-on-failure -j $(JOBS)

# Sanitizer build with clang so the libFuzzer targets build in the same tree; ctest runs
# every test again under ASan+UBSan plus a short fuzz run of each target on its corpus.
test-asan:
	CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZMLX_SANITIZE=ON -DZMLX_FUZZ=ON -DZMLX_SLOW_TESTS=OFF -DZMLX_CUDA=OFF >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)

test: test-release test-asan

bench: all
	bash bench/cpu_decode.sh

clean:
	rm -rf build build-asan
