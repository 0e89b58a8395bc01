// The Pareto front of a sweep and its gnuplot chart (see pareto_chart.hpp).
#include "sim/planning/pareto_chart.hpp"

#include "sim/charts/gnuplot_chart.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/planning/sweep_charts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

std::optional<double> metric(const PlanRow& row, const std::string& name) {
    for (const auto& [key, cell] : row.metrics) {
        if (key != name) continue;
        double v = 0;
        const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
        if (ec != std::errc() || end != cell.data() + cell.size()) return std::nullopt;
        return v;
    }
    return std::nullopt;
}

std::string goal_text(const ParetoAxis& a) {
    return a.maximize ? "higher is better" : "lower is better";
}

}  // namespace

std::vector<ParetoPoint> pareto_points(const std::vector<PlanRow>& rows, const ParetoSpec& pareto) {
    std::vector<ParetoPoint> points;
    for (const auto& row : rows) {
        if (row.status != PlanStatus::ok) continue;
        const auto x = metric(row, pareto.x.metric);
        const auto y = metric(row, pareto.y.metric);
        if (x && y) points.push_back({row.plan, *x, *y, false});
    }
    // Both axes turned into "more is better", then one pass in order of decreasing x: a point is on
    // the front when its y beats every point with a better x (ties on x: the better y comes first).
    const auto gx = [&](const ParetoPoint& p) { return pareto.x.maximize ? p.x : -p.x; };
    const auto gy = [&](const ParetoPoint& p) { return pareto.y.maximize ? p.y : -p.y; };
    std::vector<std::size_t> order(points.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        if (gx(points[a]) != gx(points[b])) return gx(points[a]) > gx(points[b]);
        return gy(points[a]) > gy(points[b]);
    });
    bool any = false;
    double best_y = 0;
    double best_x = 0;
    for (const std::size_t i : order) {
        ParetoPoint& p = points[i];
        if (!any || gy(p) > best_y) {
            p.on_front = true;
            any = true;
            best_y = gy(p);
            best_x = gx(p);
        } else if (gy(p) == best_y && gx(p) == best_x) {
            p.on_front = true;  // the same point twice: neither dominates the other
        }
    }
    return points;
}

