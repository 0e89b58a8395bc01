// ServingSimulator: the request level of serving on the event engine.
//
// Requests arrive from a RequestSource, a router sends each to an instance of the first pool
// (colocated, or prefill when disaggregated), and instances run iterations of continuous batching
// with chunked prefill: every iteration, running requests take one decode step (or 1 + MTP drafts),
// then partially prefilled and newly admitted requests share what is left of the token budget. The
// KV cache is a pool of fixed-size blocks: a request is admitted when the blocks of its whole prompt
// are free, grows one block at a time while decoding, and when a decode step finds no free block
// the most recently admitted request is preempted (its blocks freed, recomputed later, as vLLM's
// recompute preemption does). Prefix-cache hits skip the prefill compute of the cached tokens; with a
// PrefixCache (capacity, LRU eviction) they come from blocks earlier prefills left there, optionally
// loaded from a host or disk tier before the prefill starts.
// Disaggregated deployments hand a request to a decode instance when its prefill has produced the
// first token; the KV cache moves over a KvTransferChannel (a FIFO link per decode instance, or
// flows on the network model) after the decode instance has reserved blocks for it. Iteration times
// come from a BatchCostModel per instance.
#pragma once

#include "sim/core/rng_stream.hpp"
#include "sim/core/signal.hpp"
#include "sim/core/simulator.hpp"
#include "sim/serving/batch_cost_model.hpp"
#include "sim/serving/kv_transfer_channel.hpp"
#include "sim/serving/prefix_cache.hpp"
#include "sim/serving/workload.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace clustersim {

enum class InstanceRole { colocated, prefill, decode };
// kv_aware: a request goes to the instance holding the longest cached prefix of it (with per-instance
// prefix caches: of its block chain, ties to the least loaded of those; without: of its session's
// conversation); nothing cached anywhere, and in a decode pool: least loaded.
enum class RouterKind { round_robin, least_loaded, kv_aware };
const char* to_string(InstanceRole role);
const char* to_string(RouterKind router);

// One instance: a group of GPUs holding one copy of the model.
struct InstanceSpec {
    int gpus = 1;
    std::int64_t max_batch = 256;          // requests admitted (running) at once
    std::int64_t token_budget = 8192;      // tokens one iteration may process (decode tokens + prefill chunks)
    std::int64_t kv_capacity_tokens = 0;   // KV cache of the whole instance, in tokens
    std::int64_t block_tokens = 16;        // tokens per KV block (vLLM's default block size)
    // Decode instances of a disaggregated deployment: a KV transfer starts only while the blocks left after
    // it still hold this many more tokens for every request the instance holds (running, waiting, or on its
    // way), so transferred requests do not take the room running ones need to keep decoding (SGLang's
    // decode pre-allocation, num_reserved_decode_tokens). 0: transfers take any free blocks.
    std::int64_t reserved_decode_tokens = 0;
    // Attention data-parallel ranks: admitted requests are dealt to them in turn and stay there (SGLang's
    // round-robin DP attention); the busiest rank's decode work is passed to the cost model.
    int attention_dp = 1;
    std::shared_ptr<BatchCostModel> cost;  // shared by the instances of a pool (one memo)
    // Decode-only iterations run as CUDA graphs captured for these batch sizes (ascending): the batch
    // is priced padded to the next captured size. Empty, or a batch above the largest: no padding.
    std::vector<std::int64_t> cuda_graph_batch_sizes;
};

// When a pool's instances may start iterations: a pool can be held for a while, e.g. while its GPUs
// fetch expert weights after an EPLB rebalance (sim/serving/pool_expert_load.hpp). Iterations
// already running finish; an instance with work starts its next one when the hold ends.
class PoolAvailability {
public:
    virtual ~PoolAvailability() = default;
    // The earliest time at or after `now` at which an instance of the pool may start an iteration.
    virtual Time available_from(Time now) = 0;
};

