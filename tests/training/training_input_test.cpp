// Tests of training plans the loader must reject with file, line and key, and of what a step reports
// where the earlier accounting hid something (critical-path exposed communication, a pair without
// overlap, the memory reserve in the does-not-fit status).
#include "kernels/kernel_cost_model.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/scenario/run_output.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/training/training_costs.hpp"
#include "sim/training/training_plan.hpp"
#include "sim/training/training_step.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

using namespace clustersim;
namespace fs = std::filesystem;

namespace {

fs::path write_file(const std::string& name, const std::string& text) {
    const fs::path dir = fs::temp_directory_path() / "clustersim-training-input-test";
    fs::create_directories(dir);
    const fs::path file = dir / (name + ".yaml");
    std::ofstream(file) << text;
    return file;
}

// The loader's message for a scenario, or "no error".
std::string load_error(const std::string& name, const std::string& text) {
    try {
        load_scenario(write_file(name, text), std::nullopt);
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

// Runs a scenario; the InputError a run raises, or "no error" with the summary in `summary`.
std::string run_error(const std::string& name, const std::string& text, nlohmann::ordered_json* summary = nullptr) {
    LoadedScenario loaded = load_scenario(write_file(name, text), std::nullopt);
    const fs::path out = fs::temp_directory_path() / ("clustersim-training-input-" + name);
    fs::remove_all(out);
    try {
        RunOutput output(out);
        auto s = loaded.runner->run(RunOptions{}, output);
        if (summary) *summary = s;
    } catch (const InputError& e) {
        fs::remove_all(out);
        return e.what();
    }
    fs::remove_all(out);
    return "no error";
}

// DeepSeek-V3 as published (validation rows T1/T2), with `extra` appended.
std::string deepseek(const std::string& extra = "") {
    return R"(kind: training
model: deepseek-v3
gpu: h800-sxm
topology: {file: h800-ib-rail, hosts: 256}
gpus: 2048
parallel: {tp: 1, pp: 16, ep: 64, zero_stage: 1, layers_per_part: [3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2]}
schedule: {kind: dualpipe}
batch: {sequence_length: 4096, micro_batch_size: 1, global_batch: 15360}
precision: fp8
optimizer: {master_weight_bytes: 4, moment_bytes: 2, gradient_bytes: 4, parameter_bytes: 2}
recompute: selective
activation_cache: fp8
router_weights: inside_expert
)" + extra;
}

// Llama 3 70B on 8 H100 hosts: TP8 x PP4 x DP2.
std::string llama70(const std::string& batch, const std::string& extra = "") {
    return fmt::format(R"(kind: training
model: llama3-70b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: 8}}
gpus: 64
precision: bf16
parallel: {{tp: 8, pp: 4, zero_stage: 1}}
schedule: {{kind: 1f1b}}
batch: {}
{})",
                       batch, extra);
}

TrainingPlan plan_of(const std::string& name, const std::string& text) {
    const fs::path file = write_file(name, text);
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(file.string(), diagnostics);
    MapReader root = MapReader::root(doc);
    (void)root.optional<std::string>("kind", "", "");
    TrainingPlan plan = read_training_plan(root, ScenarioContext{file.parent_path()});
    root.finish();
    diagnostics.throw_if_any();
    return plan;
}

TrainingStep simulate(const std::string& name, const std::string& text) {
    const TrainingPlan plan = plan_of(name, text);
    const KernelCostModel model(load_gpu_profile(default_kernels_dir(), plan.gpu));
    return simulate_training_step(plan, model, 1);
}

}  // namespace

TEST_CASE("communication SMs must leave the GPU some SMs to compute on", "[training][plan]") {
    for (int sms : {132, 500}) {
        const std::string message = load_error(fmt::format("sms{}", sms), deepseek(fmt::format("communication_sms: {}\n", sms)));
        CHECK_THAT(message, Catch::Contains(fmt::format("sms{}.yaml:14:", sms)) && Catch::Contains("communication_sms") &&
                                Catch::Contains("must be below the GPU's 132 SMs"));
    }
    CHECK(load_error("sms131", deepseek("communication_sms: 131\n")) == "no error");
}

TEST_CASE("a TP group must stay inside one NVLink domain", "[training][plan]") {
    // Llama 3 405B on two NVL72 racks, TP16: stage 4's TP group would hold GPUs 64-79 of both racks.
    const std::string message = load_error("gbtp16", R"(kind: training
model: llama3-405b
gpu: gb200
topology: {file: gb200-nvl72, hosts: 2}
gpus: 144
memory_check: report
parallel: {tp: 16, pp: 9, zero_stage: 1}
batch: {sequence_length: 8192, micro_batch_size: 1, global_batch: 36}
)");
    CHECK_THAT(message, Catch::Contains("gbtp16.yaml:7:") && Catch::Contains("parallel.tp") &&
                            Catch::Contains("tp 16 does not divide the 72 GPUs of an NVLink domain"));
}

