// The query commands end to end: the built clustersim binary run as a subprocess, its exit status and
// what it prints.
#include "models/model_loader.hpp"
#include "tests/support/cli_runner.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

using namespace clustersim;

namespace {

namespace fs = std::filesystem;
using clustersim::testing::CommandResult;
using clustersim::testing::run_clustersim;
using clustersim::testing::ScratchDir;
using clustersim::testing::source_path;

// A kernels folder holding only the synthetic GPU's spec: a profile with no calibration tables.
void make_kernels_dir_without_tables(const fs::path& dir) {
    fs::create_directories(dir / "gpus");
    fs::copy_file(source_path("tests/kernels/fixtures/gpus/synth.yaml"), dir / "gpus" / "synth.yaml");
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("clustersim model deepseek-v3 prints about 671B parameters and exits 0") {
    const CommandResult r = run_clustersim("model deepseek-v3");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "671."));  // DeepSeek-V3's published 671B total
    const double total = parameter_counts(load_model_or_throw("deepseek-v3")).total;
    CHECK(contains(r.output, fmt::format("{:.2f}B", total * 1e-9)));
}

TEST_CASE("clustersim model --json prints JSON") {
    const CommandResult r = run_clustersim("model llama3-8b --json");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.front() == '{');
    CHECK(contains(r.output, "\"llama3-8b\""));
}

TEST_CASE("an unknown model name exits 2 with a message naming it and a suggestion") {
    const CommandResult r = run_clustersim("model deepseek-v4");
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "error:"));
    CHECK(contains(r.output, "deepseek-v4"));
    CHECK(contains(r.output, "did you mean \"deepseek-v3\""));
}

TEST_CASE("a kernels CSV with a malformed row exits 2 naming the line, and writes nothing") {
    ScratchDir scratch("kernels-bad");
    const fs::path out = scratch.path / "pred.csv";
    const CommandResult r = run_clustersim(fmt::format("kernels --gpu h100-sxm --in '{}' --out '{}'",
                                                   source_path("tests/commands/fixtures/malformed_shapes.csv"),
                                                   out.string()));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "malformed_shapes.csv:3"));
    CHECK_FALSE(fs::exists(out));
}

TEST_CASE("clustersim kernels without tables writes roofline predictions and says so") {
    ScratchDir scratch("kernels-roofline");
    make_kernels_dir_without_tables(scratch.path / "kernels");
    const fs::path out = scratch.path / "pred.csv";
    const CommandResult r = run_clustersim(fmt::format("kernels --gpu synth --kernels-dir '{}' --in '{}' --out '{}'",
                                                   (scratch.path / "kernels").string(),
                                                   source_path("tests/commands/fixtures/shapes.csv"), out.string()));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "4 shapes predicted"));
    CHECK(contains(r.output, "provenance roofline"));
    CHECK(contains(r.output, "100.0% of the predicted time"));
    CHECK(contains(r.output, "no calibration tables"));
    std::ifstream in(out);
    std::string header;
    std::getline(in, header);
    CHECK(header == "op,dtype,m,n,k,groups,batch,heads,kv_heads,head_dim,seq,context,bytes,time_us,provenance");
}

TEST_CASE("clustersim layer prints a per-operator breakdown with provenance and excluded communication") {
    const CommandResult r =
        run_clustersim("layer --model deepseek-v3 --gpu h100-sxm --phase decode --batch 32 --context 2048 --ep 8");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "L3.attn.mla_decode"));
    CHECK(contains(r.output, "compute time:"));
    CHECK(contains(r.output, "provenance of the compute time:"));
    CHECK(contains(r.output, "L3.moe.ep_dispatch"));
    CHECK(contains(r.output, "excluded"));
}