struct PoolSpec {
    std::string name;  // "colocated", "prefill", "decode"
    InstanceRole role = InstanceRole::colocated;
    int instances = 1;
    InstanceSpec instance;
    RouterKind router = RouterKind::round_robin;
    std::shared_ptr<PoolAvailability> availability;  // null: never held
};

// KV transfer from a prefill instance to a decode instance.
struct KvTransferSpec {
    // The FIFO channel's (used when the simulator is given no channel of its own).
    Bandwidth bandwidth;  // of a decode instance's inbound link (all its receiving NICs together)
    Time latency;
    Bytes bytes_per_token;  // KV bytes one token adds, summed over the receiving ranks
};

// A prefix cache with a capacity on the first pool (colocated or prefill): blocks of `block_tokens`
// named by hashes (a trace's hash ids, or (session, block index) of a multi-turn conversation).
// Requests with such identities take their cached prefix from it at arrival; the others keep their
// Request::cached_tokens (a hit ratio). A prefill inserts the prompt's blocks when it completes, a
// colocated instance also the conversation's (prompt and generated tokens) when a session turn ends.
struct PrefixCacheSpec {
    std::int64_t capacity_tokens = 0;  // of each instance's cache, or of the pool's one shared cache
    std::int64_t block_tokens = 16;    // tokens per cached block
    bool shared = false;               // one cache reached by every instance of the pool
    // Hits are loaded from a host or disk tier at this rate, one FIFO per instance, before the
    // request can be admitted; none: hits are GPU-resident and free.
    std::optional<Bandwidth> load_bandwidth;
    Bytes bytes_per_token;  // KV bytes of one token on an instance (its ranks together), for loads
};

struct SpeculativeSpec {
    int depth = 0;          // MTP draft tokens per decode step (0: off)
    double acceptance = 0;  // probability each draft token is accepted, given the ones before were
};

struct ServingConfig {
    // One colocated pool, or a prefill pool then a decode pool; or one pool of a disaggregated
    // deployment alone (capacity planning sizes each pool on its own): a prefill pool alone ends a
    // request at its first token; a decode pool alone receives requests whose first token was made
    // elsewhere at their arrival time, and moves their prompt's KV in before decoding.
    std::vector<PoolSpec> pools;
    KvTransferSpec kv_transfer;
    SpeculativeSpec speculative;
    Time ttft_slo = Time::max();
    Time tpot_slo = Time::max();
    Time warmup;                                  // requests arriving earlier are left out of the statistics
    std::optional<SessionSpec> sessions;          // multi-turn sessions (off when absent)
    std::optional<PrefixCacheSpec> prefix_cache;  // off when absent: hits as the requests say
    int gpus_per_node = 8;
    // Capacity searches: the run stops as soon as more requests than this are in the system (0: never),
    // and the summary says it was overloaded.
    std::int64_t max_in_system = 0;
};

enum class RequestStatus { completed, rejected };

// What happened to one request; emitted when it leaves the system.
struct RequestRecord {
    Request request;
    RequestStatus status = RequestStatus::completed;
    std::string reject_reason;
    Time first_token;
    Time finished;
    Time transfer_start;  // disaggregated only; zero otherwise
    Time transfer_end;
    Time prefix_load_end;  // when its cached prefix was loaded (PrefixCacheSpec::load_bandwidth); zero if none
    int prefill_instance = -1;
    int decode_instance = -1;
    int preemptions = 0;
    std::int64_t generated = 0;
    double ttft_s() const { return (first_token - request.arrival).seconds(); }
    double e2e_s() const { return (finished - request.arrival).seconds(); }
    // Mean time per output token after the first; 0 for single-token requests.
    double tpot_s() const {
        return generated > 1 ? (finished - first_token).seconds() / static_cast<double>(generated - 1) : 0.0;
    }
};

struct IterationRecord {
    int instance = 0;
    Time start;
    Time duration;
    std::int64_t prefill_tokens = 0;
    std::int64_t prefill_sequences = 0;
    std::int64_t decode_requests = 0;
    std::int64_t tokens_emitted = 0;
    std::int64_t kv_used_blocks = 0;
    std::int64_t kv_capacity_blocks = 0;
    std::int64_t waiting = 0;
};

