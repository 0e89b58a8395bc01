// The predicted time of one decoder layer on one GPU: the models library's operator graph priced
// operator by operator with the kernel cost model, with totals and the provenance of the answer.
//
// This is the execution level's simplest question (one layer, one stream, operators back to back);
// `clustersim layer` prints it, and the training and serving simulators reuse it to price the compute
// of a layer. Communication operators (TP all-reduce, EP dispatch/combine) are listed with their
// payload but not priced: their time depends on the cluster, which the network model (sim/network)
// answers.
#pragma once

#include "kernels/kernel_cost_model.hpp"
#include "models/model_spec.hpp"
#include "models/operator_graph.hpp"
#include "sim/core/units.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace clustersim {

// The layer `clustersim layer` prices when the user names none: the first MoE layer of an MoE model
// (its routed experts dominate the per-layer cost and most layers are MoE), else layer 0.
int representative_layer(const ModelSpec& m);

// The kernel cost model's query for a compute operator: kernel_op(op) names its op, and only the fields
// that op's tables fill are set (kernels/README.md), so the query can land on the measured grid. Throws
// std::invalid_argument for operators without a kernel table (kernel_op(op) == ""): communication,
// layernorm, gelu, embedding.
KernelShape kernel_shape(const Operator& op);

// The predicted time of one compute operator: the kernel cost model's answer (times op.kernel_scale for
// the backward of an element-wise operator, priced by its forward kernel), or for operators without
// a kernel table (layernorm, gelu, cross_entropy) a memory roofline from the graph's bytes. Throws
// std::invalid_argument for communication operators.
KernelPrediction predict_operator(const Operator& op, const KernelCostModel& cost_model);

// Whether an operator's FLOPs at the datasheet peak take longer than its bytes at the HBM bandwidth:
// the kind of kernel that slows when communication kernels hold some of the SMs.
bool compute_bound(const Operator& op, const GpuSpec& spec);

struct OperatorCost {
    Operator op;
    std::string kernel_op;  // the cost model's op name; "" when priced by the graph's own bytes or not at all
    bool priced = true;     // false for communication operators: the network model prices them
    KernelPrediction prediction;  // meaningful only when priced
};

// Predicted time resting on one provenance kind.
struct ProvenanceShare {
    Provenance provenance = Provenance::roofline;
    Time time;
    double share = 0;  // of the layer's compute time; the shares of a layer add to 1
    int operators = 0;
};

struct LayerCost {
    std::string model;
    std::string gpu;
    int layer = 0;
    bool moe_layer = false;
    OperatorGraphOptions options;
    std::vector<OperatorCost> operators;  // in execution order, communication operators included
    Time compute_time;                    // sum over the priced operators, run back to back on one stream
    Flops flops;                          // of the priced operators
    Bytes bytes;                          // HBM bytes read and written by the priced operators
    Bytes communication_bytes;            // payload per rank of the excluded communication operators
    int communication_operators = 0;
    std::vector<ProvenanceShare> provenance;  // one entry per kind present, in Provenance order
};

// Prices decoder layer `layer` of `m` under `options` on the cost model's GPU. Operators the cost
// model has no table for (layernorm, gelu) get a memory roofline from the graph's bytes at the
// spec's efficiency, with provenance roofline. Throws std::invalid_argument for a layout, batch or
// layer the operator graph rejects, TimeOverflow when an operator's time or the layer's total is past
// the simulator's clock (2^63 ps, about 106.7 days).
LayerCost predict_layer_cost(const ModelSpec& m, int layer, const OperatorGraphOptions& options,
                             const KernelCostModel& cost_model);

// The same for scripts (`clustersim layer --json`): times in microseconds, every operator with its shape.
nlohmann::ordered_json layer_cost_json(const LayerCost& cost);
// A table for people: one line per operator, then totals, provenance shares and excluded communication.
std::string layer_cost_text(const LayerCost& cost);

}  // namespace clustersim
