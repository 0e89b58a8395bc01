// Running a sweep on threads and processes (see sweep_runner.hpp and README.md).
#include "sim/planning/sweep_runner.hpp"

#include "sim/planning/sweep_charts.hpp"
#include "sim/planning/sweep_plan.hpp"
#include "sim/planning/sweep_table.hpp"
#include "sim/scenario/run_output.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace clustersim {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Runs task(i) for every i < count on `jobs` threads. on_done(i, result) and poll() run on the
// calling thread (the one that may talk MPI): on_done as results arrive, poll at least every 100 ms.
template <typename Result>
void run_on_threads(std::size_t count, int jobs, const std::function<Result(std::size_t)>& task,
                    const std::function<void(std::size_t, Result&)>& on_done, const std::function<void()>& poll) {
    std::mutex mutex;
    std::condition_variable ready_cv;
    std::deque<std::pair<std::size_t, Result>> ready;
    std::exception_ptr failure;
    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::size_t delivered = 0;
    {
        std::vector<std::jthread> workers;
        const std::size_t threads = std::min<std::size_t>(static_cast<std::size_t>(std::max(1, jobs)), count);
        for (std::size_t t = 0; t < threads; ++t) {
            workers.emplace_back([&] {
                while (!stop) {
                    const std::size_t i = next++;
                    if (i >= count) break;
                    try {
                        Result r = task(i);
                        std::lock_guard lock(mutex);
                        ready.emplace_back(i, std::move(r));
                    } catch (...) {
                        std::lock_guard lock(mutex);
                        if (!failure) failure = std::current_exception();
                        stop = true;
                    }
                    ready_cv.notify_one();
                }
            });
        }
        try {
            while (delivered < count) {
                std::deque<std::pair<std::size_t, Result>> batch;
                {
                    std::unique_lock lock(mutex);
                    ready_cv.wait_for(lock, 100ms, [&] { return !ready.empty() || failure; });
                    if (failure) break;
                    batch.swap(ready);
                }
                for (auto& [i, r] : batch) {
                    on_done(i, r);
                    ++delivered;
                }
                if (poll) poll();
            }
        } catch (...) {
            stop = true;  // the workers finish the plan they are on; the jthreads join here
            throw;
        }
    }
    if (failure) std::rethrow_exception(failure);
}

// What loading a plan tells the sweep before anything runs.
struct PlanCheck {
    std::string key;
    std::vector<Diagnostic> problems;  // as the loader said them; empty when the plan is valid
};

// Simulates one plan in a folder of its own and turns its summary into a row. A run that throws
// becomes a failed row: one bad plan does not stop the sweep.
PlanRow run_plan(const std::string& text, const fs::path& base, std::size_t index, const std::string& key,
                 const SweepOptions& options) {
    PlanRow failed;
    failed.plan = index;
    failed.key = key;
    failed.status = PlanStatus::failed;
    try {
        LoadedPlan plan = load_plan_text(text, base);
        if (!plan.ok()) {
            failed.reason = plan.problems.empty() ? "rejected by the scenario" : format(plan.problems.front());
            return failed;
        }
        const fs::path dir = options.keep_runs ? options.out_dir / "runs" / fmt::format("plan-{:04}", index)
                                               : fs::temp_directory_path() /
                                                     fmt::format("clustersim-sweep-{}-plan-{}", ::getpid(), index);
        RunOutput out(dir);  // not committed unless kept: the staging folder goes away with it
        out.write_text("resolved.yaml", plan.resolved_yaml);
        RunOptions run_options;
        run_options.seed = plan.seed;
        const nlohmann::ordered_json summary = plan.runner->run(run_options, out);
        if (options.keep_runs) out.commit();
        return row_from_summary(index, key, summary);
    } catch (const std::exception& e) {
        failed.reason = e.what();
        return failed;
    }
}

// "plans 3, 7 and 12" / "every plan"; at most eight named.
std::string plan_list(const std::vector<std::size_t>& plans, std::size_t total) {
    if (plans.size() == total && total > 1) return "every plan";
    if (plans.size() == 1) return fmt::format("plan {}", plans.front());
    std::string out = "plans ";
    const std::size_t shown = std::min<std::size_t>(plans.size(), 8);
    for (std::size_t i = 0; i < shown; ++i) out += fmt::format("{}{}", i ? ", " : "", plans[i]);
    if (shown < plans.size()) out += fmt::format(" and {} more", plans.size() - shown);
    return out;
}

