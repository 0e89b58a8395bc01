// The pipeline executor: instruction streams, their data dependencies and transfers on the event engine.
#include "sim/pipeline/pipeline_executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace clustersim {

void PipelineEnvironment::transfer(Simulator& /*sim*/, const P2pTransfer& /*t*/, std::function<void()> arrived) {
    arrived();
}

namespace {

class PipelineExecution {
public:
    PipelineExecution(Simulator& sim, const PipelineSchedule& schedule, PipelineEnvironment& env,
                      const PipelineRunOptions& options)
        : sim_(sim), s_(schedule), env_(env), options_(options), stages_(schedule.stages()) {
        const std::size_t chunks = static_cast<std::size_t>(s_.micro_batches) * static_cast<std::size_t>(stages_);
        chunk_.assign(chunks, Chunk{});
        for (int m = 0; m < s_.micro_batches; ++m) {
            const auto& route = s_.route[static_cast<std::size_t>(m)];
            for (std::size_t k = 0; k < route.size(); ++k) {
                Chunk& c = chunk_[at(m, route[k])];
                c.prev = k == 0 ? -1 : route[k - 1];
                c.next = k + 1 == route.size() ? -1 : route[k + 1];
            }
        }
        ranks_.assign(static_cast<std::size_t>(s_.ranks), Rank{});
    }

    PipelineRun run() {
        const Time start = sim_.now();
        try_start_all();
        sim_.run();
        check_finished();

        PipelineRun out;
        out.start = start;
        out.makespan = Time::zero();
        for (const Rank& r : ranks_) {
            for (const ExecutedInstruction& e : r.timeline) out.makespan = std::max(out.makespan, e.end - start);
        }
        for (Rank& r : ranks_) {
            out.busy.push_back(r.busy);
            out.bubble.push_back(out.makespan - r.busy);
            out.peak_activations.push_back(r.peak_activations);
            out.timeline.insert(out.timeline.end(), r.timeline.begin(), r.timeline.end());
        }
        return out;
    }

private:
    // The state of one (micro-batch, stage).
    struct Chunk {
        int prev = -1, next = -1;  // neighbouring stages on the micro-batch's route (-1: none)
        bool forward_done = false;
        bool backward_done = false;  // B or full backward
        bool activation_in = false;  // the forward input from `prev` is here
        bool gradient_in = false;    // the output gradient from `next` is here
        // receiver_ready only: produced, waiting for the receiver to reach its consumer.
        bool activation_waiting = false, gradient_waiting = false;
    };
    struct Rank {
        std::size_t next = 0;  // index of the next instruction to issue
        bool running = false;
        Time busy = Time::zero();
        int activations = 0;
        int peak_activations = 0;
        std::vector<ExecutedInstruction> timeline;
    };

    std::size_t at(int micro_batch, int stage) const {
        return static_cast<std::size_t>(micro_batch) * static_cast<std::size_t>(stages_) +
               static_cast<std::size_t>(stage);
    }
    Chunk& chunk(const WorkItem& it) { return chunk_[at(it.micro_batch, it.stage)]; }
    Rank& rank(int r) { return ranks_[static_cast<std::size_t>(r)]; }
    int rank_of(int stage) const { return s_.stage_rank[static_cast<std::size_t>(stage)]; }
    const std::vector<Instruction>& stream(int r) const { return s_.rank_instructions[static_cast<std::size_t>(r)]; }

    // Starts every rank that can start. Transfers delivered synchronously by the environment call back
    // into here; the guard turns that into another pass instead of recursion.
    void try_start_all() {
        if (starting_) {
            again_ = true;
            return;
        }
        starting_ = true;
        do {
            again_ = false;
            for (int r = 0; r < s_.ranks; ++r) try_start(r);
        } while (again_);
        starting_ = false;
    }

    void try_start(int r) {
        Rank& rk = rank(r);
        if (rk.running || rk.next >= stream(r).size()) return;
        const Instruction& ins = stream(r)[rk.next];
        if (options_.rendezvous == P2pRendezvous::receiver_ready) post_receives(ins);
        if (!ready(ins)) return;

        rk.running = true;
        const Time duration = env_.duration(r, ins);
        if (duration < Time::zero()) {
            throw std::logic_error(
                fmt::format("pipeline environment gave rank {} a negative duration for {}", r, to_string(ins)));
        }
        for (const WorkItem& it : ins.items) {
            if (it.kind == WorkKind::forward) ++rk.activations;
        }
        rk.peak_activations = std::max(rk.peak_activations, rk.activations);
        rk.timeline.push_back(ExecutedInstruction{r, ins, sim_.now(), sim_.now() + duration});
        sim_.schedule_in(duration, [this, r] { finish(r); });
    }

    // receiver_ready: the rank has reached `ins`, so the transfers it consumes may start.
    void post_receives(const Instruction& ins) {
        for (const WorkItem& it : ins.items) {
            Chunk& c = chunk(it);
            if (it.kind == WorkKind::forward && c.activation_waiting) {
                c.activation_waiting = false;
                start_transfer(it.micro_batch, c.prev, it.stage, false);
            } else if ((it.kind == WorkKind::backward || it.kind == WorkKind::backward_input) && c.gradient_waiting) {
                c.gradient_waiting = false;
                start_transfer(it.micro_batch, c.next, it.stage, true);
            }
        }
    }

    bool ready(const Instruction& ins) {
        return std::all_of(ins.items.begin(), ins.items.end(), [&](const WorkItem& it) { return can_run(it); });
    }

