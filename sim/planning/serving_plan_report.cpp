// The outputs of a serving capacity search (see serving_plan_report.hpp).
#include "sim/planning/serving_plan_report.hpp"

#include "sim/charts/gnuplot_chart.hpp"
#include "sim/planning/plan_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>

namespace clustersim {
namespace fs = std::filesystem;

namespace {

double metric(const nlohmann::ordered_json& summary, const std::string& key) {
    const auto it = summary.find(key);
    return it != summary.end() && it->is_number() ? it->get<double>() : 0.0;
}

// A Markdown table cell: no pipes or line breaks.
std::string cell(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
}

const std::vector<PoolCandidate>& candidates_of(const ServingPlanResult& r, PoolKind kind) {
    return kind == PoolKind::prefill ? r.prefill : kind == PoolKind::decode ? r.decode : r.colocated;
}

const PoolCandidate& first_pool(const ServingPlanResult& r, const ServingPlanRow& row) {
    return candidates_of(r, row.mode == "colocated" ? PoolKind::colocated
                                                    : PoolKind::prefill)[static_cast<std::size_t>(row.first_candidate)];
}

std::string time_text(const std::optional<Time>& t) {
    return t ? fmt::format("{:.4g} ms", t->ms()) : "none";
}

// The pools' runs that bracket a candidate's fewest count: the count below it, which misses.
const PoolRun* run_at(const ServingPlanResult& r, PoolKind kind, int candidate, int instances) {
    for (const auto& run : r.runs)
        if (run.kind == kind && run.candidate == candidate && run.instances == instances) return &run;
    return nullptr;
}

std::string shares_text(const nlohmann::ordered_json& summary, const std::string& pool) {
    const auto prov = summary.find("provenance");
    if (prov == summary.end() || !prov->contains(pool)) return "";
    const auto& p = (*prov)[pool];
    if (!p.contains("time_shares")) return "";
    std::string out;
    for (const auto& [kind, share] : p["time_shares"].items())
        out += fmt::format("{}{} {:.0f}%", out.empty() ? "" : ", ", kind, 100 * share.get<double>());
    return out;
}

void write_pools_csv_cell(const ServingPlanResult& r, const fs::path& path) {
    std::ofstream f(path);
    const int p = r.spec.percentile;
    f << fmt::format(
        "pool,candidate,settings,gpus_per_instance,instances,rate_per_instance,duration_s,meets,verdict,"
        "ttft_ms_p{0},tpot_ms_p{0},output_tokens_per_s_per_decoding_request,tokens_per_s_per_gpu,"
        "in_system_growth_per_s,kv_cache_utilization_mean,completed_requests\n",
        p);
    for (const auto& run : r.runs) {
        const PoolCandidate& c = candidates_of(r, run.kind)[static_cast<std::size_t>(run.candidate)];
        f << fmt::format("{},{},{},{},{},{:.6g},{:.6g},{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.0f}\n",
                         to_string(run.kind), run.candidate, csv_cell(c.description), c.gpus, run.instances,
                         run.rate_per_instance, run.duration_s, run.meets ? "yes" : "no", csv_cell(run.verdict),
                         metric(run.summary, fmt::format("ttft_ms_p{}", p)),
                         metric(run.summary, fmt::format("tpot_ms_p{}", p)),
                         metric(run.summary, "output_tokens_per_s_per_decoding_request"),
                         metric(run.summary, "tokens_per_s_per_gpu"), metric(run.summary, "in_system_growth_per_s"),
                         metric(run.summary, "kv_cache_utilization_mean"), metric(run.summary, "completed_requests"));
    }
    // Candidates the scenario rejects have no run: one row each, so that every candidate is accounted for.
    for (auto kind : {PoolKind::prefill, PoolKind::decode, PoolKind::colocated})
        for (const auto& c : candidates_of(r, kind))
            if (!c.invalid.empty())
                f << fmt::format("{},{},{},,,,,invalid,{},,,,,,,\n", to_string(kind), c.index, csv_cell(c.description),
                                 csv_cell(c.invalid));
}

void write_plans_csv_cell(const ServingPlanResult& r, const fs::path& path) {
    std::ofstream f(path);
    const int p = r.spec.percentile;
    f << fmt::format(
        "plan,mode,first_pool,first_candidate,first_settings,first_instances,decode_candidate,"
        "decode_settings,decode_instances,gpus,ttft_ms_p{0},tpot_ms_p{0},tokens_per_s_per_gpu,"
        "tokens_per_s_per_user,meets,on_front\n",
        p);
    for (const auto& row : r.rows) {
        const PoolCandidate& a = first_pool(r, row);
        const bool dis = row.mode == "disaggregated";
        f << fmt::format(
            "{},{},{},{},{},{},{},{},{},{},{:.6g},{:.6g},{:.6g},{:.6g},{},{}\n", row.plan, row.mode, to_string(a.kind),
            a.index, csv_cell(a.description), row.first_instances, dis ? std::to_string(row.second_candidate) : "",
            dis ? csv_cell(r.decode[static_cast<std::size_t>(row.second_candidate)].description) : "",
            dis ? std::to_string(row.second_instances) : "", row.gpus, row.ttft_ms, row.tpot_ms,
            row.tokens_per_s_per_gpu, row.tokens_per_s_per_user, row.meets ? "yes" : "no", row.on_front ? "yes" : "no");
    }
}

ChartFiles write_front_chart(const ServingPlanResult& r, const fs::path& dir) {
    ChartSpec chart;
    chart.title = fmt::format("{}: plans meeting the objectives at {:.4g} requests/s", r.spec.name, r.spec.rate_per_s);
    chart.x_label = "output tokens/s per user (decoding request)";
    chart.y_label = "tokens/s per GPU (input + output)";
    ChartSeries dis, col, front;
    dis.title = "disaggregated";
    col.title = "colocated";
    front.title = "Pareto front";
    front.style = ChartStyle::linespoints;
    for (const auto& row : r.rows) {
        if (!row.meets) continue;
        (row.mode == "colocated" ? col : dis).points.emplace_back(row.tokens_per_s_per_user, row.tokens_per_s_per_gpu);
        if (row.on_front) front.points.emplace_back(row.tokens_per_s_per_user, row.tokens_per_s_per_gpu);
    }
    std::sort(front.points.begin(), front.points.end());
    for (auto* s : {&dis, &col, &front})
        if (!s->points.empty()) chart.series.push_back(*s);
    if (r.best) {
        const auto& b = r.rows[*r.best];
        chart.labels.push_back({b.tokens_per_s_per_user, b.tokens_per_s_per_gpu, fmt::format("best: plan {}", b.plan)});
    }
    return write_chart(dir, "pareto", chart);
}

nlohmann::ordered_json row_json(const ServingPlanResult& r, const ServingPlanRow& row) {
    return {{"plan", row.plan},
            {"mode", row.mode},
            {"description", describe_plan_row(r, row)},
            {"gpus", row.gpus},
            {fmt::format("ttft_ms_p{}", r.spec.percentile), row.ttft_ms},
            {fmt::format("tpot_ms_p{}", r.spec.percentile), row.tpot_ms},
            {"tokens_per_s_per_gpu", row.tokens_per_s_per_gpu},
            {"tokens_per_s_per_user", row.tokens_per_s_per_user}};
}

void write_report(const ServingPlanResult& r, const fs::path& path, const ChartFiles& chart) {
    const auto& s = r.spec;
    const int p = s.percentile;
    std::ofstream f(path);
    f << fmt::format("# Serving capacity plan: {}\n\n", s.name);
    if (!s.description.empty()) f << s.description << "\n\n";
    f << fmt::format(
        "**Question.** Serve {:.6g} requests/s (Poisson; lengths, model, GPU and the rest as in `{}`) with "
        "TTFT p{} at most {} and TPOT p{} at most {}, on the fewest GPUs.",
        s.rate_per_s, s.base.filename().string(), p, time_text(s.ttft_slo), p, time_text(s.tpot_slo));
    if (!s.load.basis.empty())
        f << fmt::format(
            " The rate is the load of {:.4g} {} tokens a day over 86,400 s at the base's mean {} "
            "length of {:.6g} tokens.",
            s.load.tokens_per_day, s.load.basis == "input_tokens_per_day" ? "input" : "output",
            s.load.basis == "input_tokens_per_day" ? "prompt" : "output", s.load.mean_tokens);
    f << "\n\n";

    std::size_t meeting = 0;
    for (const auto& row : r.rows) meeting += row.meets ? 1 : 0;
    if (r.best) {
        const auto& row = r.rows[*r.best];
        const auto& v = r.verified.back();
        f << fmt::format("**Answer.** Plan {}: {}, **{} GPUs**.\n\n", row.plan, describe_plan_row(r, row), row.gpus);
        f << "| metric | pools simulated alone (the search) | whole deployment (`best.yaml`) |\n|---|---|---|\n";
        f << fmt::format("| TTFT p{} (ms) | {:.4g} | {:.4g} |\n", p, row.ttft_ms,
                         metric(v.summary, fmt::format("ttft_ms_p{}", p)));
        f << fmt::format("| TPOT p{} (ms) | {:.4g} | {:.4g} |\n", p, row.tpot_ms,
                         metric(v.summary, fmt::format("tpot_ms_p{}", p)));
        f << fmt::format("| output tokens/s per user | {:.4g} | {:.4g} |\n", row.tokens_per_s_per_user,
                         metric(v.summary, "output_tokens_per_s_per_decoding_request"));
        f << fmt::format("| tokens/s per GPU | {:.4g} | {:.4g} |\n", row.tokens_per_s_per_gpu,
                         metric(v.summary, "tokens_per_s_per_gpu"));
        f << fmt::format("| requests/s meeting both objectives | | {:.4g} of {:.4g} |\n\n",
                         metric(v.summary, "goodput_requests_per_s"), s.rate_per_s);
    } else if (r.verified.empty()) {
        f << fmt::format(
            "**Answer.** No plan meets the objectives: of {} plans, none had every pool within them "
            "(see the candidates below).\n\n",
            r.rows.size());
    } else {
        f << fmt::format(
            "**Answer.** No plan was confirmed: the {} best plans by their pools each missed the "
            "objectives as a whole deployment (below). Raise `verify`, or relax the objectives.\n\n",
            r.verified.size());
    }
    if (!r.verified.empty()) {
        f << "Whole-deployment runs (fewest GPUs first, until one meets the objectives):\n\n"
             "| plan | GPUs | verdict | run |\n|---|---|---|---|\n";
        for (const auto& v : r.verified)
            f << fmt::format("| {} | {} | {} | `verify/plan-{}/` |\n", v.plan, r.rows[v.plan].gpus, cell(v.verdict),
                             v.plan);
        f << "\n";
    }

    // Why: per pool, what each candidate needs and what limits it.
    f << "## Why this plan\n\n";
    const auto explain_pool = [&](PoolKind kind, const char* role) {
        const auto& cs = candidates_of(r, kind);
        if (cs.empty()) return;
        std::vector<const PoolCandidate*> sized;
        for (const auto& c : cs)
            if (c.fewest) sized.push_back(&c);
        std::sort(sized.begin(), sized.end(), [](const PoolCandidate* a, const PoolCandidate* b) {
            return *a->fewest * a->gpus != *b->fewest * b->gpus ? *a->fewest * a->gpus < *b->fewest * b->gpus
                                                                : a->index < b->index;
        });
        f << fmt::format("**{} candidates**, by the GPUs the pool needs ({} of {} can meet the objectives):\n\n", role,
                         sized.size(), cs.size());
        f << "| candidate | settings | GPUs/instance | fewest instances | pool GPUs | at the fewest | one instance "
             "fewer "
             "|\n|---|---|---|---|---|---|---|\n";
        for (std::size_t i = 0; i < sized.size() && i < 8; ++i) {
            const auto& c = *sized[i];
            const PoolRun* at = run_at(r, kind, c.index, *c.fewest);
            const PoolRun* below = *c.fewest > 1 ? run_at(r, kind, c.index, *c.fewest - 1) : nullptr;
            std::string here;
            if (at) {
                if (kind != PoolKind::decode)
                    here += fmt::format("TTFT p{} {:.4g} ms", p, metric(at->summary, fmt::format("ttft_ms_p{}", p)));
                if (kind != PoolKind::prefill)
                    here += fmt::format("{}TPOT p{} {:.4g} ms, {:.3g} tok/s/user", here.empty() ? "" : ", ", p,
                                        metric(at->summary, fmt::format("tpot_ms_p{}", p)),
                                        metric(at->summary, "output_tokens_per_s_per_decoding_request"));
                const std::string shares = shares_text(at->summary, to_string(kind));
                if (!shares.empty()) here += fmt::format(" (time: {})", shares);
            }
            f << fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", c.index, cell(c.description), c.gpus, *c.fewest,
                             *c.fewest * c.gpus, cell(here), below ? cell(below->verdict) : "-");
        }
        if (sized.size() > 8) f << fmt::format("\n({} more in pools.csv.)\n", sized.size() - 8);
        f << "\n";
    };
    explain_pool(PoolKind::prefill, "Prefill");
    explain_pool(PoolKind::decode, "Decode");
    explain_pool(PoolKind::colocated, "Colocated");
    if (s.disaggregated && s.colocated) {
        std::optional<std::size_t> best_of[2];
        for (const auto& row : r.rows) {
            if (!row.meets) continue;
            auto& b = best_of[row.mode == "colocated" ? 1 : 0];
            if (!b || row.gpus < r.rows[*b].gpus) b = row.plan;
        }
        f << "**Disaggregated or colocated.** ";
        for (int k = 0; k < 2; ++k)
            f << fmt::format("{}{}", k ? "; " : "",
                             best_of[k]
                                 ? fmt::format("{} fewest GPUs {} is {} (plan {})", k ? "the" : "The",
                                               k ? "colocated" : "disaggregated", r.rows[*best_of[k]].gpus, *best_of[k])
                                 : fmt::format("{} {} plan meets the objectives", k ? "no" : "No",
                                               k ? "colocated" : "disaggregated"));
        f << " (pools simulated alone).\n\n";
    }

