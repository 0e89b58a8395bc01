// The request-level simulator with a fixed-time cost model: conservation, Little's law, the KV cache
// limit, preemption, disaggregation, speculative decoding, prefix caches and determinism.
#include "sim/serving/serving_simulator.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/serving/network_kv_transfer_channel.hpp"
#include "tests/serving/serving_test_support.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <functional>
#include <map>
#include <memory>
#include <set>

using namespace clustersim;
using namespace clustersim::literals;

namespace {

SyntheticWorkloadSpec workload(double rate, std::int64_t requests) {
    SyntheticWorkloadSpec w;
    w.arrival.rate_per_s = rate;
    w.input.kind = LengthKind::lognormal;
    w.input.median = 600;
    w.input.sigma = 0.8;
    w.input.min = 8;
    w.input.max = 4000;
    w.output.kind = LengthKind::uniform;
    w.output.min = 1;
    w.output.max = 200;
    w.requests = requests;
    w.prefix_hit_ratio = 0.25;
    return w;
}

PoolSpec pool(std::string name, InstanceRole role, int instances, std::int64_t kv_tokens) {
    PoolSpec p;
    p.name = std::move(name);
    p.role = role;
    p.instances = instances;
    p.instance.gpus = 8;
    p.instance.max_batch = 64;
    p.instance.token_budget = 2048;
    p.instance.kv_capacity_tokens = kv_tokens;
    p.instance.block_tokens = 16;
    // A step costs 5 ms plus 20 us per prefill token and 50 us per decode token.
    p.instance.cost = std::make_shared<FixedBatchCostModel>(5_ms, 20_us, 50_us);
    return p;
}

ServingConfig colocated(int instances, std::int64_t kv_tokens) {
    ServingConfig c;
    c.pools.push_back(pool("colocated", InstanceRole::colocated, instances, kv_tokens));
    return c;
}

ServingConfig disaggregated(std::int64_t decode_kv_tokens) {
    ServingConfig c;
    c.pools.push_back(pool("prefill", InstanceRole::prefill, 1, 200'000));
    c.pools.push_back(pool("decode", InstanceRole::decode, 2, decode_kv_tokens));
    c.pools[1].router = RouterKind::least_loaded;
    c.kv_transfer.bandwidth = 50_GBps;
    c.kv_transfer.latency = 10_us;
    c.kv_transfer.bytes_per_token = 320_KiB;
    return c;
}

struct RunResult {
    ServingSummary summary;
    std::vector<RequestRecord> records;
    std::vector<IterationRecord> iterations;
    std::int64_t worst_kv_excess = 0;
    std::int64_t left_in_system = 0;
};

// Makes the KV transfer channel of one run (none: the simulator's FIFO of config.kv_transfer).
using ChannelFactory = std::function<std::unique_ptr<KvTransferChannel>(Simulator&)>;

RunResult run_source(const ServingConfig& config, RequestSource& source, std::uint64_t seed = 1,
                     const ChannelFactory& make_channel = {}) {
    Simulator sim(seed);
    const auto channel = make_channel ? make_channel(sim) : nullptr;
    ServingSimulator serving(sim, config, source, channel.get());
    RunResult r;
    serving.on_request_done().subscribe([&](const RequestRecord& rec) { r.records.push_back(rec); });
    serving.on_iteration().subscribe([&](const IterationRecord& it) { r.iterations.push_back(it); });
    serving.start();
    sim.run();
    r.summary = serving.summary();
    r.worst_kv_excess = serving.worst_kv_excess_blocks();
    r.left_in_system = serving.in_system();
    return r;
}

RunResult run(const ServingConfig& config, const SyntheticWorkloadSpec& w, std::uint64_t seed = 1,
              const ChannelFactory& make_channel = {}) {
    SyntheticRequestSource source(w, seed);
    return run_source(config, source, seed, make_channel);
}

RunResult run(const ServingConfig& config, std::vector<Request> requests) {
    VectorRequestSource source(std::move(requests));
    return run_source(config, source);
}

// Every request left exactly once, completed ones with exactly the tokens they asked for.
void check_conservation(const RunResult& r, std::int64_t arrived) {
    CHECK(r.summary.arrived == arrived);
    CHECK(r.left_in_system == 0);
    CHECK(static_cast<std::int64_t>(r.records.size()) == arrived);
    CHECK(r.summary.completed + r.summary.rejected == arrived);
    std::set<std::int64_t> ids;
    std::int64_t requested = 0, generated = 0, emitted_in_iterations = 0;
    for (const auto& rec : r.records) {
        CHECK(ids.insert(rec.request.id).second);
        if (rec.status == RequestStatus::completed) {
            CHECK(rec.generated == rec.request.output_tokens);
            CHECK(rec.first_token >= rec.request.arrival);
            CHECK(rec.finished >= rec.first_token);
            requested += rec.request.output_tokens;
            generated += rec.generated;
        }
    }
    for (const auto& it : r.iterations) emitted_in_iterations += it.tokens_emitted;
    CHECK(generated == requested);
    CHECK(emitted_in_iterations == requested);  // no token produced twice, none lost
    CHECK(r.summary.emitted_output_tokens == requested);
}

std::string fingerprint(const RunResult& r) {
    std::string s;
    for (const auto& rec : r.records)
        s += fmt::format("{} {} {} {} {}\n", rec.request.id, rec.first_token.ps(), rec.finished.ps(), rec.generated,
                         rec.preemptions);
    return s;
}

}  // namespace

TEST_CASE("every arrived request completes with exactly its output tokens") {
    const auto r = run(colocated(2, 400'000), workload(4, 400));
    check_conservation(r, 400);
    CHECK(r.summary.rejected == 0);
    CHECK(r.summary.completed == 400);
}

TEST_CASE("a small KV cache forces preemptions but never overflows, and nothing is lost") {
    // 12,000 tokens of KV per instance against lognormal prompts of median 600 at a heavy load.
    const auto r = run(colocated(1, 12'000), workload(20, 600));
    check_conservation(r, 600);
    CHECK(r.summary.preemptions > 0);
    CHECK(r.worst_kv_excess <= 0);
    for (const auto& it : r.iterations) REQUIRE(it.kv_used_blocks <= it.kv_capacity_blocks);
}

TEST_CASE("a request that cannot fit in an empty KV cache is rejected with a reason") {
    auto w = workload(2, 50);
    w.input.kind = LengthKind::fixed;
    w.input.value = 5000;
    const auto r = run(colocated(1, 4096), w);
    check_conservation(r, 50);
    CHECK(r.summary.rejected == 50);
    for (const auto& rec : r.records) CHECK(rec.reject_reason.find("KV blocks") != std::string::npos);
}

TEST_CASE("Little's law: mean requests in system equals arrival rate times mean time in system") {
    // A long stable run: 4 requests/s against a deployment that is far from saturated.
    const double rate = 4;
    const auto r = run(colocated(2, 400'000), workload(rate, 20'000), 3);
    REQUIRE(r.summary.completed == 20'000);
    const double lambda = rate;  // the configured rate, not the observed one
    // Sampling error of the arrival rate over 20,000 arrivals is about 1/sqrt(20000) = 0.7%.
    CHECK(r.summary.mean_requests_in_system == Approx(lambda * r.summary.mean_time_in_system_s).epsilon(0.03));
}

TEST_CASE("the same seed gives identical results, another seed different ones") {
    const auto config = colocated(2, 50'000);
    const auto a = run(config, workload(10, 500), 5);
    const auto b = run(config, workload(10, 500), 5);
    const auto c = run(config, workload(10, 500), 6);
    CHECK(fingerprint(a) == fingerprint(b));
    CHECK(fingerprint(a) != fingerprint(c));
}

TEST_CASE("prefix-cache hits skip prefill compute") {
    auto w = workload(2, 200);
    w.prefix_hit_ratio = 0.5;
    const auto r = run(colocated(1, 400'000), w);
    REQUIRE(r.summary.preemptions == 0);
    std::int64_t computed = 0, expected = 0;
    for (const auto& it : r.iterations) computed += it.prefill_tokens;
    for (const auto& rec : r.records) expected += rec.request.input_tokens - rec.request.cached_tokens;
    CHECK(computed == expected);
}

TEST_CASE("disaggregated pools move every request's KV cache and lose nothing") {
    const auto r = run(disaggregated(30'000), workload(10, 500), 2);
    check_conservation(r, 500);
    for (const auto& rec : r.records) {
        if (rec.request.output_tokens == 1) {
            CHECK(rec.decode_instance == -1);  // finished by the prefill instance
            continue;
        }
        CHECK(rec.decode_instance >= 1);
        CHECK(rec.transfer_end > rec.transfer_start);
        CHECK(rec.transfer_start >= rec.first_token);  // the prefill produced the first token
    }
    CHECK(r.worst_kv_excess <= 0);
    // Decode instances run decode steps only, unless they recompute a preempted request.
    for (const auto& it : r.iterations)
        if (it.instance == 0) CHECK(it.decode_requests == 0);
}

TEST_CASE("disaggregated pools whose KV moves as network flows lose nothing, each transfer at most NIC speed") {
    // The prefill instance (8 GPUs, DP8) on host 0, the decode instances (DP2 x TP4) on hosts 1 and 2.
    Diagnostics diagnostics;
    TopologyOverrides hosts;
    hosts.hosts = 3;
    const auto topology =
        load_topology(std::string(CLUSTERSIM_SOURCE_DIR) + "/topologies/h100-ib-rail.yaml", diagnostics, hosts);
    REQUIRE(topology);
    const ChannelFactory network = [&](Simulator& sim) -> std::unique_ptr<KvTransferChannel> {
        return std::make_unique<NetworkKvTransferChannel>(sim, *topology, place_consecutively({8, 8, 8}, {8, 2, 2}));
    };
    ServingConfig config = disaggregated(30'000);
    config.kv_transfer.bandwidth = Bandwidth{};  // unused: the network channel moves the KV
    const auto r = run(config, workload(10, 500), 2, network);
    check_conservation(r, 500);
    CHECK(r.worst_kv_excess <= 0);
    // Each of the decode group's 4 ranks receives a quarter over its own 400 Gb/s NIC.
    const Bandwidth group = 400_Gbps * 4.0;
    for (const auto& rec : r.records) {
        if (rec.decode_instance < 0) continue;
        const Bytes bytes = config.kv_transfer.bytes_per_token * static_cast<double>(rec.request.input_tokens + 1);
        CHECK(rec.transfer_start >= rec.first_token);
        CHECK(rec.transfer_end - rec.transfer_start >= bytes / group);
    }
    CHECK(r.summary.kv_transfers > 0);
    CHECK(r.summary.kv_transfer_ms_p99 >= r.summary.kv_transfer_ms_mean);
}

TEST_CASE("MTP speculative decoding with full acceptance emits two tokens per decode step") {
    auto w = workload(2, 200);
    w.output.min = 50;
    auto plain_config = colocated(1, 400'000);
    auto mtp_config = plain_config;
    mtp_config.speculative.depth = 1;
    mtp_config.speculative.acceptance = 1.0;
    const auto plain = run(plain_config, w);
    const auto mtp = run(mtp_config, w);
    check_conservation(mtp, 200);
    std::int64_t plain_steps = 0, mtp_steps = 0;
    for (const auto& it : plain.iterations) plain_steps += it.decode_requests;
    for (const auto& it : mtp.iterations) mtp_steps += it.decode_requests;
    // Each request needs output - 1 decode tokens: output - 1 steps plainly, ceil((output - 1) / 2) with MTP.
    std::int64_t expected_plain = 0, expected_mtp = 0;
    for (const auto& rec : plain.records) {
        expected_plain += rec.request.output_tokens - 1;
        expected_mtp += rec.request.output_tokens / 2;
    }
    CHECK(plain_steps == expected_plain);
    CHECK(mtp_steps == expected_mtp);
}

TEST_CASE("least-loaded routing spreads requests over the instances") {
    auto config = colocated(4, 100'000);
    config.pools[0].router = RouterKind::least_loaded;
    const auto r = run(config, workload(8, 400));
    std::map<int, int> per_instance;
    for (const auto& rec : r.records) ++per_instance[rec.prefill_instance];
    REQUIRE(per_instance.size() == 4);
    for (const auto& [instance, n] : per_instance) CHECK(n > 50);
}

TEST_CASE("a disaggregated deployment whose decode KV cache is nearly full still completes every request") {
    // A decode cache of 12,000 tokens per instance under heavy load: decode steps preempt, recompute
    // on the decode instance, and KV transfers wait for blocks; nothing may be stranded.
    auto w = workload(40, 800);
    w.output.min = 100;
    w.output.max = 400;
    const auto r = run(disaggregated(12'000), w, 9);
    check_conservation(r, 800);
    CHECK(r.summary.preemptions > 0);
    CHECK(r.worst_kv_excess <= 0);
}

TEST_CASE("decode room kept per held request stops KV transfers from forcing preemptions") {
    // The nearly-full decode cache above preempts because transfers take the blocks running requests
    // need to grow. Keeping 512 tokens of room per held request before a transfer starts (SGLang's
    // pre-allocation rule) covers every request's growth here (at most 400 output tokens), so none is
    // preempted and every request still completes.
    auto w = workload(40, 800);
    w.output.min = 100;
    w.output.max = 400;
    const auto free_for_all = run(disaggregated(12'000), w, 9);
    auto config = disaggregated(12'000);
    config.pools[1].instance.reserved_decode_tokens = 512;
    const auto reserved = run(config, w, 9);
    check_conservation(reserved, 800);
    CHECK(free_for_all.summary.preemptions > 0);
    CHECK(reserved.summary.preemptions == 0);
    CHECK(reserved.worst_kv_excess <= 0);
}

TEST_CASE("tight KV caches with MTP drafts strand no request, over many seeds") {
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
        INFO("seed " << seed);
        auto w = workload(30, 300);
        w.output.min = 20;
        auto config = seed % 2 == 0 ? disaggregated(9'000) : colocated(2, 9'000);
        config.speculative.depth = 2;
        config.speculative.acceptance = 0.7;
        const auto r = run(config, w, seed);
        check_conservation(r, 300);
        CHECK(r.worst_kv_excess <= 0);
    }
}

TEST_CASE("decode-only iterations are priced at the next captured CUDA-graph batch size") {
    // A cost model that records the decode batch it was asked to price.
    struct Recorder : BatchCostModel {
        std::vector<std::int64_t> decode_batches;
        Time iteration_time(const BatchWork& w) override {
            if (w.prefill_tokens == 0) decode_batches.push_back(w.decode_requests);
            return 1_ms;
        }
        nlohmann::ordered_json provenance() const override { return {}; }
    };
    auto recorder = std::make_shared<Recorder>();
    auto config = colocated(1, 400'000);
    config.pools[0].instance.cost = recorder;
    config.pools[0].instance.cuda_graph_batch_sizes = {1, 2, 4, 8, 16};
    const auto r = run(config, workload(20, 300));
    check_conservation(r, 300);
    REQUIRE(!recorder->decode_batches.empty());
    for (auto b : recorder->decode_batches) CHECK((b <= 2 || b == 4 || b == 8 || b == 16 || b > 16));
    bool padded = false;
    for (const auto& it : r.iterations)
        if (it.prefill_tokens == 0 && (it.decode_requests == 3 || (it.decode_requests > 4 && it.decode_requests < 8)))
            padded = true;
    CHECK(padded);
}

TEST_CASE("with attention DP requests are dealt to the ranks in turn and the busiest rank's decode work is priced") {
    struct Recorder : BatchCostModel {
        std::vector<BatchWork> decode_steps;
        Time iteration_time(const BatchWork& w) override {
            if (w.prefill_tokens == 0) decode_steps.push_back(w);
            return 1_ms;
        }
        nlohmann::ordered_json provenance() const override { return {}; }
    };
    auto recorder = std::make_shared<Recorder>();
    auto config = colocated(1, 400'000);
    config.pools[0].instance.cost = recorder;
    config.pools[0].instance.attention_dp = 2;
    // Long and short prompts alternate, so rank 0 holds the two long ones.
    std::vector<Request> requests;
    for (int i = 0; i < 4; ++i) {
        Request q;
        q.id = i;
        q.input_tokens = i % 2 == 0 ? 1000 : 10;
        q.output_tokens = 50;
        requests.push_back(q);
    }
    const auto r = run(config, requests);
    check_conservation(r, 4);
    int full = 0;
    for (const BatchWork& w : recorder->decode_steps) {
        if (w.decode_requests != 4) continue;
        ++full;
        CHECK(w.decode_rank_requests == 2);
        // Both long prompts on one rank, with what they generated so far (at most 50 tokens each).
        CHECK(w.decode_rank_kv_tokens > 2000);
        CHECK(w.decode_rank_kv_tokens <= 2100);
        // An even spread at the mean KV length would price about half of that.
        CHECK(w.decode_rank_kv_tokens > 2 * w.decode_context + 900);
    }
    CHECK(full > 10);
}

TEST_CASE("multi-turn sessions send every turn, each follow-up reusing the conversation as cached prefix") {
    auto w = workload(2, 100);
    auto config = colocated(2, 400'000);
    SessionSpec sessions;
    sessions.turns.kind = LengthKind::uniform;
    sessions.turns.min = 1;
    sessions.turns.max = 4;
    sessions.think_time_mean = 5_s;
    sessions.new_input.kind = LengthKind::fixed;
    sessions.new_input.value = 50;
    sessions.output.kind = LengthKind::fixed;
    sessions.output.value = 20;
    config.sessions = sessions;
    const auto r = run(config, w, 4);
    std::map<std::int64_t, std::vector<RequestRecord>> by_session;
    for (const auto& rec : r.records) by_session[rec.request.session].push_back(rec);
    CHECK(by_session.size() == 100);
    std::int64_t expected_arrivals = 0;
    for (auto& [session, turns] : by_session) {
        std::sort(turns.begin(), turns.end(),
                  [](const auto& a, const auto& b) { return a.request.turn < b.request.turn; });
        expected_arrivals += turns.front().request.turns;
        REQUIRE(static_cast<int>(turns.size()) == turns.front().request.turns);
        for (std::size_t t = 1; t < turns.size(); ++t) {
            const auto& prev = turns[t - 1].request;
            const auto& cur = turns[t].request;
            CHECK(cur.turn == static_cast<int>(t));
            CHECK(cur.cached_tokens == prev.input_tokens + prev.output_tokens);
            CHECK(cur.input_tokens == cur.cached_tokens + 50);
            CHECK(cur.arrival >= turns[t - 1].finished);  // the next turn follows the reply
        }
    }
    CHECK(expected_arrivals > 100);
    check_conservation(r, expected_arrivals);
}

// Sessions of four turns, 2 s of thought between them, 50 new tokens and 20 output tokens a turn.
static SessionSpec four_turns() {
    SessionSpec sessions;
    sessions.turns.kind = LengthKind::fixed;
    sessions.turns.value = 4;
    sessions.think_time_mean = 2_s;
    sessions.new_input.kind = LengthKind::fixed;
    sessions.new_input.value = 50;
    sessions.output.kind = LengthKind::fixed;
    sessions.output.value = 20;
    return sessions;
}

TEST_CASE("with per-instance session caches a KV-aware router sends follow-ups back to their prefix") {
    auto run_with = [](RouterKind router, bool per_instance) {
        auto w = workload(4, 200);
        auto config = colocated(4, 400'000);
        config.pools[0].router = router;
        SessionSpec sessions = four_turns();
        sessions.per_instance_cache = per_instance;
        config.sessions = sessions;
        return run(config, w, 7);
    };
    auto followup_hits = [](const auto& r, bool check_instance) {
        std::map<std::int64_t, const RequestRecord*> previous;  // session -> its latest turn so far
        std::vector<const RequestRecord*> ordered;
        for (const auto& rec : r.records) ordered.push_back(&rec);
        std::sort(ordered.begin(), ordered.end(), [](const auto* a, const auto* b) {
            return a->request.session != b->request.session ? a->request.session < b->request.session
                                                            : a->request.turn < b->request.turn;
        });
        double cached = 0, context = 0;
        std::map<std::pair<std::int64_t, int>, std::int64_t> held;  // (session, instance) -> tokens
        for (const auto* rec : ordered) {
            const std::pair<std::int64_t, int> key{rec->request.session, rec->prefill_instance};
            if (rec->request.turn > 0) {
                const auto* prev = previous.at(rec->request.session);
                const std::int64_t conversation = prev->request.input_tokens + prev->request.output_tokens;
                context += static_cast<double>(conversation);
                cached += static_cast<double>(rec->request.cached_tokens);
                // A follow-up hits what its instance holds of the conversation: all but the last
                // token's KV of the latest turn it served there, nothing if none.
                if (check_instance) CHECK(rec->request.cached_tokens == (held.count(key) ? held[key] : 0));
            }
            held[key] = rec->request.input_tokens + rec->generated - 1;
            previous[rec->request.session] = rec;
        }
        return cached / context;
    };
    // Shared cache: every follow-up hits its whole conversation, whatever the router.
    CHECK(followup_hits(run_with(RouterKind::round_robin, false), false) == 1.0);
    // Per instance: round-robin over 4 instances returns to the same one about a quarter of the time;
    // the KV-aware router always does.
    const auto rr = run_with(RouterKind::round_robin, true);
    const auto kv = run_with(RouterKind::kv_aware, true);
    const double rr_hits = followup_hits(rr, true);
    const double kv_hits = followup_hits(kv, true);
    CHECK(rr_hits < 0.5);
    CHECK(kv_hits > 0.99);
    for (const auto& rec : kv.records) CHECK(rec.request.cached_tokens <= rec.request.input_tokens);
    check_conservation(kv, 800);
    // Less prefill compute: the KV-aware run finishes its follow-ups sooner.
    double rr_ttft = 0, kv_ttft = 0;
    for (const auto& rec : rr.records) rr_ttft += rec.ttft_s();
    for (const auto& rec : kv.records) kv_ttft += rec.ttft_s();
    CHECK(kv_ttft < rr_ttft);
}

TEST_CASE("a prefill pool alone ends each request at its first token, and matches the whole deployment's TTFT") {
    ServingConfig alone;
    alone.pools.push_back(disaggregated(30'000).pools[0]);
    const auto a = run(alone, workload(10, 500), 2);
    const auto whole = run(disaggregated(30'000), workload(10, 500), 2);
    REQUIRE(a.summary.completed == 500);
    CHECK(a.left_in_system == 0);
    for (const auto& rec : a.records) {
        CHECK(rec.generated == 1);
        CHECK(rec.decode_instance == -1);
    }
    // The prefill instance sees the same requests in both runs: the first tokens come at the same times.
    std::map<std::int64_t, Time> first;
    for (const auto& rec : whole.records) first[rec.request.id] = rec.first_token;
    for (const auto& rec : a.records) CHECK(rec.first_token == first.at(rec.request.id));
    CHECK(a.summary.output_tokens_per_s_per_node_decode == 0);
    CHECK(a.summary.input_tokens_per_s_per_node_prefill > 0);
}

TEST_CASE("a decode pool alone receives requests with their first token and KV, and produces the rest once") {
    ServingConfig alone = disaggregated(30'000);
    alone.pools.erase(alone.pools.begin());
    const auto r = run(alone, workload(10, 500), 3);
    REQUIRE(r.summary.completed == 500);
    CHECK(r.left_in_system == 0);
    std::int64_t requested = 0, emitted_in_iterations = 0;
    for (const auto& rec : r.records) {
        CHECK(rec.generated == rec.request.output_tokens);
        requested += rec.request.output_tokens;
    }
    for (const auto& it : r.iterations) emitted_in_iterations += it.tokens_emitted;
    // The first tokens were made by prefill outside the simulation; each other token once.
    CHECK(emitted_in_iterations == requested - 500);
    CHECK(r.summary.emitted_output_tokens == requested);
    std::int64_t transfers = 0;
    for (const auto& rec : r.records) {
        CHECK(rec.first_token == rec.request.arrival);
        CHECK(rec.prefill_instance == -1);
        if (rec.request.output_tokens > 1) {
            ++transfers;
            CHECK(rec.transfer_start >= rec.request.arrival);
            CHECK(rec.transfer_end > rec.transfer_start);
        }
    }
    CHECK(transfers > 0);
    CHECK(r.worst_kv_excess <= 0);
    CHECK(r.summary.input_tokens_per_s_per_node_prefill == 0);
}

TEST_CASE("a run stops early, reported overloaded, once too many requests are in the system") {
    ServingConfig c = colocated(1, 200'000);
    c.max_in_system = 20;
    auto w = workload(400, 2000);  // far beyond what one instance serves
    const auto r = run(c, w, 1);
    CHECK(r.summary.overloaded);
    CHECK(r.summary.arrived < 2000);
    CHECK(r.left_in_system == 21);
    c.max_in_system = 0;
    w = workload(10, 100);
    CHECK_FALSE(run(c, w, 1).summary.overloaded);
}

// ---- prefix caches with a capacity --------------------------------------------------------------

namespace {

using clustersim::serving_testing::TempFile;

// A Mooncake-style trace (JSONL, 512-token blocks): each request reads one of `documents` shared
// prefixes of `shared` blocks and adds `tail` private blocks, one request every `spacing_ms`.
std::string mooncake_trace(int requests, int documents, int shared, int tail, double spacing_ms) {
    RngStream rng(5, "mooncake_trace");
    std::string text;
    std::int64_t next_private = 1'000'000;
    for (int i = 0; i < requests; ++i) {
        const auto document = static_cast<std::int64_t>(rng.uniform_int(static_cast<std::uint64_t>(documents)));
        std::string ids;
        for (int b = 0; b < shared; ++b) ids += fmt::format("{}{}", ids.empty() ? "" : ", ", document * 1000 + b);
        for (int b = 0; b < tail; ++b) ids += fmt::format(", {}", next_private++);
        text += fmt::format(R"({{"timestamp": {}, "input_length": {}, "output_length": 10, "hash_ids": [{}]}})",
                            i * spacing_ms, (shared + tail) * 512 - 100, ids) +
                "\n";
    }
    return text;
}

std::vector<Request> read_trace(const std::string& text, TraceHashIds hash_ids) {
    TempFile f("prefix-cache-trace.jsonl", text);
    Diagnostics d;
    auto requests = read_mooncake_trace(f.path(), 512, d, hash_ids);
    REQUIRE(d.empty());
    return requests;
}

PrefixCacheSpec prefix_cache(std::int64_t capacity_tokens, bool shared, std::int64_t block_tokens = 512) {
    PrefixCacheSpec c;
    c.capacity_tokens = capacity_tokens;
    c.block_tokens = block_tokens;
    c.shared = shared;
    c.bytes_per_token = 320_KiB;
    return c;
}

// Follow-up turns of a session run: their cached tokens over what their instance held of the
// conversation in whole blocks (no eviction: equal), checking each against it when `exact`. What an
// instance holds is all but the last token's KV of the latest turn it served (today's session model).
double followup_hit_share(const RunResult& r, std::int64_t block_tokens, bool shared, bool exact) {
    std::vector<const RequestRecord*> ordered;
    for (const auto& rec : r.records) ordered.push_back(&rec);
    std::sort(ordered.begin(), ordered.end(), [](const auto* a, const auto* b) {
        return a->request.session != b->request.session ? a->request.session < b->request.session
                                                        : a->request.turn < b->request.turn;
    });
    double cached = 0, held_total = 0;
    std::map<std::pair<std::int64_t, int>, std::int64_t> held;  // (session, instance or -1) -> tokens
    for (const auto* rec : ordered) {
        const std::pair<std::int64_t, int> key{rec->request.session, shared ? -1 : rec->prefill_instance};
        if (rec->request.turn > 0) {
            const std::int64_t whole = (held.count(key) ? held[key] : 0) / block_tokens * block_tokens;
            cached += static_cast<double>(rec->request.cached_tokens);
            held_total += static_cast<double>(whole);
            if (exact) CHECK(rec->request.cached_tokens == whole);
        }
        held[key] = rec->request.input_tokens + rec->generated - 1;
    }
    return held_total > 0 ? cached / held_total : 0.0;
}

}  // namespace

TEST_CASE("a Mooncake trace replayed with an unbounded prefix cache gets the hits of the trace's global resolution") {
    // Requests 1 s apart: each prefill is done, its blocks cached, before the next request arrives.
    const std::string text = mooncake_trace(200, 6, 6, 2, 1000);
    const auto resolved = read_trace(text, TraceHashIds::resolve);
    const auto kept = read_trace(text, TraceHashIds::keep);
    REQUIRE(kept.front().block_hashes);
    CHECK(kept.front().block_hashes->size() == 8);
    CHECK(kept[1].cached_tokens == 0);  // left to the cache
    auto config = colocated(2, 400'000);
    config.prefix_cache = prefix_cache(std::int64_t{1} << 40, true);
    const auto r = run(config, kept);
    check_conservation(r, 200);
    std::map<std::int64_t, std::int64_t> cached;
    for (const auto& rec : r.records) cached[rec.request.id] = rec.request.cached_tokens;
    double hits = 0, prompts = 0;
    for (const auto& req : resolved) {
        CHECK(cached.at(req.id) == req.cached_tokens);
        hits += static_cast<double>(req.cached_tokens);
        prompts += static_cast<double>(req.input_tokens);
    }
    REQUIRE(r.summary.prefix_cache);
    CHECK(hits > 0);
    CHECK(r.summary.prefix_cache->hit_rate == Approx(hits / prompts));
    CHECK(r.summary.prefix_cache->evicted_blocks == 0);
}

TEST_CASE("a prefix cache smaller than the working set evicts blocks and lowers the hit rate") {
    const auto kept = read_trace(mooncake_trace(300, 6, 6, 2, 1000), TraceHashIds::keep);
    auto hit_rate = [&](std::int64_t capacity_blocks, std::int64_t* evicted) {
        auto config = colocated(2, 400'000);
        config.prefix_cache = prefix_cache(capacity_blocks * 512, true);
        const auto r = run(config, kept);
        check_conservation(r, 300);
        *evicted = r.summary.prefix_cache->evicted_blocks;
        CHECK(r.summary.prefix_cache->held_blocks <= capacity_blocks);
        return r.summary.prefix_cache->hit_rate;
    };
    std::int64_t evicted_large = 0, evicted_small = 0;
    const double large = hit_rate(10'000, &evicted_large);
    const double small = hit_rate(12, &evicted_small);  // a working set of 36 shared blocks
    CHECK(evicted_large == 0);
    CHECK(evicted_small > 0);
    CHECK(small < 0.8 * large);
}

TEST_CASE("with per-instance prefix caches a KV-aware router finds more cached prefixes than round-robin") {
    // 8 documents over 4 instances whose caches hold 16 blocks each: round-robin makes every instance
    // cache every document; the KV-aware router sends a document back where it is cached.
    const auto kept = read_trace(mooncake_trace(400, 8, 6, 2, 25), TraceHashIds::keep);
    auto run_with = [&](RouterKind router) {
        auto config = colocated(4, 400'000);
        config.pools[0].router = router;
        config.prefix_cache = prefix_cache(16 * 512, false);
        const auto r = run(config, kept);
        check_conservation(r, 400);
        return r;
    };
    const auto rr = run_with(RouterKind::round_robin);
    const auto kv = run_with(RouterKind::kv_aware);
    const double rr_hits = rr.summary.prefix_cache->hit_rate, kv_hits = kv.summary.prefix_cache->hit_rate;
    CHECK(kv_hits > 1.5 * rr_hits);
    CHECK(kv.summary.prefix_cache->evicted_blocks < rr.summary.prefix_cache->evicted_blocks);
    // Fewer prompt tokens to compute: the KV-aware run's requests see their first token sooner.
    double rr_ttft = 0, kv_ttft = 0;
    for (const auto& rec : rr.records) rr_ttft += rec.ttft_s();
    for (const auto& rec : kv.records) kv_ttft += rec.ttft_s();
    CHECK(kv_ttft < rr_ttft);
}

TEST_CASE("with a large prefix cache a session's follow-ups hit what their instance computed, in whole blocks") {
    auto run_with = [](RouterKind router, bool shared) {
        auto config = colocated(4, 400'000);
        config.pools[0].router = router;
        config.sessions = four_turns();
        config.prefix_cache = prefix_cache(10'000'000, shared, 16);
        const auto r = run(config, workload(4, 200), 7);
        check_conservation(r, 800);
        CHECK(r.summary.prefix_cache->evicted_blocks == 0);
        // First turns have no conversation before them: they keep the hit ratio's prefix.
        for (const auto& rec : r.records)
            if (rec.request.turn == 0)
                CHECK(rec.request.cached_tokens == cached_prefix(rec.request.input_tokens, 0.25));
        return r;
    };
    // As the per-instance session cache does, to the whole block: exact for every follow-up.
    CHECK(followup_hit_share(run_with(RouterKind::round_robin, false), 16, false, true) == 1.0);
    CHECK(followup_hit_share(run_with(RouterKind::kv_aware, false), 16, false, true) == 1.0);
    CHECK(followup_hit_share(run_with(RouterKind::round_robin, true), 16, true, true) == 1.0);
    // Round-robin over 4 instances comes back to the conversation about a quarter of the time, the
    // KV-aware router always.
    const auto rr = run_with(RouterKind::round_robin, false);
    const auto kv = run_with(RouterKind::kv_aware, false);
    CHECK(kv.summary.prefix_cache->hit_rate > 2 * rr.summary.prefix_cache->hit_rate);
}

TEST_CASE("a small per-instance prefix cache evicts old conversations, so their follow-ups miss") {
    auto run_with = [](std::int64_t capacity_tokens) {
        auto config = colocated(2, 400'000);
        config.pools[0].router = RouterKind::kv_aware;
        config.sessions = four_turns();
        config.prefix_cache = prefix_cache(capacity_tokens, false, 16);
        const auto r = run(config, workload(4, 200), 7);
        check_conservation(r, 800);
        return r;
    };
    const auto large = run_with(10'000'000);
    const auto small = run_with(2'000);  // about two conversations per instance
    CHECK(followup_hit_share(large, 16, false, true) == 1.0);
    CHECK(followup_hit_share(small, 16, false, false) < 0.5);
    CHECK(small.summary.prefix_cache->evicted_blocks > 0);
    CHECK(small.summary.prefix_cache->held_blocks <= 2 * 2'000 / 16);
    CHECK(small.summary.prefix_cache->hit_rate < large.summary.prefix_cache->hit_rate);
}

TEST_CASE("loading a cached prefix at the load bandwidth delays the prefill by its bytes over the bandwidth") {
    auto request = [](std::int64_t id, Time arrival, std::vector<BlockHash> blocks) {
        Request r;
        r.id = id;
        r.arrival = arrival;
        r.input_tokens = 3000;  // 6 blocks of 512, the last one partial
        r.output_tokens = 1;
        r.block_hashes = std::make_shared<const std::vector<BlockHash>>(std::move(blocks));
        return r;
    };
    // Request 1 shares 4 blocks (2,048 tokens) with request 0; requests 2 and 3 arrive together.
    const std::vector<Request> requests = {request(0, 0_s, {1, 2, 3, 4, 5, 6}), request(1, 10_s, {1, 2, 3, 4, 7, 8}),
                                           request(2, 20_s, {1, 2, 3, 4, 9, 10}),
                                           request(3, 20_s, {1, 2, 3, 4, 11, 12})};
    auto config = colocated(1, 400'000);
    config.prefix_cache = prefix_cache(100'000, false);
    const auto free = run(config, requests);
    config.prefix_cache->load_bandwidth = 10_GBps;
    const auto loaded = run(config, requests);
    check_conservation(loaded, 4);
    std::map<std::int64_t, RequestRecord> by_id, free_by_id;
    for (const auto& rec : loaded.records) by_id[rec.request.id] = rec;
    for (const auto& rec : free.records) free_by_id[rec.request.id] = rec;
    const Time load = 320_KiB * 2048.0 / 10_GBps;  // 67 ms
    const Time prefill = 5_ms + 20_us * 952;       // the 952 uncached tokens in one iteration
    for (std::int64_t id = 1; id <= 3; ++id) CHECK(by_id[id].request.cached_tokens == 2048);
    // Isolated, a hit costs nothing without a load bandwidth, and its load with one.
    CHECK(free_by_id[1].first_token - free_by_id[1].request.arrival == prefill);
    CHECK(by_id[1].prefix_load_end - by_id[1].request.arrival == load);
    CHECK(by_id[1].first_token - by_id[1].request.arrival == load + prefill);
    // Loads into one instance queue: the second of two simultaneous ones ends after both.
    CHECK(by_id[2].first_token - by_id[2].request.arrival == load + prefill);
    CHECK(by_id[3].prefix_load_end - by_id[3].request.arrival == load + load);
    CHECK(by_id[3].first_token - by_id[3].request.arrival == load + load + prefill);
    CHECK(by_id[0].prefix_load_end == Time::zero());  // nothing cached, nothing loaded
    REQUIRE(loaded.summary.prefix_cache);
    CHECK(loaded.summary.prefix_cache->loads == 3);
    CHECK(loaded.summary.prefix_cache->load_ms_mean == Approx(4.0 / 3.0 * load.ms()));
    CHECK_FALSE(free.summary.prefix_cache->loads);
}

TEST_CASE("a prefix cache on a disaggregated deployment caches prompts on the prefill instances and loses nothing") {
    auto config = disaggregated(30'000);
    config.pools[0].instances = 2;
    config.pools[0].router = RouterKind::kv_aware;
    config.sessions = four_turns();
    config.prefix_cache = prefix_cache(100'000, false, 16);
    config.prefix_cache->load_bandwidth = 20_GBps;
    const auto r = run(config, workload(4, 100), 3);
    check_conservation(r, 400);
    CHECK(r.worst_kv_excess <= 0);
    // A prefill instance holds the prompt's KV only (the decode instance computed the rest).
    std::map<std::pair<std::int64_t, int>, const RequestRecord*> turns;
    for (const auto& rec : r.records) turns[{rec.request.session, rec.request.turn}] = &rec;
    std::int64_t followups = 0;
    for (const auto& [key, rec] : turns) {
        if (key.second == 0) continue;
        ++followups;
        const auto* previous = turns.at({key.first, key.second - 1});
        CHECK(rec->request.cached_tokens <= previous->request.input_tokens / 16 * 16);
    }
    CHECK(followups == 300);
    CHECK(r.summary.prefix_cache->hit_rate > 0.5);
    CHECK(r.summary.prefix_cache->loads > 0);
}
