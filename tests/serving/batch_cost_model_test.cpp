// Iteration costs: the affine model, and the execution-level model's behaviour and memo.
#include "sim/serving/batch_cost_model.hpp"
#include "sim/serving/pool_expert_load.hpp"

#include "models/model_loader.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <vector>

using namespace clustersim;
using namespace clustersim::literals;

namespace {

ExecutionBatchCostModel llama_8b_tp(int tp, bool overlap = false) {
    ExecutionCostOptions o;
    o.layout.tp = tp;
    o.links.nvlink = 360_GBps;
    o.links.nvlink_latency = 3_us;
    o.links.network = 50_GBps;
    o.links.network_latency = 5_us;
    o.overlap_communication = overlap;
    auto kernels = std::make_shared<const KernelCostModel>(load_gpu_profile(default_kernels_dir(), "h100-sxm"));
    return ExecutionBatchCostModel(load_model_or_throw("llama3-8b"), kernels, o);
}

// Qwen3-30B-A3B on one 8-GPU host: attention data parallelism and EP8 on H100-like links.
ExecutionCostOptions qwen_ep8_options() {
    ExecutionCostOptions o;
    o.layout.tp = 8;
    o.layout.attn_dp = 8;
    o.layout.ep = 8;
    o.links.nvlink = 360_GBps;
    o.links.nvlink_latency = 3_us;
    o.links.network = 50_GBps;
    o.links.network_latency = 5_us;
    return o;
}

ExecutionBatchCostModel qwen_ep8(const ExecutionCostOptions& o) {
    auto kernels = std::make_shared<const KernelCostModel>(load_gpu_profile(default_kernels_dir(), "h100-sxm"));
    return ExecutionBatchCostModel(load_model_or_throw("qwen3-30b-a3b"), kernels, o);
}

BatchWork decode(std::int64_t requests, std::int64_t context) {
    BatchWork w;
    w.decode_requests = requests;
    w.decode_context = context;
    return w;
}

BatchWork prefill(std::int64_t tokens, std::int64_t sequences) {
    BatchWork w;
    w.prefill_tokens = tokens;
    w.prefill_sequences = sequences;
    return w;
}

}  // namespace

TEST_CASE("the fixed cost model is affine in prefill and decode tokens") {
    FixedBatchCostModel m(2_ms, 10_us, 100_us);
    BatchWork w = prefill(100, 1);
    w.decode_requests = 4;
    w.decode_tokens_per_request = 2;
    CHECK(m.iteration_time(w) == 2_ms + 10_us * 100 + 100_us * 8);
    CHECK(m.iteration_time(BatchWork{}) == Time::zero());
}

TEST_CASE("execution-level decode steps grow with batch size and context") {
    auto m = llama_8b_tp(1);
    const Time small = m.iteration_time(decode(1, 1000));
    const Time batch = m.iteration_time(decode(64, 1000));
    const Time longer = m.iteration_time(decode(64, 16000));
    CHECK(small > Time::zero());
    CHECK(batch >= small);
    CHECK(longer > batch);
    // A decode step of one request cannot beat reading the weights once from HBM.
    const double weights_bytes = 8.0e9 * 2;  // Llama 3 8B in BF16, about 8B parameters
    CHECK(small.seconds() > weights_bytes / 3.35e12 * 0.9);
}

TEST_CASE("execution-level prefill time grows with the tokens and TP adds communication") {
    auto tp1 = llama_8b_tp(1);
    auto tp8 = llama_8b_tp(8);
    CHECK(tp1.iteration_time(prefill(8192, 4)) > tp1.iteration_time(prefill(1024, 1)));
    CHECK(tp8.iteration_time(prefill(8192, 4)) < tp1.iteration_time(prefill(8192, 4)));
    const auto shares = tp8.provenance()["time_shares"];
    REQUIRE(shares.contains("communication_estimate"));
    double sum = 0;
    for (const auto& [kind, share] : shares.items()) sum += share.get<double>();
    CHECK(sum == Approx(1.0));
}

TEST_CASE("overlapping communication never makes an iteration slower") {
    auto plain = llama_8b_tp(8, false);
    auto overlapped = llama_8b_tp(8, true);
    for (std::int64_t tokens : {256, 4096})
        CHECK(overlapped.iteration_time(prefill(tokens, 1)) <= plain.iteration_time(prefill(tokens, 1)));
}