// Token and request counts accumulated by the simulator (snapshotted to form rates over a window).
struct ServingCounters {
    double input_tokens_prefilled =
        0;                            // prompt tokens (cached included) of completed prefills, prefill/colocated pools
    double output_tokens_decode = 0;  // tokens emitted by decode steps of decode/colocated pools
    double output_tokens_total = 0;   // every token emitted, first tokens included
    // Time integral of requests taking decode steps on decode/colocated pools (request-seconds):
    // with output_tokens_decode it gives the mean speed of a decoding request (Little's law).
    double decode_request_seconds = 0;
    double in_system = 0;  // requests arrived and not yet gone
    // Prompt tokens, and of them cached ones, of requests arriving at a first pool with a prefix cache.
    double prefix_prompt_tokens = 0, prefix_cached_tokens = 0;
    Time at;
};

struct PrefixCacheSummary {
    double hit_rate = 0;  // cached over prompt tokens of the requests arriving in the rate window
    double cached_tokens = 0, prompt_tokens = 0;
    std::int64_t inserted_blocks = 0, evicted_blocks = 0;  // the whole run, all caches together
    std::int64_t held_blocks = 0;                          // at the end
    // Loads of cached prefixes (load_bandwidth) of requests that arrived after the warm-up: count,
    // and time from arrival to the prefix loaded (waiting for the instance's earlier loads included).
    std::int64_t loads = 0;
    double load_ms_mean = 0, load_ms_p99 = 0;
};

struct ServingSummary {
    std::int64_t arrived = 0;
    // Arrivals at or after the warm-up (follow-up turns included): the requests the statistics are
    // about. 0: nothing was measured, and the latency and rate metrics mean nothing.
    std::int64_t measured = 0;
    Time last_arrival;  // of any request (0 when none arrived)
    std::int64_t completed = 0;
    std::int64_t rejected = 0;
    std::int64_t preemptions = 0;
    std::int64_t requested_output_tokens = 0;  // of completed requests
    std::int64_t emitted_output_tokens = 0;
    Time end;                       // when the last request left
    Time window_start, window_end;  // over which rates are measured
    double ttft_ms_p50 = 0, ttft_ms_p90 = 0, ttft_ms_p99 = 0;
    double tpot_ms_p50 = 0, tpot_ms_p90 = 0, tpot_ms_p99 = 0;
    double e2e_s_p50 = 0, e2e_s_p90 = 0, e2e_s_p99 = 0;
    double output_tokens_per_s_per_request_mean = 0;
    // Decode tokens over the window / request-seconds spent in decode steps over the window: the
    // speed of a decoding request while the load is on (unlike the mean of 1/TPOT, no request that
    // decodes in the drain after the last arrival counts).
    double output_tokens_per_s_per_decoding_request = 0;
    // Requests in the system at the window's end minus at its start, per second: about 0 in a steady
    // state, the excess of arrivals over service when the deployment cannot keep up.
    double in_system_growth_per_s = 0;
    double input_tokens_per_s_per_node_prefill = 0;
    double output_tokens_per_s_per_node_decode = 0;
    double tokens_per_s_per_gpu = 0;
    double goodput_requests_per_s = 0;
    double kv_cache_utilization_mean = 0;  // time-weighted mean over instances of used / capacity blocks
    double mean_requests_in_system = 0;    // time average over [0, end]
    double mean_time_in_system_s = 0;      // over every request that left (completed or rejected)
    // KV transfers of requests that arrived after the warm-up: count, and transfer times (first byte
    // moving to last byte arrived) in ms.
    std::int64_t kv_transfers = 0;
    double kv_transfer_ms_mean = 0, kv_transfer_ms_p99 = 0;
    double prefill_nodes = 0;
    double decode_nodes = 0;
    int gpus = 0;
    bool overloaded = false;  // stopped early: more requests in the system than ServingConfig::max_in_system
    std::optional<PrefixCacheSummary> prefix_cache;  // with ServingConfig::prefix_cache
};