// The rejected plans as one error: identical complaints are merged and name the plans they concern.
InputError rejection_error(const SweepSpec& spec,
                           const std::vector<std::pair<std::size_t, std::vector<Diagnostic>>>& rejected) {
    struct Group {
        Diagnostic diagnostic;
        std::vector<std::size_t> plans;
    };
    std::vector<Group> groups;
    for (const auto& [plan, problems] : rejected) {
        for (const auto& d : problems) {
            const auto same = std::find_if(groups.begin(), groups.end(), [&](const Group& g) {
                return g.diagnostic.where.file == d.where.file && g.diagnostic.where.line == d.where.line &&
                       g.diagnostic.where.column == d.where.column && g.diagnostic.key_path == d.key_path &&
                       g.diagnostic.message == d.message;
            });
            if (same == groups.end()) {
                groups.push_back({d, {plan}});
            } else if (same->plans.back() != plan) {
                same->plans.push_back(plan);
            }
        }
    }
    std::vector<Diagnostic> all;
    all.push_back({spec.base_where, "base",
                   fmt::format("{} of the sweep's {} plans {} rejected by the scenario, so nothing was run (fix the "
                               "sweep or the base scenario, or set \"on_invalid: mark\" to run the others and list "
                               "these in the CSV):",
                               rejected.size(), spec.plans.size(), rejected.size() == 1 ? "is" : "are")});
    for (auto& g : groups) {
        std::string which = plan_list(g.plans, spec.plans.size());
        if (g.plans.size() == 1) {
            const std::string varied = describe_plan(spec, spec.plans[g.plans.front()]);
            if (!varied.empty()) which += ": " + varied;
        }
        g.diagnostic.message += fmt::format(" ({})", which);
        all.push_back(std::move(g.diagnostic));
    }
    return InputError(std::move(all));
}

}  // namespace

int default_jobs(const ProcessGroup* processes) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return processes && processes->size() > 1 ? std::max(1, cores / mpirun_local_size()) : cores;
}

