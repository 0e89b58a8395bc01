// Exact checks of published rows, read from the row's own configuration and value text.
#include "exact_checks.hpp"

#include "sim/input/diagnostics.hpp"
#include "sim/moe/eplb_placement.hpp"
#include "sim/pipeline/fixed_chunk_times.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <regex>
#include <sstream>

namespace clustersim {
namespace {

[[noreturn]] void unreadable(const PublishedRow& row, const std::string& what) {
    Diagnostics diagnostics;
    diagnostics.error({"published.csv", row.line, 0}, row.id, fmt::format("cannot read {} from the row", what));
    diagnostics.throw_if_any();
    throw std::logic_error("unreachable");
}

// "layer0 = 1 2 3; layer1 = 4 5" -> {0: [1 2 3], 1: [4 5]}
std::map<int, std::vector<double>> layer_lists(const std::string& text) {
    std::map<int, std::vector<double>> out;
    static const std::regex pattern(R"(layer(\d+)\s*=\s*([0-9 .]+))");
    for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it) {
        std::istringstream numbers((*it)[2].str());
        std::vector<double> values;
        for (double v; numbers >> v;) values.push_back(v);
        out[std::stoi((*it)[1].str())] = values;
    }
    return out;
}

int count_of(const PublishedRow& row, const std::string& noun) {
    const std::regex pattern("(\\d+) " + noun);
    std::smatch m;
    if (!std::regex_search(row.configuration, m, pattern)) unreadable(row, "the number of " + noun);
    return std::stoi(m[1].str());
}

ExactCheck eplb_placement_check(const PublishedRow& row) {
    const auto weights = layer_lists(row.configuration);
    const auto expected = layer_lists(row.value.text);
    if (weights.empty()) unreadable(row, "the expert weights (\"layerN = ...\")");
    if (expected.size() != weights.size()) unreadable(row, "one published map per layer of weights");
    ExpertLoadMatrix load;
    for (const auto& [layer, w] : weights) load.push_back(w);
    const ExpertPlacement placement = rebalance_experts(load, count_of(row, "replicas"), count_of(row, "groups"),
                                                        count_of(row, "nodes"), count_of(row, "GPUs"));
    ExactCheck check{true, ""};
    std::size_t index = 0;
    for (const auto& [layer, map] : expected) {
        std::vector<int> want(map.begin(), map.end());
        const auto& got = placement.phy2log[index++];
        if (got != want) {
            check.matches = false;
            check.note += fmt::format("layer {}: computed {} but published {}; ", layer, fmt::join(got, " "),
                                      fmt::join(want, " "));
        }
    }
    check.note = check.matches ? fmt::format("phy2log computed by EPLB's hierarchical placement (sim/moe) equals the "
                                             "published map for all {} layers",
                                             expected.size())
                               : "phy2log differs: " + check.note;
    return check;
}


// ---- pipeline schedules (X1): closed forms of the DualPipe README, with fixed chunk times ----------

struct ChunkTimes {
    int f = 1, b = 2, w = 1, f_and_b = 3;  // the README's B is a full backward chunk (input and weight gradients)
};

// "F=1 B=2 W=1 F&B=3" from the row's figure.
ChunkTimes chunk_times(const PublishedRow& row) {
    ChunkTimes t;
    auto read = [&](const std::string& name, int& into) {
        const std::regex pattern(name + "=(\\d+)");
        std::smatch m;
        if (!std::regex_search(row.figure, m, pattern)) unreadable(row, "the chunk time " + name);
        into = std::stoi(m[1].str());
    };
    read("F", t.f);
    read("B", t.b);
    read("W", t.w);
    read("F&B", t.f_and_b);
    return t;
}

struct ScheduleFacts {
    std::int64_t bubble = 0;  // the largest per-rank bubble (the README table's figure)
    int peak_activations = 0;  // the largest per-rank peak
};

ScheduleFacts run_fixed(ScheduleKind kind, int ranks, int micro_batches, const ChunkTimes& t) {
    Simulator sim;
    FixedPipelineEnvironment env(t.f, t.b, t.w, t.f_and_b);
    const PipelineRun run = run_pipeline(sim, make_pipeline_schedule(kind, ranks, micro_batches), env);
    ScheduleFacts facts;
    for (const Time b : run.bubble) facts.bubble = std::max(facts.bubble, b.ps());
    facts.peak_activations = *std::max_element(run.peak_activations.begin(), run.peak_activations.end());
    return facts;
}

// "PP4: 2; PP8: 6; PP16: 14" -> {4: 2, 8: 6, 16: 14}
std::map<int, std::int64_t> per_pp(const std::string& text) {
    std::map<int, std::int64_t> out;
    static const std::regex pattern(R"(PP(\d+):\s*(\d+))");
    for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it)
        out[std::stoi((*it)[1].str())] = std::stoll((*it)[2].str());
    return out;
}