TEST_CASE("the memo prices each shape bucket once") {
    auto m = llama_8b_tp(1);
    for (int i = 0; i < 10; ++i) m.iteration_time(decode(16, 2000));
    CHECK(m.distinct_shapes() == 1);
    CHECK(m.lookups() == 10);
    // Contexts within one bucket share a price; exact values up to 32 are their own buckets.
    CHECK(m.bucket(17) == 17);
    CHECK(m.bucket(2000) == m.bucket(2001));
    std::int64_t previous = 0;
    for (std::int64_t v = 1; v < 100000; v = v * 5 / 4 + 1) {
        CHECK(m.bucket(v) >= previous);
        CHECK(std::abs(static_cast<double>(m.bucket(v) - v)) <= 0.03 * static_cast<double>(v) + 1);
        previous = m.bucket(v);
    }
}

TEST_CASE("an unbalanced expert load makes MoE iterations slower, a balanced one changes nothing") {
    auto make = [](double imbalance) {
        ExecutionCostOptions o = qwen_ep8_options();
        o.expert_imbalance = imbalance;
        return qwen_ep8(o);
    };
    auto balanced = make(1.0);
    auto skewed = make(2.0);
    const BatchWork work = prefill(32768, 8);
    CHECK(skewed.iteration_time(work) > balanced.iteration_time(work));
    CHECK(make(1.0).iteration_time(work) == balanced.iteration_time(work));
}

TEST_CASE("with attention DP the busiest rank's decode requests and KV set the step") {
    auto m = qwen_ep8(qwen_ep8_options());
    const BatchWork even = decode(256, 1000);  // 32 requests of 1,000 cached tokens on each of 8 ranks
    BatchWork spread = even;
    spread.decode_rank_requests = 32;
    spread.decode_rank_kv_tokens = 32 * 1000;
    CHECK(m.iteration_time(spread) == m.iteration_time(even));
    BatchWork long_rank = spread;  // one rank holds the long requests
    long_rank.decode_rank_kv_tokens = 32 * 8000;
    CHECK(m.iteration_time(long_rank) > m.iteration_time(even));
    BatchWork crowded = spread;  // one rank holds more requests
    crowded.decode_rank_requests = 64;
    crowded.decode_rank_kv_tokens = 64 * 1000;
    CHECK(m.iteration_time(crowded) > m.iteration_time(even));
}

TEST_CASE("a pool whose imbalance changes reports every level's routing noise, weighted by the time it priced") {
    ExecutionCostOptions o = qwen_ep8_options();
    o.expert_noise = [](std::int64_t tokens) { return 1.0 + 64.0 / static_cast<double>(tokens); };
    auto kernels = std::make_shared<const KernelCostModel>(load_gpu_profile(default_kernels_dir(), "h100-sxm"));
    ImbalanceCostModels models(load_model_or_throw("qwen3-30b-a3b"), kernels, o);
    // Level 1.0 prices 256-request steps (factor 1.25), level 1.5 prices 64-request steps (factor 2).
    const Time a = models.at(1.0).iteration_time(decode(256, 1000));
    models.add_priced(1.0, a);
    const Time b = models.at(1.5).iteration_time(decode(64, 1000));
    models.add_priced(1.5, b);
    const double wa = a / (a + b), wb = b / (a + b);
    const auto p = models.provenance();
    CHECK(p["expert_imbalance_levels"].get<int>() == 2);
    CHECK(p["expert_imbalance"].get<double>() == Approx(wa * 1.0 + wb * 1.5));
    CHECK(p["routing_noise"]["mean_factor"].get<double>() == Approx(wa * 1.25 + wb * 2.0));
}

TEST_CASE("DeepEP normal kernels' SMs slow the other micro-batch's compute-bound kernels while they run") {
    ExecutionCostOptions o = qwen_ep8_options();
    o.overlap_communication = true;
    auto plain = qwen_ep8(o);
    o.communication_sms = 20;
    auto shared = qwen_ep8(o);
    const double s = 132.0 / 112.0;  // the H100's 132 SMs, 20 held
    CHECK(plain.sm_slowdown() == 1.0);
    CHECK(shared.sm_slowdown() == Approx(s));
    const Time ms = 1_ms;
    // Compute that ends while the kernels hold their SMs takes s times as long.
    CHECK(shared.overlapped_compute(10 * ms, 10 * ms, 20 * ms).seconds() == Approx(10e-3 * s));
    // Compute that outlasts them runs slowed for the held time, then at full rate.
    CHECK(shared.overlapped_compute(10 * ms, 10 * ms, 5 * ms).seconds() == Approx(5e-3 + 10e-3 - 5e-3 / s));
    // Memory-bound kernels keep the HBM's rate; nothing held, nothing slowed.
    CHECK(shared.overlapped_compute(10 * ms, Time::zero(), 5 * ms) == 10 * ms);
    CHECK(shared.overlapped_compute(10 * ms, 10 * ms, Time::zero()) == 10 * ms);
    CHECK(plain.overlapped_compute(10 * ms, 10 * ms, 5 * ms) == 10 * ms);
    // A prefill iteration (normal kernels) can only get slower; a decode step (low-latency kernels) is unchanged.
    const BatchWork work = prefill(32768, 8);
    CHECK(shared.iteration_time(work) >= plain.iteration_time(work));
    CHECK(shared.iteration_time(decode(256, 1000)) == plain.iteration_time(decode(256, 1000)));
    CHECK(shared.provenance()["communication_sms"]["sms"].get<int>() == 20);
    CHECK_FALSE(plain.provenance().contains("communication_sms"));
}

