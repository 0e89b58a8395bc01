// The LRU prefix cache of KV blocks (see prefix_cache.hpp).
#include "sim/serving/prefix_cache.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace clustersim {

// The list runs from nodes_[kSentinel].next (evicted first) to nodes_[kSentinel].prev (most recent).
// An operation stamps the blocks it touches and places them, in chain order, each in front of the
// one before: block 0 ends nearest the recent end, the deepest block nearest the eviction end.

PrefixCache::PrefixCache(std::int64_t capacity_blocks) : capacity_(capacity_blocks), nodes_(1) {
    if (capacity_blocks < 1)
        throw std::invalid_argument(fmt::format("a prefix cache holds at least one block; got {}", capacity_blocks));
}

void PrefixCache::unlink(std::size_t node) {
    Node& n = nodes_[node];
    nodes_[n.prev].next = n.next;
    nodes_[n.next].prev = n.prev;
}

void PrefixCache::link_before(std::size_t position, std::size_t node) {
    const std::size_t prev = nodes_[position].prev;
    nodes_[node].prev = prev;
    nodes_[node].next = position;
    nodes_[prev].next = node;
    nodes_[position].prev = node;
}

std::size_t PrefixCache::touch(std::size_t node, std::size_t position, std::uint64_t stamp) {
    nodes_[node].stamp = stamp;
    if (node == position) return node;  // a hash repeated within one chain: already in place
    unlink(node);
    link_before(position, node);
    return node;
}

std::int64_t PrefixCache::longest_prefix(std::span<const BlockHash> chain) const {
    std::int64_t n = 0;
    for (const BlockHash h : chain) {
        if (!index_.contains(h)) break;
        ++n;
    }
    return n;
}

std::int64_t PrefixCache::match(std::span<const BlockHash> chain) {
    const std::uint64_t stamp = ++clock_;
    std::size_t position = kSentinel;
    std::int64_t n = 0;
    for (const BlockHash h : chain) {
        const auto it = index_.find(h);
        if (it == index_.end()) break;
        position = touch(it->second, position, stamp);
        ++n;
    }
    return n;
}

std::int64_t PrefixCache::insert(std::span<const BlockHash> chain) {
    const std::uint64_t stamp = ++clock_;
    std::size_t position = kSentinel;
    std::int64_t added = 0;
    for (const BlockHash h : chain) {
        const auto it = index_.find(h);
        if (it != index_.end()) {
            position = touch(it->second, position, stamp);
            continue;
        }
        if (size() >= capacity_) {
            const std::size_t victim = nodes_[kSentinel].next;
            // Everything held belongs to this chain already: keep its leading blocks.
            if (nodes_[victim].stamp == stamp) break;
            unlink(victim);
            index_.erase(nodes_[victim].hash);
            free_nodes_.push_back(victim);
            ++evicted_;
        }
        std::size_t node;
        if (!free_nodes_.empty()) {
            node = free_nodes_.back();
            free_nodes_.pop_back();
        } else {
            node = nodes_.size();
            nodes_.emplace_back();
        }
        nodes_[node].hash = h;
        nodes_[node].stamp = stamp;
        link_before(position, node);
        position = node;
        index_.emplace(h, node);
        ++added;
    }
    inserted_ += added;
    return added;
}

std::vector<BlockHash> PrefixCache::eviction_order() const {
    std::vector<BlockHash> out;
    out.reserve(index_.size());
    for (std::size_t n = nodes_[kSentinel].next; n != kSentinel; n = nodes_[n].next) out.push_back(nodes_[n].hash);
    return out;
}

}  // namespace clustersim
