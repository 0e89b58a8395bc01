// Tests of `network` scenarios the loader must reject with file, line and key instead of failing
// inside the collective or expert-dispatch builders, and of transfers too long for the clock.
#include "sim/input/diagnostics.hpp"
#include "sim/scenario/run_output.hpp"
#include "sim/scenario/scenario.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

using namespace clustersim;
namespace fs = std::filesystem;

namespace {

fs::path write_file(const std::string& name, const std::string& text) {
    const fs::path dir = fs::temp_directory_path() / "clustersim-network-scenario-test";
    fs::create_directories(dir);
    const fs::path file = dir / (name + ".yaml");
    std::ofstream(file) << text;
    return file;
}

// The InputError of loading (and, if it loads, running) a scenario, or "no error".
std::string error_of(const std::string& name, const std::string& text) {
    const fs::path out = fs::temp_directory_path() / ("clustersim-network-scenario-" + name);
    fs::remove_all(out);
    std::string message = "no error";
    try {
        LoadedScenario loaded = load_scenario(write_file(name, text), std::nullopt);
        RunOutput output(out);
        (void)loaded.runner->run(RunOptions{}, output);
    } catch (const InputError& e) {
        message = e.what();
    }
    fs::remove_all(out);
    return message;
}

const std::string kTwoHosts = R"(kind: network
topology: {file: h100-ib-rail, hosts: 2}
)";

std::string dispatch(const std::string& gpus, const std::string& expert_parallel, int hosts = 2) {
    return fmt::format(R"(kind: network
topology: {{file: h800-ib-rail, hosts: {}}}
operation: expert_dispatch
gpus: {}
expert_parallel: {}
)",
                       hosts, gpus, expert_parallel);
}

}  // namespace

TEST_CASE("a hierarchical collective over uneven hosts is rejected at gpus", "[network][scenario]") {
    const std::string message =
        error_of("hier_12", kTwoHosts + "operation: all_reduce\nalgorithm: hierarchical\ngpus: 12\nsize: 1GiB\n");
    CHECK_THAT(message, Catch::Contains("hier_12.yaml:5:") && Catch::Contains("gpus") &&
                            Catch::Contains("same number of GPUs on every host") &&
                            Catch::Contains("8 on host 0, 4 on host 1"));
    CHECK(error_of("hier_16", kTwoHosts + "operation: all_reduce\nalgorithm: hierarchical\ngpus: 16\nsize: 1MiB\n") ==
          "no error");
}

TEST_CASE("an empty GPU list is rejected at gpus", "[network][scenario]") {
    CHECK_THAT(error_of("empty", kTwoHosts + "operation: all_reduce\ngpus: []\nsize: 1GiB\n"),
               Catch::Contains("empty.yaml:4:") && Catch::Contains("gpus") && Catch::Contains("at least one GPU"));
}

TEST_CASE("expert parallelism over uneven hosts is rejected at gpus", "[network][scenario]") {
    CHECK_THAT(error_of("ep12", dispatch("12", "{experts: 240, tokens_per_gpu: 128}")),
               Catch::Contains("ep12.yaml:4:") && Catch::Contains("gpus") &&
                   Catch::Contains("same number of EP ranks on every host"));
}

TEST_CASE("top_k beyond the experts a token can reach is rejected at top_k", "[network][scenario]") {
    // 64 GPUs on 8 hosts of 32 experts each; node_limit 4 reaches 128 of them.
    CHECK_THAT(error_of("topk256", dispatch("64", "{experts: 256, top_k: 256, tokens_per_gpu: 128}", 8)),
               Catch::Contains("topk256.yaml:5:") && Catch::Contains("expert_parallel.top_k") &&
                   Catch::Contains("top_k 256 exceeds the 128 experts a token can reach"));
}

TEST_CASE("transfers that outlast the clock's range are a user error at size", "[network][scenario]") {
    for (const char* size : {"4e17B", "1e19B", "1e20B"}) {
        const std::string message =
            error_of("huge", kTwoHosts + fmt::format("operation: all_reduce\ngpus: 16\nsize: {}\n", size));
        CHECK_THAT(message, Catch::Contains("huge.yaml:5:") && Catch::Contains("size") &&
                                Catch::Contains("about 106 days"));
    }
}