TEST_CASE("routing noise is asked for the tokens of one MoE call and scales the busiest GPU's work") {
    auto make = [](std::function<double(std::int64_t)> noise, bool overlap) {
        ExecutionCostOptions o = qwen_ep8_options();
        o.overlap_communication = overlap;
        o.expert_noise = std::move(noise);
        return qwen_ep8(o);
    };
    BatchWork decode;
    decode.decode_requests = 256;
    decode.decode_context = 1000;
    std::vector<std::int64_t> asked;
    auto quiet = make(nullptr, false);
    auto neutral = make([&](std::int64_t t) { asked.push_back(t); return 1.0; }, false);
    auto noisy = make([](std::int64_t) { return 1.3; }, false);
    CHECK(neutral.iteration_time(decode) == quiet.iteration_time(decode));
    REQUIRE(asked.size() == 1);
    CHECK(asked[0] == 256);  // 32 requests on each of 8 attention-DP ranks: one call of all 256 tokens
    CHECK(noisy.iteration_time(decode) > quiet.iteration_time(decode));
    CHECK(noisy.provenance()["routing_noise"]["mean_factor"].get<double>() == Approx(1.3));
    CHECK_FALSE(quiet.provenance().contains("routing_noise"));
    // Two micro-batches overlapping communication: each MoE call carries half the tokens.
    asked.clear();
    auto overlapped = make([&](std::int64_t t) { asked.push_back(t); return 1.0; }, true);
    overlapped.iteration_time(decode);
    REQUIRE(asked.size() == 1);
    CHECK(asked[0] == 128);
}

TEST_CASE("with attention data parallelism one long prompt costs more than the same tokens spread over ranks") {
    ExecutionBatchCostModel m = qwen_ep8(qwen_ep8_options());
    BatchWork spread = prefill(8192, 8);
    spread.prefill_max_chunk = 1024;
    BatchWork single = prefill(8192, 1);
    single.prefill_max_chunk = 8192;
    CHECK(m.iteration_time(single) > m.iteration_time(spread));
}

namespace {

// EP call times that record what they were asked: low-latency calls take 100 us, normal ones 300 us,
// beyond 64 tokens per rank the answers are marked extrapolated.
class RecordingExpertComm : public ExpertCommTimes {
public:
    struct Call {
        bool low_latency;
        bool dispatch;
        double tokens;
    };
    ExpertCallTime call(bool low_latency, bool dispatch, double tokens) const override {
        calls.push_back({low_latency, dispatch, tokens});
        return {low_latency ? 100_us : 300_us, tokens > 64};
    }
    double low_latency_max_tokens_per_rank() const override { return 128; }
    nlohmann::ordered_json describe() const override { return nlohmann::ordered_json::array(); }
    mutable std::vector<Call> calls;
};

ExecutionBatchCostModel qwen_ep8(std::shared_ptr<const ExpertCommTimes> comm, ExpertCommKernels kernels,
                                 double imbalance = 1.0) {
    ExecutionCostOptions o = qwen_ep8_options();
    o.expert_imbalance = imbalance;
    o.expert_comm = std::move(comm);
    o.expert_comm_kernels = kernels;
    o.expert_comm_reason = "test";
    return qwen_ep8(o);
}

}  // namespace

