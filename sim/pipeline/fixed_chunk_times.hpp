// A pipeline environment with fixed chunk times, for closed-form checks of the schedules (the DualPipe
// README's bubble table, validation rows X1a-X1c) and for tests.
#pragma once

#include "sim/pipeline/pipeline_executor.hpp"

#include <vector>

namespace clustersim {

// Fixed compute times in abstract "chunk time" units (1 unit = 1 ps): F, full backward B, W (so B
// alone is B - W) and an overlapped F&B pair; transfers take `latency`, delivered by a simulator
// event (or at once when latency is zero). Records every transfer it is asked for.
class FixedPipelineEnvironment : public PipelineEnvironment {
public:
    FixedPipelineEnvironment(int f, int b, int w, int f_and_b, int latency = 0)
        : f_(f), b_(b), w_(w), f_and_b_(f_and_b), latency_(latency) {}

    Time duration(int /*rank*/, const Instruction& ins) override {
        if (ins.items.size() == 2) return Time::from_ps(f_and_b_);
        switch (ins.items.front().kind) {
            case WorkKind::forward:
                return Time::from_ps(f_);
            case WorkKind::backward:
                return Time::from_ps(b_);
            case WorkKind::backward_input:
                return Time::from_ps(b_ - w_);
            case WorkKind::backward_weight:
                return Time::from_ps(w_);
        }
        return Time::zero();
    }

    void transfer(Simulator& sim, const P2pTransfer& t, std::function<void()> arrived) override {
        transfers.push_back(t);
        if (latency_ == 0) {
            arrived();
        } else {
            sim.schedule_in(Time::from_ps(latency_), [arrived = std::move(arrived)] { arrived(); });
        }
    }

    std::vector<P2pTransfer> transfers;

private:
    int f_, b_, w_, f_and_b_, latency_;
};

}  // namespace clustersim
