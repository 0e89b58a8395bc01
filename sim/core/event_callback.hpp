// EventCallback: the action of a scheduled event, stored inline in the event queue.
//
// The queue moves entries by plain memory copies (see Simulator), so the callback must be
// relocatable bit for bit. Small trivially-copyable callables (a lambda capturing up to three pointers
// or numbers, the common case) live in the 24-byte inline buffer; anything else is moved to the
// heap and the buffer holds the pointer. Ownership is explicit: exactly one of invoke_and_destroy()
// or destroy() must be called on each callback that holds a callable.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace clustersim {

class EventCallback {
public:
    EventCallback() = default;

    template <typename F>
        requires(!std::is_same_v<std::decay_t<F>, EventCallback> && std::is_invocable_r_v<void, std::decay_t<F>&>)
    EventCallback(F&& f) {  // NOLINT(google-explicit-constructor): callables convert implicitly, like std::function
        using Fn = std::decay_t<F>;
        if constexpr (sizeof(Fn) <= kInline && alignof(Fn) <= 8 &&
                      std::is_trivially_copyable_v<Fn> && std::is_trivially_destructible_v<Fn>) {
            new (buffer_) Fn(std::forward<F>(f));
            invoke_ = [](void* p, bool run) {
                if (run) (*static_cast<Fn*>(p))();
            };
        } else {
            Fn* heap = new Fn(std::forward<F>(f));
            std::memcpy(buffer_, &heap, sizeof(heap));
            invoke_ = [](void* p, bool run) {
                Fn* callable;
                std::memcpy(&callable, p, sizeof(callable));
                // Destroy even if the call throws: the queue has already given up the entry.
                struct Deleter {
                    Fn* f;
                    ~Deleter() { delete f; }
                } guard{callable};
                if (run) (*callable)();
            };
        }
    }

    bool empty() const { return invoke_ == nullptr; }
    // Runs the callable and releases it.
    void invoke_and_destroy() {
        auto* fn = std::exchange(invoke_, nullptr);
        fn(buffer_, true);
    }
    // Releases the callable without running it.
    void destroy() {
        if (auto* fn = std::exchange(invoke_, nullptr)) fn(buffer_, false);
    }

private:
    static constexpr std::size_t kInline = 24;
    alignas(8) unsigned char buffer_[kInline];
    void (*invoke_)(void*, bool) = nullptr;
};

static_assert(std::is_trivially_copyable_v<EventCallback>, "the event queue relocates callbacks with memcpy");
static_assert(sizeof(EventCallback) == 32, "a queue entry (time, sequence, callback) should stay at 48 bytes");

}  // namespace clustersim