TEST_CASE("EP calls priced by the network model: auto kernels by iteration, the mean tokens per rank, the imbalance") {
    auto comm = std::make_shared<RecordingExpertComm>();
    auto m = qwen_ep8(comm, ExpertCommKernels::automatic);
    const int moe_layers = load_model_or_throw("qwen3-30b-a3b").moe_layer_count();
    // Decode steps only: low-latency calls, one dispatch and one combine per MoE layer structure, at the
    // mean tokens per rank (64 requests over 8 attention-DP ranks).
    const Time decode_time = m.iteration_time(decode(64, 1000));
    REQUIRE(comm->calls.size() == 2);
    for (const auto& c : comm->calls) {
        CHECK(c.low_latency);
        CHECK(c.tokens == 8);
    }
    CHECK(comm->calls[0].dispatch != comm->calls[1].dispatch);
    // An iteration with a prefill chunk: normal kernels.
    comm->calls.clear();
    BatchWork mixed = decode(64, 1000);
    mixed.prefill_tokens = 512;
    mixed.prefill_sequences = 1;
    mixed.prefill_max_chunk = 512;
    m.iteration_time(mixed);
    REQUIRE(comm->calls.size() == 2);
    for (const auto& c : comm->calls) CHECK_FALSE(c.low_latency);
    // A decode batch beyond the low-latency range (128 tokens per rank here): normal kernels.
    comm->calls.clear();
    m.iteration_time(decode(8 * 200, 1000));
    REQUIRE(comm->calls.size() == 2);
    for (const auto& c : comm->calls) CHECK_FALSE(c.low_latency);
    const auto ep = m.provenance()["ep_communication"];
    CHECK(ep["method"] == "network");
    CHECK(ep["kernels"] == "auto");
    CHECK(ep["shapes_low_latency"] == 1);
    CHECK(ep["shapes_normal"] == 2);
    CHECK(ep["shapes_low_latency_over_range_priced_normal"] == 1);
    CHECK(ep["shapes_extrapolated"] == 2);  // 200 and 72 tokens per rank are beyond the stub's 64
    CHECK(m.provenance()["time_shares"].contains("ep_communication_network"));
    CHECK_THAT(m.provenance()["method"].get<std::string>(), Catch::Matchers::Contains("flow-level network model"));

    // The busiest GPU's imbalance scales the calls: 2 x (100 + 100) us more per MoE layer without overlap.
    auto skewed_comm = std::make_shared<RecordingExpertComm>();
    auto skewed = qwen_ep8(skewed_comm, ExpertCommKernels::automatic, 2.0);
    auto plain = qwen_ep8(std::make_shared<RecordingExpertComm>(), ExpertCommKernels::automatic, 1.0);
    BatchWork small = decode(8, 1000);
    const Time skewed_time = skewed.iteration_time(small);
    const Time plain_time = plain.iteration_time(small);
    // The routed-expert GEMMs also see the imbalance; the calls alone add 200 us per MoE layer.
    CHECK(skewed_time - plain_time >= 200_us * moe_layers);
    (void)decode_time;

    // Decode instances use low-latency kernels whatever the iteration, prefill instances normal ones.
    auto decode_comm = std::make_shared<RecordingExpertComm>();
    qwen_ep8(decode_comm, ExpertCommKernels::low_latency).iteration_time(mixed);
    for (const auto& c : decode_comm->calls) CHECK(c.low_latency);
    auto prefill_comm = std::make_shared<RecordingExpertComm>();
    qwen_ep8(prefill_comm, ExpertCommKernels::normal).iteration_time(decode(64, 1000));
    for (const auto& c : prefill_comm->calls) CHECK_FALSE(c.low_latency);
}

TEST_CASE("without the network model EP calls are estimated, and provenance says so") {
    auto m = qwen_ep8(nullptr, ExpertCommKernels::automatic);
    m.iteration_time(decode(64, 1000));
    const auto p = m.provenance();
    CHECK(p["ep_communication"]["method"] == "estimate");
    CHECK(p["time_shares"].contains("communication_estimate"));
    CHECK_FALSE(p["time_shares"].contains("ep_communication_network"));
}

TEST_CASE("TP collectives are priced over their own group: attention's inside a host, the layout's tp across hosts") {
    ExecutionCostOptions o;
    o.layout.tp = 16;
    o.layout.attn_dp = 2;  // attention TP 8: one host
    o.links.nvlink = 400_GBps;
    o.links.nvlink_latency = 2_us;
    o.links.network = 50_GBps;
    o.links.network_latency = 5_us;
    o.links.gpus_per_host = 8;
    auto kernels = std::make_shared<const KernelCostModel>(load_gpu_profile(default_kernels_dir(), "h100-sxm"));
    ExecutionBatchCostModel m(load_model_or_throw("llama3-8b"), kernels, o);
    Operator op;
    op.kind = OpKind::collective;
    op.comm = CommKind::tp_all_reduce;
    op.comm_bytes = Bytes(8e6);
    op.group = 8;
    // Ring all-reduce over 8 GPUs on NVLink: 2 x 7/8 of the buffer, 14 steps of latency.
    CHECK(m.communication_time(op).us() == Approx(2 * 7.0 / 8 * 8e6 / 400e9 * 1e6 + 14 * 2));
    op.group = 0;  // the layout's 16 GPUs span two hosts: the network
    CHECK(m.communication_time(op).us() == Approx(2 * 15.0 / 16 * 8e6 / 50e9 * 1e6 + 30 * 5));
}