TEST_CASE("an EP group must put the same number of ranks on every host", "[training][plan]") {
    const std::string plan = R"(kind: training
model: deepseek-v3
gpu: gb200
topology: {file: gb200-nvl72, hosts: 8}
gpus: 512
memory_check: report
parallel: {tp: 1, pp: 4, ep: EP, zero_stage: 1}
schedule: {kind: dualpipe}
batch: {sequence_length: 4096, micro_batch_size: 1, global_batch: 1024}
)";
    auto with_ep = [&](int ep) {
        std::string text = plan;
        return text.replace(text.find("EP"), 2, std::to_string(ep));
    };
    CHECK_THAT(load_error("ep128", with_ep(128)),
               Catch::Contains("ep128.yaml:7:") && Catch::Contains("parallel.ep") &&
                   Catch::Contains("ep 128 puts a different number of EP ranks on the hosts"));
    // EP 32 fits GPUs 0-31 but its third group, GPUs 64-95, holds 8 ranks of one rack and 24 of the next.
    CHECK_THAT(load_error("ep32", with_ep(32)), Catch::Contains("parallel.ep") && Catch::Contains("ep 32 puts"));
    CHECK(load_error("ep8", with_ep(8)) == "no error");
}

TEST_CASE("attention TP must divide the heads, at load", "[training][plan]") {
    // Mixtral's 32 heads over TP 3 on one NVL72 rack (3 divides the rack's 72 GPUs).
    const std::string message = load_error("mx_tp3", R"(kind: training
model: mixtral-8x7b
gpu: gb200
topology: {file: gb200-nvl72, hosts: 1}
gpus: 24
memory_check: report
parallel: {tp: 3, pp: 1, ep: 1, zero_stage: 1}
batch: {sequence_length: 4096, micro_batch_size: 1, global_batch: 48}
)");
    CHECK_THAT(message, Catch::Contains("mx_tp3.yaml:7:") && Catch::Contains("parallel.tp") &&
                            Catch::Contains("tp 3 does not divide the model's 32 attention heads") &&
                            Catch::Contains("1 problem"));
}

TEST_CASE("gradient buckets are capped", "[training][plan]") {
    const std::string message =
        load_error("bkt1", llama70("{sequence_length: 4096, micro_batch_size: 1, global_batch: 64}", "overlap: {dp_grad_bucket: 1}\n"));
    CHECK_THAT(message, Catch::Contains("bkt1.yaml:10:") && Catch::Contains("overlap.dp_grad_bucket") &&
                            Catch::Contains("at most 1000000 are simulated"));
    CHECK(load_error("bkt1e6", llama70("{sequence_length: 4096, micro_batch_size: 1, global_batch: 64}",
                                       "overlap: {dp_grad_bucket: 1000000}\n")) == "no error");
}

TEST_CASE("a step whose times leave the clock's range is a user error at the sequence length", "[training][plan]") {
    for (const char* seq : {"100000000", "2147483647"}) {
        const std::string message =
            run_error(fmt::format("sl{}", seq),
                      llama70(fmt::format("{{sequence_length: {}, micro_batch_size: 1, global_batch: 64}}", seq),
                              "memory_check: report\n"));
        CHECK_THAT(message, Catch::Contains(fmt::format("sl{}.yaml:9:", seq)) && Catch::Contains("batch.sequence_length") &&
                                Catch::Contains("the step cannot be simulated") &&
                                (Catch::Contains("about 106 days") || Catch::Contains("overflows")));
    }
    // A micro-batch holds at most 2^31 - 1 tokens (the network model counts them in an int).
    CHECK_THAT(load_error("mbs2", llama70("{sequence_length: 2147483647, micro_batch_size: 2, global_batch: 64}")),
               Catch::Contains("batch.micro_batch_size") && Catch::Contains("2147483647 tokens"));
}

