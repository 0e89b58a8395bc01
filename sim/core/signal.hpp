// Signal: the hook mechanism. The core and the models emit signals (an event ran, a flow finished, a
// batch completed); tracing and statistics subscribe to them instead of models calling tracers.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace clustersim {

template <typename... Args>
class Signal {
public:
    using Handler = std::function<void(Args...)>;
    using SubscriptionId = std::uint64_t;

    // Handlers run in subscription order, so observers see a deterministic sequence.
    SubscriptionId subscribe(Handler handler) {
        handlers_.push_back({next_id_, std::move(handler)});
        return next_id_++;
    }

    void unsubscribe(SubscriptionId id) {
        std::erase_if(handlers_, [id](const Entry& e) { return e.id == id; });
    }

    bool has_subscribers() const { return !handlers_.empty(); }

    void emit(Args... args) const {
        for (const auto& entry : handlers_) entry.handler(args...);
    }

private:
    struct Entry {
        SubscriptionId id;
        Handler handler;
    };
    std::vector<Entry> handlers_;
    SubscriptionId next_id_ = 1;
};

}  // namespace clustersim
