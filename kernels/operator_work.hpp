// The work of one operator instance: its floating-point operations and the fewest bytes it must move
// through HBM (each input read once, each output written once). The roofline and the utilization
// the cost model borrows between shapes are both computed from these.
#pragma once

#include "kernels/calibration_table.hpp"
#include "sim/core/units.hpp"

namespace clustersim {

struct OperatorWork {
    Flops flops{0.0};
    Bytes bytes{0.0};
    bool uses_tensor_cores = false;  // true for GEMMs and attention: they run at the dtype's tensor-core rate
};

// Throws std::invalid_argument when a field the op needs is 0 (the message names the field).
OperatorWork operator_work(const KernelShape& s);

// Bytes of one element of a dtype: fp8 1, bf16 2, fp32 4.
double element_bytes(const std::string& dtype);

}  // namespace clustersim