ParetoChart write_pareto_chart(const SweepSpec& spec, const std::vector<PlanRow>& rows, const fs::path& dir) {
    ParetoChart chart;
    if (!spec.pareto) return chart;
    const ParetoSpec& pareto = *spec.pareto;
    const std::vector<ParetoPoint> points = pareto_points(rows, pareto);
    chart.points = points.size();
    if (points.empty()) {
        std::vector<std::string> names;
        for (const auto& row : rows)
            for (const auto& [key, cell] : row.metrics)
                if (std::find(names.begin(), names.end(), key) == names.end()) names.push_back(key);
        std::string hint;
        for (const auto* axis : {&pareto.x, &pareto.y}) {
            const bool known = std::find(names.begin(), names.end(), axis->metric) != names.end();
            if (known) continue;
            hint += fmt::format(" No row has the metric \"{}\"", axis->metric);
            std::string near = closest_match(axis->metric, names);
            if (near.empty()) {  // a shortened name: "peak_memory_gib" for "peak_memory_gib_per_gpu"
                const auto longer = std::find_if(names.begin(), names.end(), [&](const std::string& n) {
                    return n.find(axis->metric) != std::string::npos;
                });
                if (longer != names.end()) near = *longer;
            }
            if (!near.empty()) hint += fmt::format(" (did you mean \"{}\"?)", near);
            hint += ".";
        }
        chart.note = "no Pareto chart: no plan with status ok has both metrics." + hint;
        return chart;
    }

    std::vector<const ParetoPoint*> front;
    for (const auto& p : points)
        if (p.on_front) front.push_back(&p);
    chart.front = front.size();
    // Best y first (for the CSV); the chart's line is drawn along x.
    std::stable_sort(front.begin(), front.end(), [&](const ParetoPoint* a, const ParetoPoint* b) {
        return pareto.y.maximize ? a->y > b->y : a->y < b->y;
    });

    // pareto.csv: the front's rows as they are in sweep.csv.
    std::vector<PlanRow> front_rows;
    std::vector<SweepPlan> front_plans;
    for (const auto* p : front) {
        front_rows.push_back(rows[p->plan]);
        front_plans.push_back(spec.plans[p->plan]);
    }
    SweepSpec front_spec = spec;
    // Cleared first: assigning over existing plans would assign through their YAML nodes, which a
    // copied spec shares with `spec` (yaml-cpp nodes are references), and rewrite the caller's values.
    front_spec.plans.clear();
    front_spec.plans = std::move(front_plans);
    write_file_atomically(dir / "pareto.csv", sweep_csv(front_spec, front_rows));

    // pareto.dat: block 0 every plan on the chart, block 1 the front ordered along x.
    std::string data = fmt::format("# plan\t{}\t{}\tlabel\n", pareto.x.metric, pareto.y.metric);
    for (const auto& p : points) data += fmt::format("{}\t{}\t{}\t{}\n", p.plan, p.x, p.y, plan_label(spec, p.plan));
    data += "\n\n";
    std::vector<const ParetoPoint*> along_x = front;
    std::stable_sort(along_x.begin(), along_x.end(),
                     [](const ParetoPoint* a, const ParetoPoint* b) { return a->x < b->x; });
    for (const auto* p : along_x)
        data += fmt::format("{}\t{}\t{}\t{}\n", p->plan, p->x, p->y, plan_label(spec, p->plan));
    write_file_atomically(dir / "pareto.dat", data);

    std::string varied;
    for (const auto& c : spec.columns) varied += (varied.empty() ? "" : ", ") + c;
    std::string gp;
    gp += fmt::format("# Pareto front of the sweep \"{}\": {} ({}) against {} ({}).\n", spec.name, pareto.y.metric,
                      goal_text(pareto.y), pareto.x.metric, goal_text(pareto.x));
    gp += "# Written by clustersim sweep; redraw with `gnuplot pareto.gp` in this folder (writes pareto.svg).\n";
    gp += "set terminal svg size 960,640 dynamic noenhanced font 'sans,12' background rgb 'white'\n";
    gp += "set output 'pareto.svg'\n";
    gp += fmt::format("set title {}\n",
                      gnuplot_quoted(fmt::format("{}: {} plans, {} on the Pareto front\nlabels: plan: {}", spec.name,
                                                 points.size(), front.size(), varied.empty() ? "index" : varied)));
    gp += fmt::format("set xlabel {}\n", gnuplot_quoted(fmt::format("{} ({})", pareto.x.metric, goal_text(pareto.x))));
    gp += fmt::format("set ylabel {}\n", gnuplot_quoted(fmt::format("{} ({})", pareto.y.metric, goal_text(pareto.y))));
    gp +=
        "set grid\nset key tmargin center horizontal\nset datafile separator '\\t'\nset offsets graph 0.05, graph "
        "0.25, graph 0.08, graph 0.08\n";
    gp += "plot 'pareto.dat' index 0 using 2:3 with points pt 7 ps 0.7 lc rgb '#9a9a9a' title 'plans', \\\n";
    gp += "     '' index 1 using 2:3 with linespoints pt 7 ps 1.1 lw 2 lc rgb '#d62728' title 'Pareto front', \\\n";
    // Labels alternate above and below the line, so neighbours on the front do not overprint.
    gp += "     '' index 1 every 2 using 2:3:4 with labels left offset 0.8,0.9 font ',10' notitle, \\\n";
    gp += "     '' index 1 every 2::1 using 2:3:4 with labels left offset 0.8,-0.9 font ',10' notitle\n";
    write_file_atomically(dir / "pareto.gp", gp);

    std::error_code ignored;
    fs::remove(dir / "pareto.svg", ignored);
    const GnuplotRun run = run_gnuplot(dir, "pareto.gp");
    chart.drawn = run.ok() && fs::exists(dir / "pareto.svg");
    if (!chart.drawn) fs::remove(dir / "pareto.svg", ignored);  // a failed run may leave half a file
    if (chart.drawn) {
        chart.note = fmt::format("Pareto front: {} of {} plans ({} against {}); chart in {}", front.size(),
                                 points.size(), pareto.y.metric, pareto.x.metric, (dir / "pareto.svg").string());
    } else if (!run.installed) {
        chart.note = fmt::format(
            "Pareto front: {} of {} plans in {}; gnuplot is not on PATH, so pareto.svg was not drawn "
            "(install gnuplot-nox and run `gnuplot pareto.gp` in that folder)",
            front.size(), points.size(), (dir / "pareto.csv").string());
    } else {
        chart.note = fmt::format(
            "Pareto front: {} of {} plans in {}; gnuplot failed (exit status {}: {}) on pareto.gp, so "
            "pareto.svg was not drawn",
            front.size(), points.size(), (dir / "pareto.csv").string(), run.exit_status, run.error);
    }
    return chart;
}

}  // namespace clustersim
