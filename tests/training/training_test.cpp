// Tests of the training simulator: chunk chains on two streams, the layer split, memory per ZeRO
// stage, plan validation, and whole simulated steps.
#include "kernels/kernel_cost_model.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/training/chunk_program.hpp"
#include "sim/training/training_memory.hpp"
#include "sim/training/training_plan.hpp"
#include "sim/training/training_step.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>

using namespace clustersim;
namespace fs = std::filesystem;

namespace {

ChunkStep compute(int us) { return {false, Time::from_us(us), CommKind::none, "c"}; }
ChunkStep comm(int us) { return {true, Time::from_us(us), CommKind::ep_dispatch, "m"}; }

// Writes a scenario file into a fresh folder and returns its path.
fs::path write_scenario(const std::string& name, const std::string& text) {
    const fs::path dir = fs::temp_directory_path() / "clustersim-training-test";
    fs::create_directories(dir);
    const fs::path file = dir / (name + ".yaml");
    std::ofstream(file) << text;
    return file;
}

// A Llama 3 8B plan on two H100 hosts: PP2 x DP8 with the given schedule and micro-batches.
std::string llama_plan(const std::string& schedule, int global_batch, const std::string& extra = "") {
    return fmt::format(R"(kind: training
model: llama3-8b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: 2}}
gpus: 16
parallel: {{tp: 1, pp: 2, zero_stage: 1}}
schedule: {{kind: {}}}
batch: {{sequence_length: 4096, micro_batch_size: 1, global_batch: {}}}
{})",
                       schedule, global_batch, extra);
}

TrainingPlan load_plan(const std::string& name, const std::string& text) {
    const fs::path file = write_scenario(name, text);
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(file.string(), diagnostics);
    MapReader root = MapReader::root(doc);
    (void)root.optional<std::string>("kind", "", "");
    TrainingPlan plan = read_training_plan(root, ScenarioContext{file.parent_path()});
    root.finish();
    diagnostics.throw_if_any();
    return plan;
}

TrainingStep simulate(const TrainingPlan& plan) {
    const KernelCostModel model(load_gpu_profile(default_kernels_dir(), plan.gpu));
    return simulate_training_step(plan, model, 1);
}

}  // namespace

TEST_CASE("a chain alone takes the sum of its steps", "[training][chunks]") {
    ChunkProgram p{{compute(2), comm(3), compute(2)}};
    const OverlapResult r = run_chains({&p});
    CHECK(r.span == Time::from_us(7));
    CHECK(r.compute == Time::from_us(4));
    CHECK(r.communication == Time::from_us(3));
    CHECK(r.hidden_communication == Time::zero());
    CHECK(r.exposed_communication() == Time::from_us(3));
}

TEST_CASE("two chains hide one's communication under the other's compute", "[training][chunks]") {
    // Forward: compute 2, dispatch 3, compute 2. Backward: compute 3, combine 1, compute 1.
    // t=0: F computes [0,2); B's compute waits for the stream: [2,5). F's dispatch [2,5) runs under it.
    // t=5: F computes [5,7) while B's combine runs [5,6); B's last compute [7,8).
    ChunkProgram f{{compute(2), comm(3), compute(2)}};
    ChunkProgram b{{compute(3), comm(1), compute(1)}};
    const OverlapResult r = run_chains({&f, &b});
    CHECK(r.span == Time::from_us(8));
    CHECK(r.compute == Time::from_us(8));
    CHECK(r.communication == Time::from_us(4));
    CHECK(r.hidden_communication == Time::from_us(4));
    CHECK(r.exposed_communication() == Time::zero());
    CHECK(r.hidden_expert_communication == Time::from_us(4));
}

TEST_CASE("communication longer than the other chain's compute stays partly exposed", "[training][chunks]") {
    ChunkProgram f{{compute(1), comm(10), compute(1)}};
    ChunkProgram b{{compute(2)}};
    const OverlapResult r = run_chains({&f, &b});
    // F [0,1), dispatch [1,11), B computes [1,3), F's last compute [11,12).
    CHECK(r.span == Time::from_us(12));
    CHECK(r.hidden_communication == Time::from_us(2));
    CHECK(r.exposed_communication() == Time::from_us(8));
}

