// Collectives decomposed into point-to-point transfers: ring and tree all-reduce, all-gather,
// reduce-scatter, all-to-all, point-to-point, and hierarchical variants (NVLink inside each host,
// InfiniBand across).
//
// Sizes follow the conventions of NVIDIA's nccl-tests (doc/PERFORMANCE.md), so results compare
// directly with published NCCL figures: `size` is the per-rank buffer of an all-reduce, the
// gathered output of an all-gather, the input of a reduce-scatter, and the data each rank sends in
// an all-to-all. Algorithm bandwidth is size / time; bus bandwidth scales it by the share of the
// data each rank must move over its busiest link (2(n-1)/n for all-reduce, (n-1)/n for
// all-gather, reduce-scatter and all-to-all, 1 for point-to-point).
#pragma once

#include "transfer_dag.hpp"

#include <string>
#include <vector>

namespace clustersim {

enum class CollectiveOp { all_reduce, all_gather, reduce_scatter, all_to_all, point_to_point };
enum class CollectiveAlgorithm { ring, tree, hierarchical, direct };

const char* to_string(CollectiveOp op);
const char* to_string(CollectiveAlgorithm algorithm);
const std::vector<std::string>& collective_op_names();
const std::vector<std::string>& collective_algorithm_names();
CollectiveOp collective_op_from(const std::string& name);
CollectiveAlgorithm collective_algorithm_from(const std::string& name);

struct CollectiveSpec {
    CollectiveOp op = CollectiveOp::all_reduce;
    CollectiveAlgorithm algorithm = CollectiveAlgorithm::ring;
    std::vector<int> gpus;  // the ranks, in ring order; point-to-point sends gpus[0] -> gpus[1]
    Bytes size;
    int chunks = 1;  // pipeline chunks of the tree algorithm
};

// nccl-tests' bus-bandwidth factor for `op` on n ranks.
double bus_bandwidth_factor(CollectiveOp op, std::size_t ranks);

// Builds the transfer graph of a collective. Hierarchical algorithms group the ranks by host
// using `topology`; they need the same number of ranks on every host involved.
TransferDag build_collective(const CollectiveSpec& spec, const Topology& topology);

// Pieces the builders share, exposed for the hierarchical and expert-parallel builders.
// Ring reduce-scatter or all-gather of `size` (the full buffer) among `ranks`: n-1 steps of
// size/n each. `after[i]` is what rank i must wait for before its first send (may be empty).
// Returns, per rank, the transfer after which that rank holds its result.
std::vector<TransferId> add_ring_phase(TransferDag& dag, const std::vector<int>& ranks, Bytes size, int steps,
                                       const std::vector<std::vector<TransferId>>& after, const std::string& label);

}  // namespace clustersim