TEST_CASE("exposed communication is the most any rank exposes", "[training][step]") {
    // Small buckets give rank 0 a long bucketed gradient reduction after its last backward; the other
    // ranks reduce theirs whole, as Megatron-Core does.
    const TrainingStep step =
        simulate("bkt1000", llama70("{sequence_length: 4096, micro_batch_size: 1, global_batch: 64}",
                                    "overlap: {dp_grad_bucket: 100000}\n"));
    REQUIRE(step.exposed_comm_rank == 0);
    const RankStep& r0 = step.ranks[0];
    CHECK(r0.step_end == step.step_time);
    const Time tail = r0.dp_reduce_end - r0.pipeline_end;
    REQUIRE(tail > Time::zero());
    CHECK(step.exposed_comm_fraction ==
          Approx((r0.exposed_comm + r0.param_gather_exposed + tail) / step.step_time));
    // More than the mean over ranks, which divides rank 0's tail by the four ranks.
    double mean = 0;
    for (const auto& r : step.ranks)
        mean += (r.exposed_comm + r.param_gather_exposed + std::max(Time::zero(), r.dp_reduce_end - r.pipeline_end)) /
                step.step_time / 4;
    CHECK(step.exposed_comm_fraction > mean);
}

TEST_CASE("a pair without EP overlap reports its chunks run one after the other", "[training][step]") {
    const std::string plan = R"(kind: training
model: qwen3-30b-a3b
gpu: h100-sxm
topology: {file: h100-ib-rail, hosts: 8}
gpus: 64
parallel: {pp: 4, ep: 16}
schedule: {kind: dualpipe}
batch: {sequence_length: 4096, global_batch: 128}
communication_sms: 20
)";
    const TrainingStep overlapped = simulate("pair-on", plan);
    const TrainingStep serial = simulate("pair-off", plan + "overlap: {ep_with_compute: false}\n");
    REQUIRE(overlapped.pair);
    REQUIRE(serial.pair);
    CHECK(overlapped.pair->overlapped);
    CHECK(overlapped.pair->pair.hidden_expert_communication > Time::zero());
    CHECK_FALSE(serial.pair->overlapped);
    CHECK(serial.pair->pair.hidden_expert_communication == Time::zero());
    CHECK(serial.pair->pair.expert_communication > Time::zero());
    CHECK(serial.pair->pair.span == serial.pair->forward_alone + serial.pair->backward_alone);
    CHECK(serial.step_time > overlapped.step_time);
    // 1F1B runs no pairs: its pair is reported as its chunks one after the other.
    std::string one_f_one_b = plan;
    one_f_one_b.replace(one_f_one_b.find("dualpipe"), 8, "1f1b");
    const TrainingStep one = simulate("pair-1f1b", one_f_one_b);
    REQUIRE(one.pair);
    CHECK_FALSE(one.pair->overlapped);
    CHECK(one.pair->pair.hidden_expert_communication == Time::zero());
}

TEST_CASE("the does-not-fit status lists the memory reserve", "[training][memory]") {
    nlohmann::ordered_json summary;
    REQUIRE(run_error("reserve", llama70("{sequence_length: 4096, micro_batch_size: 1, global_batch: 64}",
                                         "memory_reserve: 100GiB\n"),
                      &summary) == "no error");
    const std::string status = summary["status"];
    CHECK_THAT(status, Catch::StartsWith("does not fit") && Catch::Contains("memory_reserve 100.0)"));
}

TEST_CASE("ZeRO-3 gathers the parameters before every forward and backward", "[training][zero]") {
    const std::string z1 = llama70("{sequence_length: 4096, micro_batch_size: 1, global_batch: 64}");
    std::string z3 = z1;
    z3.replace(z3.find("zero_stage: 1"), 13, "zero_stage: 3");
    const TrainingStep one = simulate("z1", z1);
    const TrainingStep three = simulate("z3", z3);
    // Per micro-batch gathers cost time that ZeRO-1's single gather after the optimizer does not.
    CHECK(three.step_time > one.step_time);
    CHECK(one.ranks[0].param_gather > Time::zero());
    for (const auto& r : three.ranks) CHECK(r.param_gather == Time::zero());
    // Sharded weights plus two gathered layers are still less than the whole stage's weights.
    CHECK(three.memory.ranks[1].weights < one.memory.ranks[1].weights);
    CHECK(three.memory.ranks[1].weights > one.memory.ranks[1].weights / 2);

    const TrainingPlan plan = plan_of("z3-chunks", z3);
    const KernelCostModel model(load_gpu_profile(default_kernels_dir(), plan.gpu));
    CommunicationPricer comm(plan, 1);
    ChunkPricer chunks(plan, model, comm);
    const auto gather = chunks.zero3_gather(1);
    REQUIRE(gather.first_layer > Time::zero());
    CHECK(gather.total == gather.first_layer * plan.layers_per_part[1]);
    for (WorkKind kind : {WorkKind::forward, WorkKind::backward}) {
        const ChunkProgram& chunk = chunks.chunk(1, kind, false);
        REQUIRE_FALSE(chunk.steps.empty());
        CHECK(chunk.steps.front().label == "zero3.param_all_gather");
        CHECK(chunk.steps.front().time == gather.first_layer);
    }
}
