// Exact checks: published rows whose value is not a measurement but an exact answer (a placement
// map, a closed form), computed by the simulator's own code from the inputs written in the row.
#pragma once

#include "sim/validation/published_set.hpp"

#include <optional>
#include <string>

namespace clustersim {

struct ExactCheck {
    bool matches = false;
    std::string note;  // what was computed and how it compares
};

// The check for `row` if there is one for its id (X2*: EPLB placement), else nullopt. Throws
// InputError when the row's text cannot be read as the check expects.
std::optional<ExactCheck> run_exact_check(const PublishedRow& row);

}  // namespace clustersim