    // The front.
    f << fmt::format(
        "## Pareto front\n\nTokens/s per GPU against output tokens/s per user over the {} plans that "
        "meet the objectives (pools simulated alone). ",
        meeting);
    f << (chart.drawn ? "Chart: `pareto.svg`.\n\n" : fmt::format("{}\n\n", chart.note));
    std::vector<const ServingPlanRow*> front;
    for (const auto& row : r.rows)
        if (row.on_front) front.push_back(&row);
    std::sort(front.begin(), front.end(), [](const ServingPlanRow* a, const ServingPlanRow* b) {
        return a->tokens_per_s_per_user < b->tokens_per_s_per_user;
    });
    f << fmt::format(
        "| plan | deployment | GPUs | tokens/s/GPU | tokens/s/user | TTFT p{0} ms | TPOT p{0} ms |\n"
        "|---|---|---|---|---|---|---|\n",
        p);
    for (const auto* row : front)
        f << fmt::format("| {} | {} | {} | {:.4g} | {:.4g} | {:.4g} | {:.4g} |\n", row->plan,
                         cell(describe_plan_row(r, *row)), row->gpus, row->tokens_per_s_per_gpu,
                         row->tokens_per_s_per_user, row->ttft_ms, row->tpot_ms);
    f << "\n";