TEST_CASE("the default layer split is as even as possible, extras in the middle", "[training][plan]") {
    const auto split = default_layer_split(61, 16);
    CHECK(std::accumulate(split.begin(), split.end(), 0) == 61);
    CHECK(split.front() == 3);
    CHECK(split.back() == 3);
    CHECK(split[1] == 4);
    CHECK(default_layer_split(8, 4) == std::vector<int>{2, 2, 2, 2});
    CHECK(default_layer_split(5, 4) == std::vector<int>{1, 2, 1, 1});
}

TEST_CASE("memory follows the ZeRO stages", "[training][memory]") {
    TrainingPlan plan = load_plan("zero", llama_plan("1f1b", 64));
    const double params = part_parameters(plan, 0);
    REQUIRE(params > 1e9);
    const std::vector<std::vector<int>> parts = {{0}, {1}};
    for (int zero = 0; zero <= 3; ++zero) {
        plan.parallel.zero_stage = zero;
        const Bytes act = part_activation_bytes(plan, 0);
        const MemoryReport m = training_memory(plan, parts, {2, 1}, {act * 2.0, act}, Bytes(80e9));
        const RankMemory& r = m.ranks[0];
        const double dp = plan.parallel.dp;
        // ZeRO-3 also holds two gathered layers whole (the one computing and the one prefetched).
        const double gathered = zero >= 3 ? 2 * params / plan.layers_per_part[0] * 2 : 0.0;
        CHECK(r.weights.bytes() == Approx(params * 2 / (zero >= 3 ? dp : 1) + gathered));
        CHECK(r.gradients.bytes() == Approx(params * 4 / (zero >= 2 ? dp : 1)));
        CHECK(r.optimizer_states.bytes() == Approx(params * 12 / (zero >= 1 ? dp : 1)));
        CHECK(r.activations.bytes() == Approx(2 * part_activation_bytes(plan, 0).bytes()));
    }
}

TEST_CASE("full recomputation keeps far fewer activations", "[training][memory]") {
    const TrainingPlan none = load_plan("none", llama_plan("1f1b", 64));
    const TrainingPlan full = load_plan("full", llama_plan("1f1b", 64, "recompute: full"));
    CHECK(part_activation_bytes(full, 0).bytes() < 0.25 * part_activation_bytes(none, 0).bytes());
}

