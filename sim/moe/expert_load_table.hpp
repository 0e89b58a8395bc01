// Reading a measured per-layer expert load table from CSV, every bad row reported by file and line.
//
// Format: a header naming the columns layer, expert and load (any order), then one row per
// (layer, expert); '#' starts a comment line. layer and expert are non-negative integers, load a
// finite non-negative number in any unit (tokens routed, a share). Every layer from 0 to the
// largest needs a row for every expert from 0 to the largest, each exactly once. Example:
//     layer,expert,load
//     0,0,90
//     0,1,132
#pragma once

#include "sim/moe/eplb_placement.hpp"

#include <string>

namespace clustersim {

// Returns load[layer][expert]. Throws std::runtime_error listing every problem, each as
// "<path>:<line>: <what is wrong>" (or "<path>: ..." for a problem of the whole table).
ExpertLoadMatrix read_expert_load_table(const std::string& path);

}  // namespace clustersim