ExactCheck dualpipe_bubble_check(const PublishedRow& row) {
    const ChunkTimes t = chunk_times(row);
    const auto expected = per_pp(row.value.text);
    if (expected.empty()) unreadable(row, "the bubbles per PP (\"PP4: 2; ...\")");
    ExactCheck check{true, ""};
    std::vector<std::string> parts;
    for (const auto& [pp, want] : expected) {
        for (int n : {2 * pp, 4 * pp + 2}) {  // the README's N >= 2PP: the smallest and a larger count
            const auto got = run_fixed(ScheduleKind::dualpipe, pp, n, t).bubble;
            if (got != want) check.matches = false;
            parts.push_back(fmt::format("PP{} N={}: {}", pp, n, got));
        }
    }
    check.note = fmt::format("{} DualPipe schedule (sim/pipeline) with F={} B={} W={} F&B={}, largest per-rank bubble: {}",
                             check.matches ? "simulated" : "MISMATCH:", t.f, t.b, t.w, t.f_and_b, fmt::join(parts, ", "));
    return check;
}

ExactCheck one_f_one_b_bubble_check(const PublishedRow& row) {
    // The value is the two closed forms; they are checked as written, at the X1a chunk times.
    if (row.value.text != "(PP-1)(F+B); (PP-1)(F+B-2W)") unreadable(row, "the formulas (PP-1)(F+B); (PP-1)(F+B-2W)");
    const ChunkTimes t;
    ExactCheck check{true, ""};
    std::vector<std::string> parts;
    for (int pp : {4, 8, 16}) {
        const auto one = run_fixed(ScheduleKind::one_f_one_b, pp, 2 * pp, t).bubble;
        const auto zb = run_fixed(ScheduleKind::zb1p, pp, 2 * pp, t).bubble;
        if (one != (pp - 1) * (t.f + t.b) || zb != (pp - 1) * (t.f + t.b - 2 * t.w)) check.matches = false;
        parts.push_back(fmt::format("PP{}: 1F1B {}, ZB1P {}", pp, one, zb));
    }
    check.note = fmt::format("{} with F={} B={} W={} (largest per-rank bubble): {}",
                             check.matches ? "simulated 1F1B and ZB1P equal the formulas" : "MISMATCH:", t.f, t.b, t.w,
                             fmt::join(parts, "; "));
    return check;
}

ExactCheck activation_check(const PublishedRow& row) {
    static const std::regex dual(R"(DualPipe PP\+1 \((\d+), (\d+), (\d+) for PP (\d+), (\d+), (\d+)\))");
    std::smatch m;
    if (!std::regex_search(row.value.text, m, dual)) unreadable(row, "DualPipe's activations per PP");
    if (row.value.text.find("DualPipeV 2R+1") == std::string::npos) unreadable(row, "DualPipeV's 2R+1");
    const ChunkTimes t;
    ExactCheck check{true, ""};
    std::vector<std::string> parts;
    for (int i = 0; i < 3; ++i) {
        const int want = std::stoi(m[static_cast<std::size_t>(1 + i)].str());
        const int pp = std::stoi(m[static_cast<std::size_t>(4 + i)].str());
        const int got = run_fixed(ScheduleKind::dualpipe, pp, 2 * pp, t).peak_activations;
        const int got_v = run_fixed(ScheduleKind::dualpipev, pp / 2, 2 * pp, t).peak_activations;
        if (got != want || got != pp + 1 || got_v != pp + 1) check.matches = false;
        parts.push_back(fmt::format("DualPipe PP{} {}, DualPipeV R={} {}", pp, got, pp / 2, got_v));
    }
    check.note = fmt::format("{} peak micro-batch activations per rank: {}",
                             check.matches ? "simulated" : "MISMATCH:", fmt::join(parts, "; "));
    return check;
}

}  // namespace

std::optional<ExactCheck> run_exact_check(const PublishedRow& row) {
    if (row.id.starts_with("X2")) return eplb_placement_check(row);
    if (row.id == "X1a") return dualpipe_bubble_check(row);
    if (row.id == "X1b") return one_f_one_b_bubble_check(row);
    if (row.id == "X1c") return activation_check(row);
    return std::nullopt;
}

}  // namespace clustersim