    // Candidates that cannot serve.
    bool any = false;
    for (auto kind : {PoolKind::prefill, PoolKind::decode, PoolKind::colocated})
        for (const auto& c : candidates_of(r, kind)) {
            if (c.invalid.empty() && c.infeasible.empty()) continue;
            if (!any)
                f << "## Candidates that cannot serve this load\n\n| pool | candidate | settings | why "
                     "|\n|---|---|---|---|\n";
            any = true;
            f << fmt::format("| {} | {} | {} | {} |\n", to_string(kind), c.index, cell(c.description),
                             cell(c.invalid.empty() ? c.infeasible : "the scenario rejects it: " + c.invalid));
        }
    if (any) f << "\n";

    f << fmt::format(
        "## How these numbers were obtained\n\n"
        "Every number above comes from clustersim's serving simulator (`sim/serving`), iteration times from its "
        "execution level. Each pool candidate was simulated as one instance at 1/n of the load for the counts n "
        "the search needed (a prefill pool alone: requests leave at their first token; a decode pool alone: "
        "requests arrive with their first token and their KV moves in), {:.0f} s of arrivals after a {:.0f} s "
        "warm-up, repeated twice as long up to {:.0f} s while the requests in the system grew by more than {:.3g}% "
        "of the rate but within what a stable run's count does by chance, or by at most a quarter of the rate "
        "(pools and whole deployments alike; sim/planning/README.md, \"Stability\"). "
        "A plan combines its pools' runs; "
        "an instance's arrivals are what a round-robin router hands one of n (a gamma process with the base's "
        "coefficient of variation over sqrt(n)), burstier than what a least-loaded router gives, so the pools "
        "are sized on the safe side. The best plans were then simulated whole (every instance, the "
        "real router, the full rate), which is what `best.yaml` reproduces.\n\n"
        "{} pool candidates, {} pool runs, {} plans ({} meet the objectives): {:.1f} s; whole-deployment runs: "
        "{:.1f} s. Files: `pools.csv` (every pool run), `plans.csv` (every plan), `summary.json`, `verify/` (the "
        "whole-deployment runs), `best.yaml`.\n",
        s.duration.seconds(), s.warmup.seconds(), s.max_duration.seconds(), 100 * s.growth_tolerance,
        r.prefill.size() + r.decode.size() + r.colocated.size(), r.runs.size(), r.rows.size(), meeting,
        r.search_seconds, r.verify_seconds);
}

}  // namespace