TEST_CASE("clustersim layer rejects a decode without --context and a TP that does not divide the heads") {
    const CommandResult no_context = run_clustersim("layer --model llama3-8b --gpu h100-sxm --phase decode --batch 4");
    INFO(no_context.output);
    CHECK(no_context.exit_code == 2);
    CHECK(contains(no_context.output, "--context"));
    const CommandResult bad_tp =
        run_clustersim("layer --model llama3-8b --gpu h100-sxm --phase prefill --seq 128 --tp 3");
    INFO(bad_tp.output);
    CHECK(bad_tp.exit_code == 2);
    CHECK(contains(bad_tp.output, "must divide the 32 heads"));
    const CommandResult prefill_drafts =
        run_clustersim("layer --model llama3-8b --gpu h100-sxm --phase prefill --seq 128 --query-tokens 2");
    INFO(prefill_drafts.output);
    CHECK(prefill_drafts.exit_code == 2);
    CHECK(contains(prefill_drafts.output, "--query-tokens is for decode"));
}

TEST_CASE("clustersim layer refuses a batch whose layer time is past the clock, and ep on a dense model") {
    // 4096 x 16M tokens: the attention alone would take about 1e7 s, past the 9.2e6 s a Time holds.
    const CommandResult huge = run_clustersim(
        "layer --model llama3-70b --gpu h100-sxm --phase prefill --batch 4096 --seq 16777216");
    INFO(huge.output);
    CHECK(huge.exit_code == 2);
    CHECK(contains(huge.output, "command line: --batch/--seq: --batch 4096 x --seq 16777216 of llama3-70b is too much "
                                "work for one layer on one GPU: a time of "));
    CHECK(contains(huge.output, "at most 2^63 ps = 9.223e+06 s"));
    CHECK_FALSE(contains(huge.output, "compute time:"));
    const CommandResult dense_ep =
        run_clustersim("layer --model llama3-70b --gpu h100-sxm --phase decode --batch 8 --context 1024 --ep 8");
    INFO(dense_ep.output);
    CHECK(dense_ep.exit_code == 2);
    CHECK(contains(dense_ep.output, "--tp/--ep: parallel layout for model \"llama3-70b\": ep 8 needs routed experts "
                                    "to spread; the model is dense (use ep 1)"));
}

TEST_CASE("clustersim kernels refuses a row whose time is past the clock, naming its line and columns") {
    ScratchDir scratch("kernels-too-large");
    const fs::path out = scratch.path / "pred.csv";
    const CommandResult r = run_clustersim(fmt::format("kernels --gpu h100-sxm --in '{}' --out '{}'",
                                                   source_path("tests/kernels/fixtures/too_large.csv"), out.string()));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "too_large.csv:4:0: the gemm shape is too large to predict on h100-sxm"));
    CHECK(contains(r.output, "too_large.csv:5:0: the attn_prefill shape is too large"));
    CHECK_FALSE(fs::exists(out));
}

TEST_CASE("clustersim model on a config.json that breaks a model rule exits 2 naming the file and key") {
    ScratchDir scratch("model-config-json");
    const fs::path file = scratch.path / "config.json";
    std::ofstream(file) << R"({"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
 "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 32000,
 "num_local_experts": 8, "num_experts_per_tok": 9})";
    const CommandResult r = run_clustersim(fmt::format("model '{}'", file.string()));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "config.json:3:26: num_experts_per_tok: num_experts_per_tok 9 exceeds the 8 routed "
                             "experts (num_local_experts)"));
}

TEST_CASE("clustersim layer prices a decode step's speculative tokens over one read of each cache") {
    const CommandResult r = run_clustersim(
        "layer --model deepseek-v3 --gpu h800-sxm --phase decode --batch 64 --context 4096 --ep 8 --query-tokens 2");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "2 query tokens each"));
    CHECK(contains(r.output, "seq=2 context=4097"));
    CHECK(contains(r.output, "published"));  // FlashMLA's H800 rates
}

TEST_CASE("clustersim calibrate without tables says so and exits 0") {
    ScratchDir scratch("calibrate-empty");
    make_kernels_dir_without_tables(scratch.path / "kernels");
    const CommandResult r =
        run_clustersim(fmt::format("calibrate --gpu synth --kernels-dir '{}'", (scratch.path / "kernels").string()));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "no calibration tables for synth"));
}

