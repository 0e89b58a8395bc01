// Tests of the SVG drawing: well-formed, one box per work item, deterministic, escaped.
#include "sim/pipeline/schedule_svg.hpp"
#include "tests/pipeline/pipeline_test_support.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace clustersim;
using Catch::Matchers::Contains;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

// True if every element opened is closed, in order (enough for the SVG we write: no comments,
// CDATA or '>' inside attribute values).
bool tags_balanced(const std::string& svg) {
    std::vector<std::string> open;
    for (std::size_t at = svg.find('<'); at != std::string::npos; at = svg.find('<', at + 1)) {
        const std::size_t end = svg.find('>', at);
        if (end == std::string::npos) return false;
        const std::string tag = svg.substr(at + 1, end - at - 1);
        if (tag.empty()) return false;
        if (tag.front() == '/') {
            if (open.empty() || open.back() != tag.substr(1)) return false;
            open.pop_back();
        } else if (tag.back() != '/') {
            open.push_back(tag.substr(0, tag.find(' ')));
        }
    }
    return open.empty();
}

}  // namespace

TEST_CASE("the schedule SVG is well formed, with one box per work item") {
    for (const auto kind : {ScheduleKind::dualpipe, ScheduleKind::zb1p, ScheduleKind::interleaved_1f1b}) {
        INFO(to_string(kind));
        const auto s = make_pipeline_schedule(kind, 4, 8, kind == ScheduleKind::interleaved_1f1b ? 2 : 1);
        const PipelineRun run = test::run_fixed(s, 1, 2, 1, 3);
        const std::string svg = pipeline_svg(s, run, "a <schedule> & its \"title\"");
        CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
        CHECK(tags_balanced(svg));
        std::size_t items = 0, pairs = 0;
        for (const ExecutedInstruction& e : run.timeline) {
            items += e.instruction.items.size();
            pairs += e.instruction.items.size() == 2 ? 1 : 0;
        }
        CHECK(count(svg, "<rect class=\"item\"") == items);
        CHECK(count(svg, "<rect class=\"pair\"") == pairs);
        CHECK(count(svg, "<text class=\"rank\"") == 4);
        CHECK_THAT(svg, Contains("a &lt;schedule&gt; &amp; its &quot;title&quot;"));
        CHECK(svg.find("<schedule>") == std::string::npos);
    }
}

TEST_CASE("the DualPipe SVG shades the two directions and marks overlapped pairs in its legend") {
    const auto s = make_pipeline_schedule(ScheduleKind::dualpipe, 8, 20);
    const std::string svg = pipeline_svg(s, test::run_fixed(s, 1, 2, 1, 3), "DualPipe, 8 ranks, 20 micro-batches");
    CHECK_THAT(svg, Contains("F forward, forward direction") && Contains("F forward, reverse direction") &&
                        Contains("overlapped F&amp;B pair") && Contains("W weight gradient, reverse direction"));
    // Micro-batches are numbered within their direction, as in the DualPipe figure: 0..9 each way.
    CHECK(svg.find(">10</text>") == std::string::npos);
    CHECK(svg.find(">9</text>") != std::string::npos);
}

TEST_CASE("the schedule SVG is deterministic") {
    const auto s = make_pipeline_schedule(ScheduleKind::dualpipev, 4, 10);
    const std::string a = pipeline_svg(s, test::run_fixed(s, 1, 2, 1, 3), "DualPipeV");
    const std::string b = pipeline_svg(s, test::run_fixed(s, 1, 2, 1, 3), "DualPipeV");
    CHECK(a == b);
}