std::string describe_plan_row(const ServingPlanResult& r, const ServingPlanRow& row) {
    const PoolCandidate& a = first_pool(r, row);
    if (row.mode == "colocated")
        return fmt::format("colocated: {} x [{}] ({} GPUs each)", row.first_instances, a.description, a.gpus);
    const PoolCandidate& b = r.decode[static_cast<std::size_t>(row.second_candidate)];
    return fmt::format("prefill {} x [{}] ({} GPUs each) + decode {} x [{}] ({} GPUs each)", row.first_instances,
                       a.description, a.gpus, row.second_instances, b.description, b.gpus);
}

void write_serving_plan_outputs(const ServingPlanResult& r, const fs::path& out_dir) {
    fs::create_directories(out_dir);
    write_pools_csv_cell(r, out_dir / "pools.csv");
    write_plans_csv_cell(r, out_dir / "plans.csv");
    const ChartFiles chart = write_front_chart(r, out_dir);

    const auto& s = r.spec;
    nlohmann::ordered_json j;
    j["kind"] = "serving_plan";
    j["name"] = s.name;
    j["base"] = s.base.string();
    j["rate_per_s"] = s.rate_per_s;
    if (!s.load.basis.empty()) {
        j["load"] = {{"basis", s.load.basis},
                     {"tokens_per_day", s.load.tokens_per_day},
                     {"mean_tokens_per_request", s.load.mean_tokens}};
    }
    nlohmann::ordered_json slo = {{"percentile", s.percentile}};
    if (s.ttft_slo) slo["ttft_ms"] = s.ttft_slo->ms();
    if (s.tpot_slo) slo["tpot_ms"] = s.tpot_slo->ms();
    j["slo"] = slo;
    j["candidates"] = {{"prefill", r.prefill.size()}, {"decode", r.decode.size()}, {"colocated", r.colocated.size()}};
    j["pool_runs"] = r.runs.size();
    j["plans"] = r.rows.size();
    std::size_t meeting = 0;
    for (const auto& row : r.rows) meeting += row.meets ? 1 : 0;
    j["plans_meeting_objectives"] = meeting;
    j["search_seconds"] = r.search_seconds;
    j["verify_seconds"] = r.verify_seconds;
    nlohmann::ordered_json verified = nlohmann::ordered_json::array();
    for (const auto& v : r.verified)
        verified.push_back({{"plan", v.plan}, {"meets", v.meets}, {"verdict", v.verdict}, {"summary", v.summary}});
    j["verified"] = verified;
    if (r.best) {
        nlohmann::ordered_json best = row_json(r, r.rows[*r.best]);
        best["scenario"] = "best.yaml";
        j["best"] = best;
    } else {
        j["best"] = nullptr;
    }
    nlohmann::ordered_json front = nlohmann::ordered_json::array();
    for (const auto& row : r.rows)
        if (row.on_front) front.push_back(row_json(r, row));
    j["pareto_front"] = front;
    std::ofstream(out_dir / "summary.json") << j.dump(2) << "\n";
    write_report(r, out_dir / "report.md", chart);
}

}  // namespace clustersim
