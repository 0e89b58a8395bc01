// kernels/bench/run_all.sh, the script a GPU session runs, exercised here with a stand-in benchmark program
// (no GPU): what it writes, and that a run stopped part-way still leaves the finished tables packed.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Scratch {
    fs::path path = fs::temp_directory_path() / fmt::format("clustersim-run-all-{}", ::getpid());
    Scratch() {
        fs::remove_all(path);
        fs::create_directories(path / "bin");
        fs::create_directories(path / "out");
    }
    ~Scratch() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

// A stand-in for clustersim_kernel_bench: writes a one-row table for the op it is asked for; for the op
// named in STOP_AT it stops the script that called it instead (as a device call's time limit would).
void write_stand_in(const fs::path& bin) {
    const fs::path p = bin / "clustersim_kernel_bench";
    std::ofstream(p) << R"(#!/usr/bin/env bash
while [ $# -gt 0 ]; do case "$1" in --out) out="$2"; shift 2 ;; --ops) op="$2"; shift 2 ;; *) shift ;; esac; done
if [ "$op" = "${STOP_AT:-}" ]; then kill -TERM "$PPID"; exit 1; fi
printf '# provenance: measured\nop,dtype\n%s,bf16\n' "$op" > "$out/$op.csv"
)";
    fs::permissions(p, fs::perms::owner_all);
}

int run(const std::string& command) {
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string listing(const fs::path& tarball) {
    std::string out;
    FILE* pipe = ::popen(fmt::format("tar -tzf '{}' 2>&1", tarball.string()).c_str(), "r");
    REQUIRE(pipe);
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
    ::pclose(pipe);
    return out;
}

std::string script() { return std::string(CLUSTERSIM_SOURCE_DIR) + "/kernels/bench/run_all.sh"; }

}  // namespace

TEST_CASE("run_all.sh packs every finished table into $OUT, also when the run is stopped part-way", "[kernels]") {
    Scratch s;
    write_stand_in(s.path / "bin");
    // `env` before the script's variables: STOP_AT (below) must reach the script, not the `cd`.
    const auto command = [&](const std::string& env, const std::string& ops) {
        return fmt::format("cd '{}' && {} OUT='{}' CLUSTERSIM_COMMIT=test bash '{}' --bin '{}' --ops '{}' --work work "
                           ">/dev/null 2>&1",
                           s.path.string(), env, (s.path / "out").string(), script(), (s.path / "bin").string(), ops);
    };
    SECTION("a whole run") {
        CHECK(run(command("", "rmsnorm copy")) == 0);
        const std::string tables = listing(s.path / "out" / "calibration.tar.gz");
        CHECK(tables.find("rmsnorm.csv") != std::string::npos);
        CHECK(tables.find("copy.csv") != std::string::npos);
        CHECK(fs::exists(s.path / "out" / "summary.txt"));
    }
    SECTION("stopped at the third op: the two before it came back") {
        CHECK(run(command("STOP_AT=gemm", "rmsnorm copy gemm grouped_gemm")) != 0);
        const std::string tables = listing(s.path / "out" / "calibration.tar.gz");
        CHECK(tables.find("rmsnorm.csv") != std::string::npos);
        CHECK(tables.find("copy.csv") != std::string::npos);
        CHECK(tables.find("grouped_gemm.csv") == std::string::npos);
    }
}

TEST_CASE("run_all.sh measures attention and the memory-bound ops before the GEMMs by default", "[kernels]") {
    // The GEMMs have published tables to fall back on (kernels/calibration/README.md); a session whose
    // device time runs out should have spent it on what has none.
    std::ifstream in(script());
    std::string line;
    std::vector<std::string> order;
    while (std::getline(in, line))
        if (line.rfind("all=\"", 0) == 0) {
            std::istringstream words(line.substr(5, line.size() - 6));  // between all=" and the closing "
            for (std::string op; words >> op;) order.push_back(op);
        }
    const auto at = [&](const std::string& op) { return std::find(order.begin(), order.end(), op) - order.begin(); };
    REQUIRE(at("gemm") < static_cast<std::ptrdiff_t>(order.size()));
    REQUIRE(at("grouped_gemm") < static_cast<std::ptrdiff_t>(order.size()));
    for (const char* first : {"attn_prefill", "attn_prefill_bwd", "attn_decode", "rmsnorm", "copy"}) {
        INFO(first);
        CHECK(at(first) < at("gemm"));
        CHECK(at(first) < at("grouped_gemm"));
    }
}