class ServingSimulator {
public:
    // Checks the config (throws std::invalid_argument naming the problem). KV transfers go over
    // `kv_channel` (not owned; it must outlive the run), or when null over a FifoKvTransferChannel
    // of config.kv_transfer's bandwidth and latency.
    ServingSimulator(Simulator& sim, ServingConfig config, RequestSource& source,
                     KvTransferChannel* kv_channel = nullptr);
    ServingSimulator(const ServingSimulator&) = delete;
    ServingSimulator& operator=(const ServingSimulator&) = delete;

    // Schedules the first arrival; then run the Simulator.
    void start();
    // After the Simulator has run dry.
    ServingSummary summary() const;

    Signal<const IterationRecord&>& on_iteration() { return on_iteration_; }
    Signal<const RequestRecord&>& on_request_done() { return on_request_done_; }

    int instance_count() const { return static_cast<int>(instances_.size()); }
    const std::string& instance_name(int i) const { return instances_[static_cast<std::size_t>(i)].name; }
    // The most KV blocks any instance ever held over its capacity (0 or less: never exceeded).
    std::int64_t worst_kv_excess_blocks() const { return worst_kv_excess_; }
    std::int64_t in_system() const { return in_system_; }
    // Latency samples of completed requests that arrived after the warm-up, in seconds.
    const std::vector<double>& ttft_samples_s() const { return ttft_s_; }
    const std::vector<double>& tpot_samples_s() const { return tpot_s_; }
    const std::vector<double>& e2e_samples_s() const { return e2e_s_; }

private:
    struct Active {
        Request request;
        std::int64_t prefilled = 0;  // prompt tokens whose KV is on the current instance
        std::int64_t target = 0;     // tokens to prefill before decoding (input, + generated after a preemption)
        std::int64_t generated = 0;
        std::int64_t blocks = 0;         // held on the current instance
        std::int64_t decode_blocks = 0;  // reserved on the decode instance during a KV transfer
        int instance = -1;
        int prefill_instance = -1;
        int decode_instance = -1;
        Time first_token = Time::max();
        Time transfer_start, transfer_end;
        Time prefix_load_end;
        int preemptions = 0;
        int dp_rank = 0;  // attention-DP rank on the current instance
        bool prefill_counted = false;
        bool leaving = false;  // finished or handed off in the iteration being settled
    };
    struct BatchEntry {
        int slot;
        std::int64_t prefill_chunk;  // 0: a decode step
    };
    struct Instance {
        std::string name;
        int pool = 0;
        InstanceRole role = InstanceRole::colocated;
        InstanceSpec spec;
        std::int64_t capacity_blocks = 0;
        std::deque<int> waiting;   // not admitted yet, in order
        std::vector<int> running;  // admitted, in admission order
        std::deque<int> incoming;  // decode: handed-off requests waiting for blocks to start their transfer
        std::int64_t transferring = 0;  // decode: KV transfers under way to this instance
        std::vector<BatchEntry> batch;
        int next_dp_rank = 0;                      // the rank the next admitted request goes to
        std::vector<std::int64_t> rank_requests;   // scratch: decode requests per attention-DP rank
        std::vector<std::int64_t> rank_kv_tokens;  // scratch: their KV lengths summed per rank
        std::int64_t used_blocks = 0;
        std::int64_t assigned = 0;  // routed here and not gone yet (least-loaded router)
        // Without a prefix cache: sessions whose conversation KV this instance holds, in tokens (first
        // pool; not capacity-limited). Entries go when the session's last turn leaves.
        std::unordered_map<std::int64_t, std::int64_t> session_tokens;
        Time load_free_at;  // when this instance's loads of cached prefixes are done (load_bandwidth)
        bool busy = false;
        bool wake_pending = false;  // held by PoolAvailability, with a call to schedule() at the hold's end
        Time iteration_start;
        double utilization_integral_s = 0;  // integral of used / capacity over time
        Time utilization_since;
    };
    struct Pool {
        PoolSpec spec;
        int first_instance = 0;
        std::int64_t next_round_robin = 0;
    };

