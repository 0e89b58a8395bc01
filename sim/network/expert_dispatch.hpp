// Expert-parallel dispatch and combine as DeepEP performs them (github.com/deepseek-ai/DeepEP).
//
// Normal mode (high throughput, for training and prefill): node-limited routing; each token goes
// once over InfiniBand to the GPU of the same rail on every node that hosts one of its experts,
// and that GPU forwards it over NVLink to the GPUs holding the experts; the forwarding is
// pipelined with the RDMA receive in chunks. Dispatch carries FP8 with one float scale per 128
// values, combine carries BF16 and reduces on the way back. The kernels hold a fixed number of SMs.
// Low-latency mode (decode): each (token, selected expert) is sent directly by RDMA to the GPU of
// the expert (over NVLink inside a host), no SMs held while data is in flight.
//
// Besides the bytes on the links, the graphs carry three mechanisms of DeepEP's kernels, each with
// its source in expert_dispatch.cpp: the notify kernel's barrier rounds before a normal-mode call;
// the count (or flag) message that follows each low-latency (sender, receiver) pair's data; and the
// normal-mode copy throughput of the SMs the kernels hold (a rate cap per GPU and SM role, left out
// where the GPU's own links are slower).
#pragma once

#include "transfer_dag.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace clustersim {

enum class ExpertCommMode { normal, low_latency };
enum class ExpertCommPhase { dispatch, combine };

struct ExpertParallelSpec {
    std::vector<int> gpus;        // the EP ranks, host by host
    int experts = 256;            // routed experts, spread evenly over the ranks in order
    int top_k = 8;                // experts per token
    int node_limit = 4;           // at most this many hosts per token (DeepSeek-V3's group-limited routing)
    int tokens_per_gpu = 4096;
    int hidden = 7168;
    ExpertCommMode mode = ExpertCommMode::normal;
    ExpertCommPhase phase = ExpertCommPhase::dispatch;
    bool fp8_dispatch = true;     // dispatch payload in FP8 with scales (else BF16), both modes
    int pipeline_chunks = 8;      // normal mode: RDMA chunks that NVLink forwarding follows
    int sms = 20;                 // SMs the normal-mode kernels take from compute
    // Model the notify barriers (normal mode) and count messages (low-latency mode) as zero-byte
    // messages on the topology, which cost the paths' latencies.
    bool kernel_sync = true;
    // Cap each GPU's normal-mode copy rate by the SMs holding each role (sms / 2 channels) times
    // DeepEP's per-SM read/write throughput.
    bool sm_copy_limit = true;
};

// DeepEP's per-SM throughput model (see expert_dispatch.cpp for the source).
Bandwidth deepep_sm_write_rate();
Bandwidth deepep_sm_read_rate();

// Which experts each token of each rank selected: routing[rank][token * top_k + j].
using TokenRouting = std::vector<std::vector<int>>;

// Balanced, node-limited top-k routing: every token picks min(node_limit, hosts) hosts uniformly
// at random, then top_k distinct experts uniformly among the experts on those hosts. This is what
// DeepEP's own benchmarks do (random scores, top-k groups with one group per node).
TokenRouting balanced_routing(const ExpertParallelSpec& spec, const Topology& topology, std::uint64_t seed);

// Bytes of one token on the wire, as DeepEP counts them.
double dispatch_token_bytes(const ExpertParallelSpec& spec);  // normal mode
double combine_token_bytes(const ExpertParallelSpec& spec);
// Low-latency messages per (token, expert): a 16-byte header and FP8 values with a 4-byte scale per 128
// (or BF16 values without fp8_dispatch).
double low_latency_dispatch_message_bytes(const ExpertParallelSpec& spec);
double low_latency_combine_message_bytes(const ExpertParallelSpec& spec);

struct ExpertCommPlan {
    TransferDag dag;
    // Per rank, the logical bytes DeepEP's tests divide by the kernel time: RDMA bytes (one token
    // per distinct destination host, the sender's own host included) for internode normal mode,
    // NVLink bytes received (one token per distinct destination GPU, itself included) within a
    // host, and all (token, expert) messages in low-latency mode.
    std::vector<double> logical_bytes;
    std::string logical_bytes_kind;  // "rdma", "nvlink" or "messages"
    double ib_bytes = 0;             // bytes that actually cross InfiniBand
    double nvlink_bytes = 0;         // bytes that actually cross NVLink
};

ExpertCommPlan build_expert_comm(const ExpertParallelSpec& spec, const TokenRouting& routing, const Topology& topology);

}  // namespace clustersim
