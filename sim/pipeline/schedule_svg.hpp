// An SVG drawing of an executed pipeline schedule, in the style of the DualPipe README figure.
#pragma once

#include "sim/pipeline/pipeline_executor.hpp"
#include "sim/pipeline/pipeline_schedule.hpp"

#include <string>

namespace clustersim {

// Ranks as rows, simulated time on x, one box per work item coloured by kind (F, B, W, full
// backward), a lighter and a darker shade for DualPipe's two directions (for DualPipeV: the two
// halves of the V), an overlapped F&B pair as its two halves inside one black border, the
// micro-batch number (counted within its direction, as the DualPipe figure does) inside each box,
// and a legend. Plain SVG 1.1 text; the same inputs give the same bytes. `title` is escaped.
std::string pipeline_svg(const PipelineSchedule& schedule, const PipelineRun& run, const std::string& title);

}  // namespace clustersim
