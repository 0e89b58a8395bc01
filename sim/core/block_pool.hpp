// BlockPool: recycles memory blocks by power-of-two size class, and an allocator that draws on it.
//
// The event queue's buckets grow and shrink all the time; with the ordinary allocator every growth
// of a large bucket maps fresh pages (and the page faults showed up as a large share of the hold
// model's time). Blocks returned here are kept for the next bucket that grows to that size.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <new>
#include <vector>

namespace clustersim {

class BlockPool {
public:
    BlockPool() = default;
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;
    ~BlockPool() {
        for (auto& list : free_)
            for (void* p : list) ::operator delete(p);
    }

    void* allocate(std::size_t bytes) {
        const int size_class = class_of(bytes);
        auto& list = free_[static_cast<std::size_t>(size_class)];
        if (!list.empty()) {
            void* p = list.back();
            list.pop_back();
            return p;
        }
        return ::operator new(std::size_t{1} << size_class);
    }
    void deallocate(void* p, std::size_t bytes) { free_[static_cast<std::size_t>(class_of(bytes))].push_back(p); }

private:
    static int class_of(std::size_t bytes) { return std::bit_width(std::max<std::size_t>(bytes, 64) - 1); }
    std::vector<void*> free_[64];
};

template <typename T>
class PoolAllocator {
public:
    using value_type = T;
    explicit PoolAllocator(BlockPool* pool) : pool_(pool) {}
    template <typename U>
    PoolAllocator(const PoolAllocator<U>& other) : pool_(other.pool()) {}  // NOLINT: rebinding
    T* allocate(std::size_t n) { return static_cast<T*>(pool_->allocate(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) { pool_->deallocate(p, n * sizeof(T)); }
    BlockPool* pool() const { return pool_; }
    template <typename U>
    bool operator==(const PoolAllocator<U>& other) const { return pool_ == other.pool(); }

private:
    BlockPool* pool_;
};

}  // namespace clustersim