TEST_CASE("clustersim calibrate lists a GPU's published and derived kernel rates") {
    const CommandResult h800 =
        run_clustersim(fmt::format("calibrate --gpu h800-sxm --kernels-dir '{}'", source_path("kernels")));
    INFO(h800.output);
    CHECK(h800.exit_code == 0);
    CHECK(contains(h800.output, "kernel rates (published): mla_decode bf16 at 660 TFLOP/s"));
    const CommandResult h200 =
        run_clustersim(fmt::format("calibrate --gpu h200-sxm --kernels-dir '{}'", source_path("kernels")));
    INFO(h200.output);
    CHECK(contains(h200.output, "kernel rates (derived): mla_decode bf16 at 660 TFLOP/s compute-bound, 4299 GB/s"));
}

TEST_CASE("clustersim calibrate reports leave-one-out error per op when tables exist") {
    const CommandResult r =
        run_clustersim(fmt::format("calibrate --gpu synth --kernels-dir '{}'", source_path("tests/kernels/fixtures")));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.output, "leave-one-out"));
    CHECK(contains(r.output, "gemm"));
    CHECK(contains(r.output, "median"));
}

TEST_CASE("run --out never replaces a file, the working folder or a folder of other files, but an earlier result it does") {
    ScratchDir scratch("run-out");
    const std::string scenario = source_path("scenarios/network/h100-allreduce-8gpu.yaml");
    auto run_into = [&](const fs::path& out) {
        return run_clustersim(fmt::format("run '{}' --out '{}'", scenario, out.string()));
    };
    // A folder of someone's files is left as it was.
    fs::create_directories(scratch.path / "notes");
    std::ofstream(scratch.path / "notes" / "keep.txt") << "mine\n";
    CommandResult r = run_into(scratch.path / "notes");
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "not an earlier clustersim result"));
    CHECK(fs::exists(scratch.path / "notes" / "keep.txt"));
    // So is a file.
    std::ofstream(scratch.path / "file.txt") << "mine\n";
    r = run_into(scratch.path / "file.txt");
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "is not a folder"));
    CHECK(fs::is_regular_file(scratch.path / "file.txt"));
    // The working folder and the folders above it are refused.
    r = run_into(fs::current_path());
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "working folder or a folder above it"));
    r = run_into(fs::current_path().parent_path());
    CHECK(r.exit_code == 2);
    // A new folder, then the same one again: an earlier result is replaced.
    CHECK(run_into(scratch.path / "result").exit_code == 0);
    CHECK(run_into(scratch.path / "result").exit_code == 0);
    CHECK(fs::exists(scratch.path / "result" / "summary.json"));
}

TEST_CASE("clustersim kernels with an --out it cannot write exits 2 naming the option and path") {
    const CommandResult r =
        run_clustersim(fmt::format("kernels --gpu h100-sxm --in '{}' --out /proc/clustersim-no-such-file.csv",
                                   source_path("tests/commands/fixtures/shapes.csv")));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "/proc/clustersim-no-such-file.csv: --out: cannot create or write this file"));
    CHECK_FALSE(contains(r.output, "internal error"));
}

TEST_CASE("sweep and plan with an --out they cannot create exit 2 at once, naming the option and path") {
    const CommandResult sweep = run_clustersim(
        fmt::format("sweep '{}' --jobs 1 --out /proc/clustersim-no-such-folder",
                    source_path("scenarios/sweeps/megatron-gpt-1700m-small.yaml")));
    INFO(sweep.output);
    CHECK(sweep.exit_code == 2);
    CHECK(contains(sweep.output, "/proc/clustersim-no-such-folder: --out: cannot create the output folder"));
    const CommandResult plan = run_clustersim(fmt::format("plan '{}' --out /proc/clustersim-no-such-folder",
                                                          source_path("scenarios/plans/llama3-70b-h100-small.yaml")));
    INFO(plan.output);
    CHECK(plan.exit_code == 2);
    CHECK(contains(plan.output, "/proc/clustersim-no-such-folder: --out: cannot create the output folder"));
    CHECK_FALSE(contains(plan.output, "pool candidates"));  // refused before the search
}