TEST_CASE("bad training plans are errors naming the key", "[training][plan]") {
    auto error_of = [](const std::string& name, const std::string& text) {
        try {
            load_scenario(write_scenario(name, text), std::nullopt);
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_THAT(error_of("ep", llama_plan("1f1b", 64, "parallel: {pp: 2, ep: 4}").replace(
                                  llama_plan("1f1b", 64).find("parallel: {tp: 1, pp: 2, zero_stage: 1}\n"),
                                  std::string("parallel: {tp: 1, pp: 2, zero_stage: 1}\n").size(), "")),
               Catch::Contains("parallel.ep") && Catch::Contains("no routed experts"));
    CHECK_THAT(error_of("batch", llama_plan("1f1b", 60)), Catch::Contains("global_batch 60 is not a multiple of dp 8"));
    CHECK_THAT(error_of("dualpipe", llama_plan("dualpipe", 16)), Catch::Contains("schedule"));
    CHECK_THAT(error_of("kind", llama_plan("1f1c", 64)), Catch::Contains("1f1b"));
    CHECK_THAT(error_of("layers", llama_plan("1f1b", 64, "").replace(
                                      llama_plan("1f1b", 64).find("zero_stage: 1}"), 14,
                                      "zero_stage: 1, layers_per_part: [10, 10]}")),
               Catch::Contains("add up to the model's 32 layers"));
}

TEST_CASE("a simulated 1F1B step is consistent with its own accounting", "[training][step]") {
    const TrainingPlan plan = load_plan("step", llama_plan("1f1b", 64));
    const TrainingStep step = simulate(plan);
    REQUIRE(step.memory.fits());
    REQUIRE(step.step_time > Time::zero());
    CHECK(step.step_time >= step.pipeline_time);
    CHECK(step.tokens_per_s_per_gpu == Approx(64.0 * 4096 / step.step_time.seconds() / 16));
    for (const auto& r : step.ranks) {
        CHECK(r.busy <= step.pipeline_time);
        CHECK(r.compute <= r.busy);
        CHECK(r.grads_ready <= r.pipeline_end);
    }
    CHECK(step.bubble_fraction > 0);
    CHECK(step.bubble_fraction < 0.5);
    CHECK(step.mfu > 0);
    CHECK(step.mfu < 1);
    // Deterministic: the same plan and seed give the same step.
    CHECK(simulate(plan).step_time == step.step_time);
}

TEST_CASE("more micro-batches shrink the 1F1B bubble", "[training][step]") {
    const TrainingStep few = simulate(load_plan("few", llama_plan("1f1b", 32)));
    const TrainingStep many = simulate(load_plan("many", llama_plan("1f1b", 128)));
    CHECK(many.bubble_fraction < few.bubble_fraction);
}

TEST_CASE("a plan that does not fit is reported, not simulated, unless asked", "[training][memory]") {
    const std::string big = llama_plan("gpipe", 512);  // GPipe keeps every micro-batch in flight
    const TrainingStep step = simulate(load_plan("big", big));
    CHECK_FALSE(step.memory.fits());
    CHECK(step.step_time == Time::zero());
    const TrainingStep forced = simulate(load_plan("forced", big + "memory_check: report\n"));
    CHECK(forced.step_time > Time::zero());
}

TEST_CASE("DualPipe hides expert-parallel communication that 1F1B exposes", "[training][step]") {
    // Qwen3-30B-A3B: 48 MoE layers, 128 experts; PP4 x EP16 on 8 hosts.
    auto plan = [](const std::string& schedule) {
        return fmt::format(R"(kind: training
model: qwen3-30b-a3b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: 8}}
gpus: 64
parallel: {{pp: 4, ep: 16}}
schedule: {{kind: {}}}
batch: {{sequence_length: 4096, global_batch: 128}}
communication_sms: 20
)",
                           schedule);
    };
    const TrainingStep dual = simulate(load_plan("dual", plan("dualpipe")));
    const TrainingStep one = simulate(load_plan("one", plan("1f1b")));
    REQUIRE(dual.pair);
    const auto& pr = *dual.pair;
    CHECK(pr.pair.span < pr.forward_alone + pr.backward_alone);
    CHECK(pr.pair.hidden_expert_communication > Time::zero());
    // Less communication left exposed on every rank, in time (about 95 ms against 151 ms): the fraction
    // also divides by the step, which DualPipe shortens as much (both about 0.20 once the loss is priced).
    REQUIRE(dual.ranks.size() == one.ranks.size());
    for (std::size_t r = 0; r < dual.ranks.size(); ++r) CHECK(dual.ranks[r].exposed_comm < one.ranks[r].exposed_comm);
    // DualPipe holds each part twice: parameters per rank double.
    CHECK(dual.memory.ranks[0].parameters == Approx(2 * one.memory.ranks[0].parameters).epsilon(0.3));
}

TEST_CASE("a training run writes its summary, CSVs, schedule drawing and trace", "[training][scenario]") {
    const fs::path file = write_scenario("outputs", llama_plan("1f1b", 32));
    LoadedScenario loaded = load_scenario(file, std::nullopt);
    const fs::path out = fs::temp_directory_path() / "clustersim-training-outputs";
    fs::remove_all(out);
    nlohmann::ordered_json summary;
    {
        RunOutput output(out);
        RunOptions options;
        options.trace = true;
        summary = loaded.runner->run(options, output);
        output.commit();
    }
    for (const char* key : {"step_time_s", "tokens_per_s_per_gpu", "model_tflops_per_gpu", "mfu", "bubble_fraction",
                            "exposed_comm_fraction", "peak_memory_gib_per_gpu", "gpu_hours_per_trillion_tokens"})
        CHECK(summary.contains(key));
    CHECK(summary["status"] == "simulated");
    CHECK(summary["flops_convention"] == "causal");
    for (const char* name : {"summary.json", "stages.csv", "parts.csv", "schedule.svg", "trace.json"})
        CHECK(fs::exists(out / name));
    // One stages.csv row per pipeline rank, one parts.csv row per model part, after the header.
    auto lines = [](const fs::path& p) {
        std::ifstream in(p);
        return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
    };
    CHECK(lines(out / "stages.csv") == 3);
    CHECK(lines(out / "parts.csv") == 3);
    fs::remove_all(out);
}