    bool can_run(const WorkItem& it) {
        const Chunk& c = chunk(it);
        switch (it.kind) {
            case WorkKind::forward:
                return c.prev < 0 || c.activation_in;
            case WorkKind::backward:
            case WorkKind::backward_input:
                return c.forward_done && (c.next < 0 || c.gradient_in);
            case WorkKind::backward_weight:
                return c.backward_done;
        }
        return false;
    }

    // What the item still waits for, in words; empty when it can run.
    std::string waiting_for(const WorkItem& it) {
        if (can_run(it)) return {};
        const Chunk& c = chunk(it);
        switch (it.kind) {
            case WorkKind::forward:
                return fmt::format("the activation of micro-batch {} from stage {} on rank {}{}", it.micro_batch,
                                   c.prev, rank_of(c.prev),
                                   chunk_[at(it.micro_batch, c.prev)].forward_done ? " (in transit)" : "");
            case WorkKind::backward:
            case WorkKind::backward_input:
                if (!c.forward_done)
                    return fmt::format("its own forward (micro-batch {}, stage {})", it.micro_batch, it.stage);
                return fmt::format("the gradient of micro-batch {} from stage {} on rank {}{}", it.micro_batch, c.next,
                                   rank_of(c.next),
                                   chunk_[at(it.micro_batch, c.next)].backward_done ? " (in transit)" : "");
            case WorkKind::backward_weight:
                return fmt::format("its B (micro-batch {}, stage {})", it.micro_batch, it.stage);
        }
        return "?";
    }

    void finish(int r) {
        Rank& rk = rank(r);
        rk.busy += rk.timeline.back().end - rk.timeline.back().start;
        rk.running = false;
        ++rk.next;
        // Transfers delivered synchronously by the environment must not start anything before every
        // item of this instruction is accounted for (its releases come before the next start).
        starting_ = true;
        for (const WorkItem& it : rk.timeline.back().instruction.items) {
            Chunk& c = chunk(it);
            switch (it.kind) {
                case WorkKind::forward:
                    c.forward_done = true;
                    if (c.next >= 0) send(it.micro_batch, it.stage, c.next, false);
                    break;
                case WorkKind::backward:
                case WorkKind::backward_input:
                    c.backward_done = true;
                    if (it.kind == WorkKind::backward) --rk.activations;
                    if (c.prev >= 0) send(it.micro_batch, it.stage, c.prev, true);
                    break;
                case WorkKind::backward_weight:
                    --rk.activations;
                    break;
            }
        }
        starting_ = false;
        try_start_all();
    }

    // The producer of (micro_batch, to_stage)'s input has finished on from_stage.
    void send(int micro_batch, int from_stage, int to_stage, bool gradient) {
        Chunk& dst = chunk_[at(micro_batch, to_stage)];
        if (rank_of(from_stage) == rank_of(to_stage)) {
            (gradient ? dst.gradient_in : dst.activation_in) = true;
        } else if (options_.rendezvous == P2pRendezvous::eager) {
            start_transfer(micro_batch, from_stage, to_stage, gradient);
        } else {
            (gradient ? dst.gradient_waiting : dst.activation_waiting) = true;  // started by post_receives
        }
    }

    void start_transfer(int micro_batch, int from_stage, int to_stage, bool gradient) {
        const P2pTransfer t{micro_batch, from_stage, to_stage, rank_of(from_stage), rank_of(to_stage), gradient};
        env_.transfer(sim_, t, [this, t] { arrive(t); });
    }

    void arrive(const P2pTransfer& t) {
        Chunk& dst = chunk_[at(t.micro_batch, t.to_stage)];
        bool& flag = t.gradient ? dst.gradient_in : dst.activation_in;
        if (flag) {
            throw std::logic_error(
                fmt::format("pipeline environment delivered the {} of micro-batch {} from stage {} "
                            "to stage {} twice",
                            t.gradient ? "gradient" : "activation", t.micro_batch, t.from_stage, t.to_stage));
        }
        flag = true;
        try_start_all();
    }

    void check_finished() {
        std::string stuck;
        for (int r = 0; r < s_.ranks; ++r) {
            const Rank& rk = rank(r);
            if (rk.running) {
                throw std::logic_error(fmt::format("the simulation stopped while rank {} was running {}", r,
                                                   to_string(stream(r)[rk.next])));
            }
            if (rk.next >= stream(r).size()) continue;
            const Instruction& ins = stream(r)[rk.next];
            std::string why;
            for (const WorkItem& it : ins.items) {
                const std::string w = waiting_for(it);
                if (w.empty()) continue;
                if (!why.empty()) why += " and ";
                why += w;
            }
            stuck += fmt::format("; rank {} is stuck at instruction {} of {} ({}) waiting for {}", r, rk.next,
                                 stream(r).size(), to_string(ins),
                                 why.empty() ? "nothing (a transfer never arrived?)" : why);
        }
        if (!stuck.empty()) {
            throw std::logic_error(
                fmt::format("pipeline deadlock in the {} schedule: nothing can run{}", to_string(s_.kind), stuck));
        }
    }

    Simulator& sim_;
    const PipelineSchedule& s_;
    PipelineEnvironment& env_;
    PipelineRunOptions options_;
    int stages_;
    std::vector<Chunk> chunk_;
    std::vector<Rank> ranks_;
    bool starting_ = false;
    bool again_ = false;
};

}  // namespace

PipelineRun run_pipeline(Simulator& sim, const PipelineSchedule& schedule, PipelineEnvironment& env,
                         const PipelineRunOptions& options) {
    validate_pipeline_schedule(schedule);
    PipelineExecution execution(sim, schedule, env, options);
    return execution.run();
}

}  // namespace clustersim