    void arrive(Request request);
    void schedule_next_turn(const Request& previous);
    void fetch_next_arrival();
    // `chain`: the request's prefix-cache blocks, for the KV-aware router with per-instance caches.
    int route(int pool, const Request& request, std::span<const BlockHash> chain = {});
    // The prefix-cache blocks covering the first `tokens` of a request's conversation: a trace's hash
    // ids (all of them), or a session's (session, index) hashes of its whole blocks; empty without
    // identities. A session's chain lives in a buffer the next call overwrites.
    std::span<const BlockHash> prefix_chain(const Request& request, std::int64_t tokens);
    // Whether a request's cached prefix comes from the prefix cache (it has identities to match).
    bool matches_prefix_cache(const Request& request) const;
    PrefixCache& prefix_cache_of(int instance);
    void cache_blocks(int instance, const Request& request, std::int64_t tokens);
    // Session tokens whose KV instance `instance` holds (0 if none).
    std::int64_t session_tokens_on(int instance, std::int64_t session) const;
    void remember_session(int instance, const Request& request, std::int64_t tokens);
    void schedule(int instance);
    void iteration_done(int instance);
    bool reserve_decode_blocks(Instance& inst, int slot, std::size_t position);
    void preempt(Instance& inst, int slot);
    void finish(int slot);
    void arrive_for_decode(const Request& request, int target);
    void reject(const Request& request, const std::string& why);
    void hand_off(int slot);
    void start_transfers(int decode_instance);
    void transfer_done(int slot);
    void set_used_blocks(Instance& inst, std::int64_t used);
    void change_in_system(int delta);
    std::int64_t blocks_for(const Instance& inst, std::int64_t tokens) const;
    void leave(const RequestRecord& record);
    int new_slot(const Request& request);

    Simulator& sim_;
    ServingConfig config_;
    bool prefill_only_ = false;  // a prefill pool alone: requests leave with their first token
    bool decode_only_ = false;
    bool overloaded_ = false;  // a decode pool alone: requests arrive with their first token and KV elsewhere
    RequestSource& source_;
    std::unique_ptr<KvTransferChannel> fifo_channel_;  // when no channel was given
    KvTransferChannel* kv_channel_ = nullptr;
    RngStream speculative_rng_;
    RngStream session_rng_;
    std::int64_t next_followup_id_ = std::int64_t{1} << 40;  // follow-up turns, apart from the source's ids
    std::vector<Pool> pools_;
    std::vector<Instance> instances_;
    std::vector<Active> slots_;
    std::vector<int> free_slots_;
    std::optional<Request> pending_arrival_;
    std::vector<PrefixCache> prefix_caches_;  // one shared, or one per instance of the first pool
    std::vector<BlockHash> chain_buffer_;

    // Statistics.
    ServingCounters counters_;
    std::optional<ServingCounters> window_start_, window_end_;
    std::int64_t arrived_ = 0, completed_ = 0, rejected_ = 0, preemptions_ = 0;
    std::int64_t measured_ = 0;  // arrivals at or after the warm-up
    Time last_arrival_;
    std::int64_t requested_output_ = 0, emitted_output_ = 0;
    std::int64_t in_system_ = 0;
    double in_system_integral_s_ = 0;
    Time in_system_since_;
    double time_in_system_sum_s_ = 0;
    std::int64_t left_ = 0;
    std::int64_t worst_kv_excess_ = 0;
    Time end_;
    std::vector<double> ttft_s_, tpot_s_, e2e_s_, speed_, kv_transfer_ms_, prefix_load_ms_;
    std::int64_t good_requests_ = 0;  // completed, arrived in the window, meeting both SLOs

    Signal<const IterationRecord&> on_iteration_;
    Signal<const RequestRecord&> on_request_done_;
};

}  // namespace clustersim