SweepReport run_sweep(const SweepSpec& spec, const SweepOptions& options) {
    const auto started = std::chrono::steady_clock::now();
    ProcessGroup* group = options.processes && options.processes->size() > 1 ? options.processes : nullptr;
    const int rank = group ? group->rank() : 0;
    const int ranks = group ? group->size() : 1;
    const int jobs = options.jobs > 0 ? options.jobs : default_jobs(group);
    const bool root = rank == 0;
    const ProgressStyle progress_style = root ? options.progress : ProgressStyle::none;

    SweepReport report;
    report.plans = spec.plans.size();
    report.jobs = jobs;

    // 1. Every plan's text; an override that cannot be applied is the sweep file's error.
    const BaseScenario base(spec.base);
    (void)scenario_kinds();  // a function-local static: built here, before the workers read it
    std::vector<std::string> texts;
    texts.reserve(spec.plans.size());
    {
        Diagnostics problems;
        for (const auto& plan : spec.plans) {
            const std::size_t before = problems.size();
            texts.push_back(build_plan_text(base, plan, problems));
            if (problems.size() > before + 8) break;  // one bad path repeats in every plan; enough said
        }
        problems.throw_if_any();
    }

    // 2. Every plan loaded and checked before anything runs (each process checks all: it is
    // deterministic, so they all agree without talking).
    std::vector<PlanCheck> checks(spec.plans.size());
    {
        ProgressMeter meter(options.log, progress_style, spec.plans.size(), "checking plans", false);
        run_on_threads<PlanCheck>(
            spec.plans.size(), jobs,
            [&](std::size_t i) {
                LoadedPlan loaded = load_plan_text(texts[i], base.path());
                return PlanCheck{loaded.key, std::move(loaded.problems)};
            },
            [&](std::size_t i, PlanCheck& check) {
                checks[i] = std::move(check);
                meter.advance();
            },
            {});
        meter.finish();
    }
    std::vector<std::pair<std::size_t, std::vector<Diagnostic>>> rejected;
    for (std::size_t i = 0; i < spec.plans.size(); ++i) {
        if (!checks[i].problems.empty())
            rejected.emplace_back(i, explain_rejection(base, spec.plans[i], checks[i].problems));
    }
    if (!rejected.empty() && spec.on_invalid == InvalidPlans::error) throw rejection_error(spec, rejected);

    // 3. Rank 0 reads what an earlier run finished and tells every rank which plans are left.
    std::vector<std::optional<PlanRow>> rows(spec.plans.size());
    const fs::path csv_path = options.out_dir / "sweep.csv";
    const fs::path journal_path = options.out_dir / "journal.jsonl";
    std::unique_ptr<SweepJournal> journal;
    std::vector<std::size_t> pending;
    if (root) {
        try {
            fs::create_directories(options.out_dir);
            journal = std::make_unique<SweepJournal>(journal_path);  // locks the folder for this sweep
            if (options.fresh) {
                journal->clear();
                fs::remove(csv_path);
            }
            std::map<std::string, PlanRow> earlier = read_sweep_csv(csv_path, spec);
            for (auto& [key, row] : SweepJournal::read(journal_path)) earlier[key] = std::move(row);
            // A failed run is tried again (what failed may have been fixed, or been the machine's fault).
            std::erase_if(earlier, [](const auto& entry) { return entry.second.status == PlanStatus::failed; });
            for (const auto& [plan, problems] : rejected) {
                PlanRow row;
                row.plan = plan;
                row.key = checks[plan].key;
                row.status = PlanStatus::invalid;
                for (const auto& d : problems) row.reason += (row.reason.empty() ? "" : "; ") + format(d);
                rows[plan] = std::move(row);
            }
            for (std::size_t i = 0; i < spec.plans.size(); ++i) {
                if (rows[i]) continue;
                if (const auto it = earlier.find(checks[i].key); it != earlier.end()) {
                    rows[i] = it->second;
                    rows[i]->plan = i;
                    ++report.reused;
                } else {
                    pending.push_back(i);
                }
            }
        } catch (...) {
            if (group) (void)group->broadcast_from_root({}, true);
            throw;
        }
        if (report.reused > 0)
            fmt::print(options.log, "{}: {} of {} plans already have rows in {} (not recomputed)\n", spec.name,
                       report.reused, spec.plans.size(), options.out_dir.string());
    }
    if (group) pending = group->broadcast_from_root(pending, false);
    report.ran = pending.size();

    // 4. This process's share of the plans left: round robin over the ranks.
    std::vector<std::size_t> share;
    for (std::size_t j = static_cast<std::size_t>(rank); j < pending.size(); j += static_cast<std::size_t>(ranks))
        share.push_back(pending[j]);
    report.ran_here = share.size();
    report.ran_by_rank.assign(static_cast<std::size_t>(ranks), 0);
    report.ran_by_rank[0] = root ? share.size() : 0;

    ProgressMeter meter(options.log, progress_style, pending.size(),
                        ranks > 1 ? fmt::format("{} ({} processes)", spec.name, ranks) : spec.name);
    const auto record = [&](PlanRow row) {
        journal->append(row);
        const std::size_t plan = row.plan;
        rows[plan] = std::move(row);
        meter.advance();
    };
    bool all_remote_done = !group;
    const auto poll_remote = [&] {
        if (!group || all_remote_done) return;
        int from = 0;
        while (auto line = group->poll_row(all_remote_done, from)) {
            auto row = parse_journal_line(*line);
            ++report.ran_by_rank[static_cast<std::size_t>(from)];
            if (!row || row->plan >= rows.size())
                throw std::runtime_error("a sweep row from another process could not be read: " + line->substr(0, 200));
            record(std::move(*row));
        }
    };
    try {
        run_on_threads<PlanRow>(
            share.size(), jobs,
            [&](std::size_t j) {
                const std::size_t i = share[j];
                return run_plan(texts[i], base.path(), i, checks[i].key, options);
            },
            [&](std::size_t, PlanRow& row) {
                if (root) {
                    record(std::move(row));
                } else {
                    group->send_row(journal_line(row));
                }
            },
            [&] {
                if (root) poll_remote();
            });
        if (root) {
            while (!all_remote_done) {
                poll_remote();
                if (!all_remote_done) std::this_thread::sleep_for(10ms);
            }
        } else {
            group->send_done();
        }
    } catch (const std::exception& e) {
        if (!group) throw;
        // The other processes cannot know: stop them all rather than leave them waiting.
        fmt::print(stderr, "error: rank {}: {}\n", rank, e.what());
        group->abort_all(1);
    }
    meter.finish();

    // 5. Rank 0 writes the CSV: one row per plan, by plan index.
    if (root) {
        std::vector<PlanRow> table;
        table.reserve(rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) {
            if (!rows[i]) throw std::logic_error(fmt::format("plan {} of the sweep has no row", i));
            switch (rows[i]->status) {
                case PlanStatus::ok:
                    ++report.ok;
                    break;
                case PlanStatus::does_not_fit:
                    ++report.does_not_fit;
                    break;
                case PlanStatus::failed:
                    ++report.failed;
                    break;
                case PlanStatus::invalid:
                    ++report.invalid;
                    break;
            }
            table.push_back(std::move(*rows[i]));
        }
        write_file_atomically(csv_path, sweep_csv(spec, table));
        report.csv = csv_path;
        report.chart_note = write_sweep_charts(spec, table, options.out_dir);
        report.rows = std::move(table);
    }
    report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return report;
}

}  // namespace clustersim