TEST_CASE("the megatron FLOP convention changes the reported model FLOPs, not the step", "[training][step]") {
    const TrainingPlan causal = load_plan("causal", llama_plan("1f1b", 32));
    const TrainingPlan megatron = load_plan("megatron", llama_plan("1f1b", 32, "flops_convention: megatron\n"));
    CHECK(causal.flops_convention == FlopsConvention::causal);
    REQUIRE(megatron.flops_convention == FlopsConvention::megatron);
    const TrainingStep a = simulate(causal);
    const TrainingStep b = simulate(megatron);
    CHECK(a.step_time == b.step_time);
    const double tokens = 32.0 * 4096;
    CHECK(a.model_flops_per_step.flops() == Approx(flops_per_token(causal.model, 4096).training().flops() * tokens));
    CHECK(b.model_flops_per_step.flops() == Approx(megatron_training_flops_per_token(megatron.model, 4096).flops() * tokens));
    // The whole s x s attention square counts more than its causal half.
    CHECK(b.model_tflops_per_gpu > a.model_tflops_per_gpu);
    CHECK(b.mfu / a.mfu == Approx(b.model_flops_per_step.flops() / a.model_flops_per_step.flops()));
}

TEST_CASE("a FLOP convention the model cannot use is an error naming the key", "[training][plan]") {
    auto error_of = [](const std::string& name, const std::string& text) {
        try {
            load_scenario(write_scenario(name, text), std::nullopt);
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_THAT(error_of("convention", llama_plan("1f1b", 64, "flops_convention: nvidia\n")),
               Catch::Contains("flops_convention") && Catch::Contains("megatron"));
    const std::string deepseek = R"(kind: training
model: deepseek-v3
gpu: h800-sxm
topology: {file: h800-ib-rail, hosts: 2}
gpus: 16
parallel: {pp: 2, ep: 8}
schedule: {kind: 1f1b}
batch: {sequence_length: 4096, global_batch: 32}
flops_convention: megatron
)";
    const std::string message = error_of("mla", deepseek);
    CHECK_THAT(message, Catch::Contains("flops_convention") && Catch::Contains("multi-head latent attention") &&
                            Catch::Contains("expected causal"));
    CHECK_THAT(message, Catch::Contains("mla.yaml:9:") && Catch::Contains("1 problem"));  // file and line of the key
}

TEST_CASE("a gradient bucket size is checked, naming the key", "[training][plan]") {
    auto error_of = [](const std::string& name, const std::string& text) {
        try {
            load_scenario(write_scenario(name, text), std::nullopt);
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_THAT(error_of("bucket-negative", llama_plan("1f1b", 64, "overlap: {dp_grad_bucket: -5}")),
               Catch::Contains("bucket-negative.yaml:") && Catch::Contains("overlap.dp_grad_bucket"));
    CHECK_THAT(error_of("bucket-no-overlap", llama_plan("1f1b", 64, "overlap: {dp_grad_reduce: false, dp_grad_bucket: 40000000}")),
               Catch::Contains("bucket-no-overlap.yaml:") && Catch::Contains("overlap.dp_grad_bucket") &&
                   Catch::Contains("needs overlap.dp_grad_reduce: true"));
    CHECK(load_plan("bucket-default", llama_plan("1f1b", 64)).overlap.dp_grad_bucket == 0);
}

TEST_CASE("a gradient is split into buckets of the given size, the last holding the rest", "[training][dp]") {
    CHECK(bucket_shares(100, 0) == std::vector<double>{1.0});
    CHECK(bucket_shares(100, 100) == std::vector<double>{1.0});
    CHECK(bucket_shares(100, 250) == std::vector<double>{1.0});
    CHECK(bucket_shares(100, 25) == std::vector<double>{0.25, 0.25, 0.25, 0.25});
    const std::vector<double> uneven = bucket_shares(100, 40);
    REQUIRE(uneven.size() == 3);
    CHECK(uneven[0] == Approx(0.4));
    CHECK(uneven[2] == Approx(0.2));
}

TEST_CASE("gradient buckets are reduced under the last backward, one after another", "[training][dp]") {
    const Time start = Time::from_us(1000), end = Time::from_us(2000);
    auto buckets = [](std::vector<double> shares, std::vector<int> reduce_us) {
        std::vector<GradientBucket> out;
        for (std::size_t i = 0; i < shares.size(); ++i) out.push_back({shares[i], Time::from_us(reduce_us[i])});
        return out;
    };
    // One bucket: the whole reduction after the backward.
    CHECK(bucketed_reduce_end(start, end, buckets({1.0}, {400})) == Time::from_us(2400));
    // Four buckets full at 1250, 1500, 1750 and 2000, 100 us each: only the last one is exposed.
    CHECK(bucketed_reduce_end(start, end, buckets({0.25, 0.25, 0.25, 0.25}, {100, 100, 100, 100})) == Time::from_us(2100));
    // Collectives slower than the backward queue up behind each other: 1250 + 4 x 500.
    CHECK(bucketed_reduce_end(start, end, buckets({0.25, 0.25, 0.25, 0.25}, {500, 500, 500, 500})) == Time::from_us(3250));
    // A smaller last bucket: full at 1400, 1800 and 2000; 160, 160 and 80 us.
    CHECK(bucketed_reduce_end(start, end, buckets({0.4, 0.4, 0.2}, {160, 160, 80})) == Time::from_us(2080));
}

TEST_CASE("gradient buckets shorten a step whose gradient reduction is exposed", "[training][dp]") {
    std::string one_stage = llama_plan("1f1b", 64);
    one_stage.replace(one_stage.find("pp: 2"), 5, "pp: 1");
    const TrainingStep whole = simulate(load_plan("whole", one_stage));
    const TrainingStep bucketed = simulate(load_plan("bucketed", one_stage + "overlap: {dp_grad_bucket: 40000000}\n"));
    REQUIRE(whole.ranks.size() == 1);
    const RankStep& w = whole.ranks[0];
    const RankStep& b = bucketed.ranks[0];
    CHECK(w.dp_buckets == 1);
    CHECK(w.dp_reduce_end == w.grads_ready + w.dp_reduce);
    // Llama 3 8B's 8.0e9 parameters in buckets of 4e7.
    const double parameters = bucketed.memory.ranks[0].parameters;
    CHECK(parameters == Approx(8.03e9).epsilon(0.01));
    CHECK(b.dp_buckets == static_cast<int>(std::ceil(parameters / 4e7)));
    // Each bucket is its own collective: together at least as long as the whole one.
    CHECK(b.dp_reduce >= w.dp_reduce);
    CHECK(b.dp_reduce_end < w.dp_reduce_end);
    CHECK(b.dp_reduce_end > b.grads_ready);
    CHECK(bucketed.step_time < whole.step_time);
}

TEST_CASE("only the first pipeline rank buckets its gradient, as Megatron-Core does", "[training][dp]") {
    const TrainingStep step = simulate(load_plan("bucket-pp", llama_plan("1f1b", 64, "overlap: {dp_grad_bucket: 40000000}")));
    REQUIRE(step.ranks.size() == 2);
    CHECK(step.ranks[0].dp_buckets > 1);
    CHECK(step.ranks[1].dp_buckets == 1);
    CHECK(step.ranks[1].dp_reduce_end == step.ranks[1].grads_ready + step.ranks[1].dp_reduce);
}
