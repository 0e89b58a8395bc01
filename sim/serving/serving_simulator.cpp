// The request-level serving simulator (see serving_simulator.hpp).
#include "sim/serving/serving_simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace clustersim {
namespace {

// Nearest-rank percentile of an unsorted sample (0 when empty).
double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

double mean(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

// The hash of block `index` of session `session`'s conversation (SplitMix64's finalizer, Steele et
// al., OOPSLA 2014, over both): a conversation's blocks form a chain each turn extends.
BlockHash session_block_hash(std::int64_t session, std::int64_t index) {
    auto mix = [](std::uint64_t z) {
        z += 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    return mix(mix(static_cast<std::uint64_t>(session)) + static_cast<std::uint64_t>(index));
}

}  // namespace

const char* to_string(InstanceRole role) {
    switch (role) {
        case InstanceRole::colocated:
            return "colocated";
        case InstanceRole::prefill:
            return "prefill";
        case InstanceRole::decode:
            return "decode";
    }
    return "?";
}

const char* to_string(RouterKind router) {
    switch (router) {
        case RouterKind::round_robin:
            return "round_robin";
        case RouterKind::least_loaded:
            return "least_loaded";
        case RouterKind::kv_aware:
            break;
    }
    return "kv_aware";
}

ServingSimulator::ServingSimulator(Simulator& sim, ServingConfig config, RequestSource& source,
                                   KvTransferChannel* kv_channel)
    : sim_(sim),
      config_(std::move(config)),
      source_(source),
      kv_channel_(kv_channel),
      speculative_rng_(sim.rng_stream("serving.speculative")),
      session_rng_(sim.rng_stream("serving.sessions")) {
    const auto& pools = config_.pools;
    const bool colocated = pools.size() == 1 && pools[0].role == InstanceRole::colocated;
    const bool disaggregated =
        pools.size() == 2 && pools[0].role == InstanceRole::prefill && pools[1].role == InstanceRole::decode;
    prefill_only_ = pools.size() == 1 && pools[0].role == InstanceRole::prefill;
    decode_only_ = pools.size() == 1 && pools[0].role == InstanceRole::decode;
    if (!colocated && !disaggregated && !prefill_only_ && !decode_only_)
        throw std::invalid_argument(
            "a deployment is one colocated pool, a prefill pool followed by a decode pool, or one prefill or one "
            "decode pool alone");
    if ((disaggregated || decode_only_) && !kv_channel_) {
        if (!(config_.kv_transfer.bandwidth > Bandwidth{}))
            throw std::invalid_argument("a disaggregated deployment needs a positive KV transfer bandwidth");
        fifo_channel_ =
            std::make_unique<FifoKvTransferChannel>(sim_, config_.kv_transfer.bandwidth, config_.kv_transfer.latency);
        kv_channel_ = fifo_channel_.get();
    }
    if ((prefill_only_ || decode_only_) && config_.sessions)
        throw std::invalid_argument("sessions need the whole deployment, not one pool of it alone");
    if (config_.speculative.depth < 0 || config_.speculative.acceptance < 0 || config_.speculative.acceptance > 1)
        throw std::invalid_argument("speculative decoding needs depth >= 0 and an acceptance rate in [0, 1]");
    for (const auto& p : pools) {
        const auto& s = p.instance;
        if (p.instances < 1 || s.gpus < 1 || s.max_batch < 1 || s.token_budget < 1 || s.block_tokens < 1 || !s.cost)
            throw std::invalid_argument(
                fmt::format("pool {}: instances, gpus, max_batch, token_budget and "
                            "block_tokens must be positive and a cost model given",
                            p.name));
        if (s.kv_capacity_tokens < s.block_tokens)
            throw std::invalid_argument(fmt::format("pool {}: the KV cache holds {} tokens, less than one block of {}",
                                                    p.name, s.kv_capacity_tokens, s.block_tokens));
        if (p.role != InstanceRole::prefill && s.token_budget < 1 + config_.speculative.depth)
            throw std::invalid_argument(fmt::format("pool {}: the token budget cannot hold one decode step", p.name));
        Pool pool;
        pool.spec = p;
        pool.first_instance = static_cast<int>(instances_.size());
        for (int i = 0; i < p.instances; ++i) {
            Instance inst;
            inst.name = fmt::format("{}-{}", p.name, i);
            inst.pool = static_cast<int>(pools_.size());
            inst.role = p.role;
            inst.spec = s;
            inst.capacity_blocks = s.kv_capacity_tokens / s.block_tokens;
            instances_.push_back(std::move(inst));
        }
        pools_.push_back(std::move(pool));
    }
    if (config_.prefix_cache) {
        const PrefixCacheSpec& c = *config_.prefix_cache;
        if (decode_only_)
            throw std::invalid_argument("a prefix cache needs a pool that prefills; a decode pool alone has none");
        if (config_.sessions && config_.sessions->per_instance_cache)
            throw std::invalid_argument(
                "with a prefix cache, its scope says where a conversation's KV stays, not the sessions' cache");
        if (c.block_tokens < 1 || c.capacity_tokens < c.block_tokens)
            throw std::invalid_argument(fmt::format("the prefix cache holds {} tokens, less than one block of {}",
                                                    c.capacity_tokens, c.block_tokens));
        if (c.load_bandwidth && !(*c.load_bandwidth > Bandwidth{} && c.bytes_per_token > Bytes{}))
            throw std::invalid_argument("prefix-cache loads need a positive bandwidth and KV bytes per token");
        const int caches = c.shared ? 1 : pools_.front().spec.instances;
        for (int i = 0; i < caches; ++i) prefix_caches_.emplace_back(c.capacity_tokens / c.block_tokens);
    }
}

void ServingSimulator::start() {
    pending_arrival_ = source_.next();
    if (!pending_arrival_) return;
    if (config_.warmup > Time::zero()) {
        sim_.schedule_at(config_.warmup, [this] {
            if (!window_start_) {
                window_start_ = counters_;
                window_start_->at = sim_.now();
            }
        });
    } else {
        window_start_ = counters_;
    }
    fetch_next_arrival();
}

void ServingSimulator::fetch_next_arrival() {
    sim_.schedule_at(pending_arrival_->arrival, [this] {
        const Request r = *pending_arrival_;
        pending_arrival_ = source_.next();
        if (pending_arrival_ && pending_arrival_->arrival < r.arrival)
            throw std::logic_error(fmt::format("request {} arrives before request {}: sources must be in time order",
                                               pending_arrival_->id, r.id));
        arrive(r);
        if (pending_arrival_) {
            fetch_next_arrival();
        } else if (!window_end_ && window_start_) {
            window_end_ = counters_;
            window_end_->at = sim_.now();
        }
    });
}

std::int64_t ServingSimulator::blocks_for(const Instance& inst, std::int64_t tokens) const {
    return (tokens + inst.spec.block_tokens - 1) / inst.spec.block_tokens;
}

void ServingSimulator::change_in_system(int delta) {
    in_system_integral_s_ += static_cast<double>(in_system_) * (sim_.now() - in_system_since_).seconds();
    in_system_since_ = sim_.now();
    in_system_ += delta;
    counters_.in_system = static_cast<double>(in_system_);
    if (config_.max_in_system > 0 && in_system_ > config_.max_in_system && !overloaded_) {
        overloaded_ = true;
        end_ = std::max(end_, sim_.now());
        sim_.stop();
    }
}

void ServingSimulator::set_used_blocks(Instance& inst, std::int64_t used) {
    const Time now = sim_.now();
    if (now != inst.utilization_since) {  // many changes at one instant: the first one closes the interval
        inst.utilization_integral_s += static_cast<double>(inst.used_blocks) /
                                       static_cast<double>(inst.capacity_blocks) * (now - inst.utilization_since).seconds();
        inst.utilization_since = now;
    }
    inst.used_blocks = used;
    if (used < 0) throw std::logic_error(fmt::format("{}: KV block count went negative", inst.name));
    worst_kv_excess_ = std::max(worst_kv_excess_, used - inst.capacity_blocks);
}

int ServingSimulator::new_slot(const Request& request) {
    int slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
        slots_[static_cast<std::size_t>(slot)] = Active{};
    } else {
        slot = static_cast<int>(slots_.size());
        slots_.emplace_back();
    }
    Active& a = slots_[static_cast<std::size_t>(slot)];
    a.request = request;
    a.target = request.input_tokens;
    return slot;
}

std::int64_t ServingSimulator::session_tokens_on(int instance, std::int64_t session) const {
    const auto& held = instances_[static_cast<std::size_t>(instance)].session_tokens;
    const auto it = held.find(session);
    return it == held.end() ? 0 : it->second;
}

void ServingSimulator::remember_session(int instance, const Request& request, std::int64_t tokens) {
    if (!config_.sessions || request.session < 0 || config_.prefix_cache) return;
    if (request.turn + 1 < request.turns) {
        auto& held = instances_[static_cast<std::size_t>(instance)].session_tokens[request.session];
        held = std::max(held, tokens);
    } else {  // the session's last turn: no one will ask for its prefix again
        const Pool& first = pools_.front();
        for (int i = 0; i < first.spec.instances; ++i)
            instances_[static_cast<std::size_t>(first.first_instance + i)].session_tokens.erase(request.session);
    }
}

std::span<const BlockHash> ServingSimulator::prefix_chain(const Request& request, std::int64_t tokens) {
    if (request.block_hashes) return *request.block_hashes;
    chain_buffer_.clear();
    if (!config_.sessions || request.session < 0) return {};
    const std::int64_t blocks = tokens / config_.prefix_cache->block_tokens;  // whole blocks only
    for (std::int64_t i = 0; i < blocks; ++i) chain_buffer_.push_back(session_block_hash(request.session, i));
    return chain_buffer_;
}

bool ServingSimulator::matches_prefix_cache(const Request& request) const {
    // A session's first turn has no conversation before it: it keeps the hit ratio's prefix (a system
    // prompt without identities), and its blocks start the chain its follow-ups extend.
    return request.block_hashes || (config_.sessions && request.session >= 0 && request.turn > 0);
}

PrefixCache& ServingSimulator::prefix_cache_of(int instance) {
    return prefix_caches_[config_.prefix_cache->shared ? 0 : static_cast<std::size_t>(instance)];
}

void ServingSimulator::cache_blocks(int instance, const Request& request, std::int64_t tokens) {
    const auto chain = prefix_chain(request, tokens);
    if (!chain.empty()) prefix_cache_of(instance).insert(chain);
}

int ServingSimulator::route(int pool_index, const Request& request, std::span<const BlockHash> chain) {
    Pool& pool = pools_[static_cast<std::size_t>(pool_index)];
    const int n = pool.spec.instances;
    int chosen = 0;
    std::int64_t best_prefix = 0;
    const bool kv_aware = pool.spec.router == RouterKind::kv_aware && pool_index == 0;
    if (kv_aware && !chain.empty() && config_.prefix_cache && !config_.prefix_cache->shared) {
        // The longest cached prefix of the chain; of equals, the least loaded (lowest index first).
        for (int i = 0; i < n; ++i) {
            const int index = pool.first_instance + i;
            const std::int64_t held = prefix_caches_[static_cast<std::size_t>(index)].longest_prefix(chain);
            if (held > best_prefix ||
                (held == best_prefix && held > 0 &&
                 instances_[static_cast<std::size_t>(index)].assigned <
                     instances_[static_cast<std::size_t>(pool.first_instance + chosen)].assigned)) {
                best_prefix = held;
                chosen = i;
            }
        }
    } else if (kv_aware && request.session >= 0) {
        for (int i = 0; i < n; ++i) {
            const std::int64_t held = session_tokens_on(pool.first_instance + i, request.session);
            if (held > best_prefix) {
                best_prefix = held;
                chosen = i;
            }
        }
    }
    if (best_prefix > 0) {
        // The instance holding the longest cached prefix of the request.
    } else if (pool.spec.router == RouterKind::round_robin) {
        chosen = static_cast<int>(pool.next_round_robin++ % n);
    } else {
        for (int i = 1; i < n; ++i)
            if (instances_[static_cast<std::size_t>(pool.first_instance + i)].assigned <
                instances_[static_cast<std::size_t>(pool.first_instance + chosen)].assigned)
                chosen = i;
    }
    return pool.first_instance + chosen;
}

void ServingSimulator::schedule_next_turn(const Request& previous) {
    const SessionSpec& spec = *config_.sessions;
    Request next;
    next.id = next_followup_id_++;
    next.session = previous.session;
    next.turn = previous.turn + 1;
    next.turns = previous.turns;
    next.arrival = sim_.now() + Time::from_seconds(session_rng_.exponential(spec.think_time_mean.seconds()));
    const std::int64_t context = previous.input_tokens + previous.output_tokens;
    next.input_tokens = context + std::max<std::int64_t>(1, spec.new_input.sample(session_rng_));
    next.output_tokens = std::max<std::int64_t>(1, spec.output.sample(session_rng_));
    next.cached_tokens = context;  // the conversation so far stays in the prefix cache
    // The event holds the request by value on the heap (it is too large for the inline buffer).
    sim_.schedule_at(next.arrival, [this, next] { arrive(next); });
}

void ServingSimulator::arrive(Request request) {
    if (config_.sessions && request.session < 0) {
        request.session = request.id;
        request.turn = 0;
        request.turns = static_cast<int>(std::max<std::int64_t>(1, config_.sessions->turns.sample(session_rng_)));
    }
    ++arrived_;
    if (request.arrival >= config_.warmup) ++measured_;
    last_arrival_ = std::max(last_arrival_, request.arrival);
    change_in_system(+1);
    // A request that could not fit even in an empty KV cache would wait forever. A prefill pool holds
    // the prompt only; pools that decode hold the prompt, the output and the step's drafts.
    const std::int64_t final_tokens = request.input_tokens + request.output_tokens + config_.speculative.depth;
    for (const auto& p : pools_) {
        const std::int64_t tokens = p.spec.role == InstanceRole::prefill ? request.input_tokens : final_tokens;
        const std::int64_t needed = (tokens + p.spec.instance.block_tokens - 1) / p.spec.instance.block_tokens;
        const std::int64_t capacity = p.spec.instance.kv_capacity_tokens / p.spec.instance.block_tokens;
        if (needed > capacity) {
            reject(request, fmt::format("needs {} KV blocks, more than an instance of pool {} holds ({})", needed,
                                        p.spec.name, capacity));
            return;
        }
    }
    const bool match = config_.prefix_cache && matches_prefix_cache(request);
    const auto chain = match ? prefix_chain(request, request.input_tokens) : std::span<const BlockHash>{};
    const int target = route(0, request, chain);
    if (decode_only_) {
        arrive_for_decode(request, target);
        return;
    }
    // A follow-up whose conversation is cached per instance hits only what its instance holds.
    if (config_.sessions && config_.sessions->per_instance_cache && request.turn > 0)
        request.cached_tokens = std::min(request.cached_tokens, session_tokens_on(target, request.session));
    if (config_.prefix_cache) {
        if (match) {
            const std::int64_t blocks = prefix_cache_of(target).match(chain);
            request.cached_tokens =
                std::clamp<std::int64_t>(blocks * config_.prefix_cache->block_tokens, 0, request.input_tokens - 1);
        }
        counters_.prefix_prompt_tokens += static_cast<double>(request.input_tokens);
        counters_.prefix_cached_tokens += static_cast<double>(request.cached_tokens);
    }
    const int slot = new_slot(request);
    Active& a = slots_[static_cast<std::size_t>(slot)];
    a.instance = target;
    a.prefill_instance = target;
    Instance& inst = instances_[static_cast<std::size_t>(target)];
    ++inst.assigned;
    if (config_.prefix_cache && config_.prefix_cache->load_bandwidth && request.cached_tokens > 0) {
        // The cached prefix comes from the host or disk tier first, after the instance's earlier loads.
        const Bytes bytes = config_.prefix_cache->bytes_per_token * static_cast<double>(request.cached_tokens);
        const Time done = std::max(sim_.now(), inst.load_free_at) + bytes / *config_.prefix_cache->load_bandwidth;
        inst.load_free_at = done;
        a.prefix_load_end = done;
        if (request.arrival >= config_.warmup) prefix_load_ms_.push_back((done - sim_.now()).ms());
        sim_.schedule_at(done, [this, slot, target] {
            instances_[static_cast<std::size_t>(target)].waiting.push_back(slot);
            schedule(target);
        });
        return;
    }
    inst.waiting.push_back(slot);
    schedule(target);
}

// A decode pool alone: the request arrives with its first token made by a prefill instance outside
// the simulation, so it counts as emitted at arrival; its prompt's KV then moves in as in a whole
// disaggregated deployment.
void ServingSimulator::arrive_for_decode(const Request& request, int target) {
    const int slot = new_slot(request);
    Active& a = slots_[static_cast<std::size_t>(slot)];
    a.instance = target;
    a.decode_instance = target;
    a.prefilled = a.target;
    a.prefill_counted = true;
    a.first_token = sim_.now();
    a.generated = 1;
    ++emitted_output_;
    counters_.output_tokens_total += 1;
    Instance& inst = instances_[static_cast<std::size_t>(target)];
    ++inst.assigned;
    if (request.output_tokens <= 1) {  // nothing left to decode
        finish(slot);
        return;
    }
    inst.incoming.push_back(slot);
    start_transfers(target);
}

void ServingSimulator::reject(const Request& request, const std::string& why) {
    ++rejected_;
    RequestRecord r;
    r.request = request;
    r.status = RequestStatus::rejected;
    r.reject_reason = why;
    r.first_token = sim_.now();
    r.finished = sim_.now();
    leave(r);
}

void ServingSimulator::leave(const RequestRecord& record) {
    change_in_system(-1);
    ++left_;
    time_in_system_sum_s_ += (record.finished - record.request.arrival).seconds();
    end_ = std::max(end_, sim_.now());
    if (record.status == RequestStatus::completed && record.request.arrival >= config_.warmup) {
        ttft_s_.push_back(record.ttft_s());
        e2e_s_.push_back(record.e2e_s());
        if (record.generated > 1) {
            tpot_s_.push_back(record.tpot_s());
            speed_.push_back(1.0 / record.tpot_s());
        }
        if (record.first_token - record.request.arrival <= config_.ttft_slo &&
            (record.generated <= 1 || Time::from_seconds(record.tpot_s()) <= config_.tpot_slo))
            ++good_requests_;
    }
    on_request_done_.emit(record);
}

void ServingSimulator::preempt(Instance& inst, int slot) {
    Active& a = slots_[static_cast<std::size_t>(slot)];
    std::erase(inst.running, slot);
    set_used_blocks(inst, inst.used_blocks - a.blocks);
    a.blocks = 0;
    a.prefilled = 0;
    a.target = a.request.input_tokens + a.generated;  // recompute the prompt and what was generated
    ++a.preemptions;
    ++preemptions_;
    inst.waiting.push_front(slot);
}

// Makes room for a decode step of running[position]: preempts the latest admitted requests until the
// step's blocks fit. Returns false when the request itself had to be preempted.
bool ServingSimulator::reserve_decode_blocks(Instance& inst, int slot, std::size_t position) {
    Active& a = slots_[static_cast<std::size_t>(slot)];
    const std::int64_t after = a.request.input_tokens + a.generated + config_.speculative.depth;
    // Most steps stay inside the blocks held (the same test as blocks_for(after) <= blocks, without
    // the division: this runs for every running request at every decode step).
    if (after <= a.blocks * inst.spec.block_tokens) return true;
    const std::int64_t need = blocks_for(inst, after) - a.blocks;
    while (inst.capacity_blocks - inst.used_blocks < need) {
        if (inst.running.size() <= position + 1) {
            preempt(inst, slot);
            return false;
        }
        preempt(inst, inst.running.back());
    }
    a.blocks += need;
    set_used_blocks(inst, inst.used_blocks + need);
    return true;
}

void ServingSimulator::schedule(int index) {
    Instance& inst = instances_[static_cast<std::size_t>(index)];
    if (inst.busy) return;
    if (const auto& hold = pools_[static_cast<std::size_t>(inst.pool)].spec.availability) {
        const Time from = hold->available_from(sim_.now());
        if (from > sim_.now()) {
            if (!inst.wake_pending) {
                inst.wake_pending = true;
                sim_.schedule_at(from, [this, index] {
                    instances_[static_cast<std::size_t>(index)].wake_pending = false;
                    schedule(index);
                });
            }
            return;
        }
    }
    inst.batch.clear();
    std::int64_t budget = inst.spec.token_budget;
    const std::int64_t step_tokens = 1 + config_.speculative.depth;
    BatchWork work;
    work.decode_tokens_per_request = step_tokens;
    double prefill_context_sum = 0, decode_context_sum = 0;
    // Attention DP: decode requests and their KV per rank, for the busiest rank's share.
    const int dp = std::max(1, inst.spec.attention_dp);
    if (dp > 1) {
        inst.rank_requests.assign(static_cast<std::size_t>(dp), 0);
        inst.rank_kv_tokens.assign(static_cast<std::size_t>(dp), 0);
    }
    auto add_decode = [&](const Active& a) {
        const std::int64_t kv = a.request.input_tokens + a.generated;
        ++work.decode_requests;
        decode_context_sum += static_cast<double>(kv);
        if (dp > 1) {
            ++inst.rank_requests[static_cast<std::size_t>(a.dp_rank)];
            inst.rank_kv_tokens[static_cast<std::size_t>(a.dp_rank)] += kv;
        }
    };
    auto add_prefill = [&](int slot, Active& a) {
        const std::int64_t chunk = std::min(a.target - a.prefilled, budget);
        if (chunk <= 0) return;
        inst.batch.push_back({slot, chunk});
        budget -= chunk;
        work.prefill_tokens += chunk;
        work.prefill_max_chunk = std::max(work.prefill_max_chunk, chunk);
        ++work.prefill_sequences;
        prefill_context_sum += static_cast<double>(a.prefilled);
    };
    // Running requests first, in admission order: decode steps, then the chunks of unfinished prompts.
    for (std::size_t k = 0; k < inst.running.size() && budget > 0;) {
        const int slot = inst.running[k];
        Active& a = slots_[static_cast<std::size_t>(slot)];
        if (a.prefilled < a.target) {
            add_prefill(slot, a);
            ++k;
            continue;
        }
        if (budget < step_tokens) break;
        if (!reserve_decode_blocks(inst, slot, k)) continue;  // it was preempted: running[k] is the next one
        inst.batch.push_back({slot, 0});
        budget -= step_tokens;
        add_decode(a);
        ++k;
    }
    // Then admission, first come first served, while blocks for the whole prompt are free. Requests
    // whose blocks a KV transfer already reserved are admitted even behind one that must wait for
    // blocks: they hold blocks the one in front may be waiting for.
    bool allocation_blocked = false;
    for (auto it = inst.waiting.begin(); it != inst.waiting.end() && budget > 0 &&
                                         static_cast<std::int64_t>(inst.running.size()) < inst.spec.max_batch;) {
        const int slot = *it;
        Active& a = slots_[static_cast<std::size_t>(slot)];
        if (a.blocks == 0) {  // not reserved by a KV transfer
            const std::int64_t need = blocks_for(inst, a.target);
            if (allocation_blocked || inst.capacity_blocks - inst.used_blocks < need) {
                allocation_blocked = true;
                ++it;
                continue;
            }
            a.blocks = need;
            set_used_blocks(inst, inst.used_blocks + need);
            // Prefix-cache hits: the cached prompt tokens need no compute.
            a.prefilled = std::min(a.request.cached_tokens, a.target - 1);
        }
        it = inst.waiting.erase(it);
        inst.running.push_back(slot);
        a.dp_rank = inst.next_dp_rank;  // dealt to the ranks in turn; it stays there while running
        inst.next_dp_rank = (inst.next_dp_rank + 1) % dp;
        if (a.prefilled < a.target) {
            add_prefill(slot, a);
            continue;
        }
        // Arrived by KV transfer, ready to decode. Only free blocks are used here: preempting while
        // walking the waiting queue would change it under the walk; the next iteration can preempt.
        const std::int64_t step_blocks =
            blocks_for(inst, a.request.input_tokens + a.generated + config_.speculative.depth) - a.blocks;
        if (budget >= step_tokens && inst.capacity_blocks - inst.used_blocks >= step_blocks) {
            if (step_blocks > 0) {
                a.blocks += step_blocks;
                set_used_blocks(inst, inst.used_blocks + step_blocks);
            }
            inst.batch.push_back({slot, 0});
            budget -= step_tokens;
            add_decode(a);
        }
    }
    if (inst.batch.empty()) {
        // Requests admitted above without a free block for their step: a second pass may preempt to
        // make room (its loop over running requests either batches one or preempts them all).
        if (!inst.running.empty()) schedule(index);
        return;
    }
    if (work.prefill_sequences > 0)
        work.prefill_context = std::llround(prefill_context_sum / static_cast<double>(work.prefill_sequences));
    if (work.decode_requests > 0)
        work.decode_context = std::llround(decode_context_sum / static_cast<double>(work.decode_requests));
    if (dp > 1 && work.decode_requests > 0) {
        work.decode_rank_requests = *std::max_element(inst.rank_requests.begin(), inst.rank_requests.end());
        work.decode_rank_kv_tokens = *std::max_element(inst.rank_kv_tokens.begin(), inst.rank_kv_tokens.end());
    }
    // CUDA graphs are captured per rank: the busiest rank's batch (or the instance's, without DP) is padded.
    const auto& graphs = inst.spec.cuda_graph_batch_sizes;
    if (work.prefill_tokens == 0 && !graphs.empty()) {
        std::int64_t& batch = dp > 1 ? work.decode_rank_requests : work.decode_requests;
        const auto it = std::lower_bound(graphs.begin(), graphs.end(), batch);
        if (it != graphs.end()) batch = *it;
    }
    const Time duration = inst.spec.cost->iteration_time(work);
    if (duration <= Time::zero())
        throw std::logic_error(fmt::format("{}: the cost model gave a non-positive iteration time", inst.name));
    inst.busy = true;
    inst.iteration_start = sim_.now();
    sim_.schedule_in(duration, [this, index] { iteration_done(index); });
}

void ServingSimulator::iteration_done(int index) {
    Instance& inst = instances_[static_cast<std::size_t>(index)];
    inst.busy = false;
    IterationRecord record;
    record.instance = index;
    record.start = inst.iteration_start;
    record.duration = sim_.now() - inst.iteration_start;
    std::vector<int> finished, handed_off;
    for (const BatchEntry& e : inst.batch) {
        Active& a = slots_[static_cast<std::size_t>(e.slot)];
        const std::int64_t remaining = a.request.output_tokens - a.generated;
        std::int64_t emitted = 0;
        if (e.prefill_chunk > 0) {
            ++record.prefill_sequences;
            record.prefill_tokens += e.prefill_chunk;
            a.prefilled += e.prefill_chunk;
            if (a.prefilled < a.target) continue;
            // The prompt is complete: its last position's logits give the next token.
            emitted = 1;
            if (!a.prefill_counted) {
                a.prefill_counted = true;
                counters_.input_tokens_prefilled += static_cast<double>(a.request.input_tokens);
                // The prompt's KV is computed: its blocks enter the prefix cache.
                if (config_.prefix_cache && inst.pool == 0) cache_blocks(index, a.request, a.request.input_tokens);
            }
        } else {
            ++record.decode_requests;
            std::int64_t accepted = 0;
            while (accepted < config_.speculative.depth &&
                   speculative_rng_.uniform01() < config_.speculative.acceptance)
                ++accepted;
            emitted = std::min(remaining, 1 + accepted);
            counters_.output_tokens_decode += static_cast<double>(emitted);
        }
        if (emitted > remaining)
            throw std::logic_error(fmt::format("request {} would get more tokens than it asked for", a.request.id));
        a.generated += emitted;
        emitted_output_ += emitted;
        counters_.output_tokens_total += static_cast<double>(emitted);
        record.tokens_emitted += emitted;
        if (a.first_token == Time::max()) a.first_token = sim_.now();
        if (a.generated == a.request.output_tokens)
            finished.push_back(e.slot);
        else if (inst.role == InstanceRole::prefill)
            (prefill_only_ ? finished : handed_off).push_back(e.slot);  // alone, a prefill pool's work ends here
    }
    if (inst.role != InstanceRole::prefill)
        counters_.decode_request_seconds += static_cast<double>(record.decode_requests) * record.duration.seconds();
    record.kv_used_blocks = inst.used_blocks;
    record.kv_capacity_blocks = inst.capacity_blocks;
    record.waiting = static_cast<std::int64_t>(inst.waiting.size());
    inst.batch.clear();
    on_iteration_.emit(record);
    // Take the leaving requests out of the running list in one pass (a decode instance may run
    // thousands), keeping the admission order of the others.
    if (!finished.empty() || !handed_off.empty()) {
        for (int slot : finished) slots_[static_cast<std::size_t>(slot)].leaving = true;
        for (int slot : handed_off) slots_[static_cast<std::size_t>(slot)].leaving = true;
        std::erase_if(inst.running, [this](int slot) { return slots_[static_cast<std::size_t>(slot)].leaving; });
        for (int slot : handed_off) slots_[static_cast<std::size_t>(slot)].leaving = false;
    }
    for (int slot : finished) finish(slot);
    for (int slot : handed_off) hand_off(slot);
    schedule(index);
}

void ServingSimulator::finish(int slot) {
    Active& a = slots_[static_cast<std::size_t>(slot)];
    Instance& inst = instances_[static_cast<std::size_t>(a.instance)];  // the caller took it out of running
    set_used_blocks(inst, inst.used_blocks - a.blocks);
    a.blocks = 0;
    --inst.assigned;
    ++completed_;
    // A prefill pool alone is asked for the first token only.
    requested_output_ += prefill_only_ ? std::min<std::int64_t>(1, a.request.output_tokens) : a.request.output_tokens;
    RequestRecord r;
    r.request = a.request;
    r.first_token = a.first_token;
    r.finished = sim_.now();
    r.transfer_start = a.transfer_start;
    r.transfer_end = a.transfer_end;
    r.prefix_load_end = a.prefix_load_end;
    r.prefill_instance = a.prefill_instance;
    r.decode_instance = a.decode_instance;
    r.preemptions = a.preemptions;
    r.generated = a.generated;
    // The conversation's KV stays where it was computed: the whole context on a colocated instance
    // (the last token's KV is not written yet), the prompt on the prefill instance.
    if (inst.pool == 0)
        remember_session(a.instance, r.request, r.request.input_tokens + r.generated - 1);
    else
        remember_session(a.prefill_instance, r.request, r.request.input_tokens);
    // A colocated instance holds the conversation's KV, generated tokens too (a trace's hash ids
    // name the prompt only).
    if (config_.prefix_cache && inst.role == InstanceRole::colocated && config_.sessions && r.request.session >= 0)
        cache_blocks(a.instance, r.request, r.request.input_tokens + r.generated - 1);
    free_slots_.push_back(slot);
    leave(r);
    if (config_.sessions && r.request.turn + 1 < r.request.turns) schedule_next_turn(r.request);
    // The caller (iteration_done) schedules this instance's next iteration once the batch is settled.
    if (inst.role == InstanceRole::decode) start_transfers(static_cast<int>(&inst - instances_.data()));
}

void ServingSimulator::hand_off(int slot) {
    Active& a = slots_[static_cast<std::size_t>(slot)];
    // The caller took it out of the prefill instance's running list; its blocks stay held there
    // until the transfer is done.
    remember_session(a.prefill_instance, a.request, a.request.input_tokens);
    const int target = route(1, a.request);
    a.decode_instance = target;
    Instance& decode = instances_[static_cast<std::size_t>(target)];
    ++decode.assigned;
    decode.incoming.push_back(slot);
    start_transfers(target);
}

void ServingSimulator::start_transfers(int index) {
    Instance& inst = instances_[static_cast<std::size_t>(index)];
    while (!inst.incoming.empty()) {
        const int slot = inst.incoming.front();
        Active& a = slots_[static_cast<std::size_t>(slot)];
        const std::int64_t tokens = a.request.input_tokens + a.generated;
        const std::int64_t need = blocks_for(inst, tokens);
        // Room kept for the decoding of every request held, this one included; an instance holding nothing
        // takes any request whose KV fits (else a prompt near the capacity would never move).
        const std::int64_t held =
            static_cast<std::int64_t>(inst.running.size() + inst.waiting.size()) + inst.transferring;
        const std::int64_t reserve = inst.spec.reserved_decode_tokens > 0 && held > 0
                                         ? blocks_for(inst, (held + 1) * inst.spec.reserved_decode_tokens)
                                         : 0;
        if (inst.capacity_blocks - inst.used_blocks < need + reserve) break;
        inst.incoming.pop_front();
        ++inst.transferring;
        a.decode_blocks = need;
        set_used_blocks(inst, inst.used_blocks + need);
        KvTransfer transfer;
        transfer.request = a.request.id;
        transfer.from_instance = decode_only_ ? -1 : a.instance;  // alone, the decode pool's senders are not simulated
        transfer.to_instance = index;
        transfer.tokens = tokens;
        transfer.bytes = config_.kv_transfer.bytes_per_token * static_cast<double>(tokens);
        a.transfer_start = kv_channel_->start(transfer, [this, slot] { transfer_done(slot); });
    }
}

void ServingSimulator::transfer_done(int slot) {
    Active& a = slots_[static_cast<std::size_t>(slot)];
    a.transfer_end = sim_.now();
    if (a.request.arrival >= config_.warmup) kv_transfer_ms_.push_back((a.transfer_end - a.transfer_start).ms());
    const int prefill_index = decode_only_ ? -1 : a.instance;  // alone, the decode pool's senders are not simulated
    if (prefill_index >= 0) {
        Instance& prefill = instances_[static_cast<std::size_t>(prefill_index)];
        set_used_blocks(prefill, prefill.used_blocks - a.blocks);
        --prefill.assigned;
    }
    Instance& decode = instances_[static_cast<std::size_t>(a.decode_instance)];
    --decode.transferring;
    a.instance = a.decode_instance;
    a.blocks = a.decode_blocks;
    a.decode_blocks = 0;
    a.prefilled = a.target;
    decode.waiting.push_back(slot);
    schedule(a.decode_instance);
    if (prefill_index >= 0) schedule(prefill_index);
}

ServingSummary ServingSimulator::summary() const {
    ServingSummary s;
    s.arrived = arrived_;
    s.measured = measured_;
    s.last_arrival = last_arrival_;
    s.completed = completed_;
    s.rejected = rejected_;
    s.preemptions = preemptions_;
    s.requested_output_tokens = requested_output_;
    s.emitted_output_tokens = emitted_output_;
    s.end = end_;
    s.overloaded = overloaded_;
    s.ttft_ms_p50 = percentile(ttft_s_, 50) * 1e3;
    s.ttft_ms_p90 = percentile(ttft_s_, 90) * 1e3;
    s.ttft_ms_p99 = percentile(ttft_s_, 99) * 1e3;
    s.tpot_ms_p50 = percentile(tpot_s_, 50) * 1e3;
    s.tpot_ms_p90 = percentile(tpot_s_, 90) * 1e3;
    s.tpot_ms_p99 = percentile(tpot_s_, 99) * 1e3;
    s.e2e_s_p50 = percentile(e2e_s_, 50);
    s.e2e_s_p90 = percentile(e2e_s_, 90);
    s.e2e_s_p99 = percentile(e2e_s_, 99);
    double speed = 0;
    for (double v : speed_) speed += v;
    s.output_tokens_per_s_per_request_mean = speed_.empty() ? 0.0 : speed / static_cast<double>(speed_.size());

    // Rates over the window from the warm-up to the last arrival (while the offered load is on); a
    // workload whose requests all arrive at once falls back to the whole run.
    ServingCounters from = window_start_.value_or(ServingCounters{});
    ServingCounters to = window_end_.value_or(counters_);
    if (!window_end_) to.at = end_;
    if (!(to.at > from.at)) {
        from = ServingCounters{};
        to = counters_;
        to.at = end_;
    }
    s.window_start = from.at;
    s.window_end = to.at;
    const double window = (to.at - from.at).seconds();
    for (const auto& p : pools_) {
        const double nodes = static_cast<double>(p.spec.instances * p.spec.instance.gpus) / config_.gpus_per_node;
        s.gpus += p.spec.instances * p.spec.instance.gpus;
        if (p.spec.role != InstanceRole::decode) s.prefill_nodes += nodes;
        if (p.spec.role != InstanceRole::prefill) s.decode_nodes += nodes;
    }
    if (window > 0) {
        const double input = to.input_tokens_prefilled - from.input_tokens_prefilled;
        const double decode = to.output_tokens_decode - from.output_tokens_decode;
        const double output = to.output_tokens_total - from.output_tokens_total;
        s.input_tokens_per_s_per_node_prefill = s.prefill_nodes > 0 ? input / window / s.prefill_nodes : 0.0;
        s.output_tokens_per_s_per_node_decode = s.decode_nodes > 0 ? decode / window / s.decode_nodes : 0.0;
        s.in_system_growth_per_s = (to.in_system - from.in_system) / window;
        const double decoding = to.decode_request_seconds - from.decode_request_seconds;
        s.output_tokens_per_s_per_decoding_request = decoding > 0 ? decode / decoding : 0.0;
        s.tokens_per_s_per_gpu = (input + output) / window / s.gpus;
        s.goodput_requests_per_s = static_cast<double>(good_requests_) / window;
    }
    double utilization = 0;
    const double end_s = end_.seconds();
    for (const auto& inst : instances_) {
        const double tail = static_cast<double>(inst.used_blocks) / static_cast<double>(inst.capacity_blocks) *
                            (end_ - inst.utilization_since).seconds();
        if (end_s > 0) utilization += (inst.utilization_integral_s + tail) / end_s;
    }
    s.kv_transfers = static_cast<std::int64_t>(kv_transfer_ms_.size());
    double transfer_ms = 0;
    for (double v : kv_transfer_ms_) transfer_ms += v;
    s.kv_transfer_ms_mean = kv_transfer_ms_.empty() ? 0.0 : transfer_ms / static_cast<double>(kv_transfer_ms_.size());
    s.kv_transfer_ms_p99 = percentile(kv_transfer_ms_, 99);
    s.kv_cache_utilization_mean = instances_.empty() ? 0.0 : utilization / static_cast<double>(instances_.size());
    if (config_.prefix_cache) {
        PrefixCacheSummary c;
        c.prompt_tokens = to.prefix_prompt_tokens - from.prefix_prompt_tokens;
        c.cached_tokens = to.prefix_cached_tokens - from.prefix_cached_tokens;
        c.hit_rate = c.prompt_tokens > 0 ? c.cached_tokens / c.prompt_tokens : 0.0;
        for (const auto& cache : prefix_caches_) {
            c.inserted_blocks += cache.inserted_blocks();
            c.evicted_blocks += cache.evicted_blocks();
            c.held_blocks += cache.size();
        }
        c.loads = static_cast<std::int64_t>(prefix_load_ms_.size());
        c.load_ms_mean = mean(prefix_load_ms_);
        c.load_ms_p99 = percentile(prefix_load_ms_, 99);
        s.prefix_cache = c;
    }
    const double in_system_tail = static_cast<double>(in_system_) * (end_ - in_system_since_).seconds();
    s.mean_requests_in_system = end_s > 0 ? (in_system_integral_s_ + in_system_tail) / end_s : 0.0;
    s.mean_time_in_system_s = left_ > 0 ? time_in_system_sum_s_ / static_cast<double>(left_) : 0.0;
    return s;
}

}  // namespace clustersim
