// PrefixCache: a capacity-limited cache of KV blocks named by 64-bit hashes, with LRU eviction.
//
// A prompt is a chain of block hashes (block i's hash names the prompt's first i + 1 blocks, as
// Mooncake's hash_ids and vLLM's block hashes do), so a prompt's cached prefix is the run of its
// leading blocks found in the cache. Blocks are evicted least recently used first; the blocks one
// operation touches are equally recent, and among those the deepest of the chain goes first, as a
// radix-tree cache (SGLang's RadixAttention) evicts leaves before their parents. So a chain is never
// left with a hole in front of blocks it still holds: every touch of a block also touches the blocks
// before it. O(1) per block: a hash map only looked up (never iterated) and an intrusive LRU list,
// so the order of evictions depends on the sequence of operations only.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace clustersim {

using BlockHash = std::uint64_t;

class PrefixCache {
public:
    // Holds at most `capacity_blocks` blocks (at least 1).
    explicit PrefixCache(std::int64_t capacity_blocks);

    // The number of leading blocks of `chain` present, which are marked used (most recent).
    std::int64_t match(std::span<const BlockHash> chain);
    // The same count, without marking anything (a router's look).
    std::int64_t longest_prefix(std::span<const BlockHash> chain) const;
    // Adds the blocks of `chain` that are missing and marks the whole chain used, evicting the least
    // recently used blocks (deepest first among equally recent ones) while over capacity. A chain
    // longer than the capacity keeps its leading `capacity` blocks. Returns the blocks added.
    std::int64_t insert(std::span<const BlockHash> chain);

    bool contains(BlockHash block) const { return index_.contains(block); }
    std::int64_t size() const { return static_cast<std::int64_t>(index_.size()); }
    std::int64_t capacity_blocks() const { return capacity_; }
    std::int64_t inserted_blocks() const { return inserted_; }
    std::int64_t evicted_blocks() const { return evicted_; }
    // The blocks held, the next to be evicted first.
    std::vector<BlockHash> eviction_order() const;

private:
    static constexpr std::size_t kSentinel = 0;  // nodes_[0]: head and tail of the circular LRU list
    struct Node {
        BlockHash hash = 0;
        std::size_t prev = kSentinel, next = kSentinel;
        std::uint64_t stamp = 0;  // the operation that last touched the block
    };
    void unlink(std::size_t node);
    void link_before(std::size_t position, std::size_t node);
    // Moves `node` just in front of `position` (toward the eviction end); returns the node.
    std::size_t touch(std::size_t node, std::size_t position, std::uint64_t stamp);

    std::int64_t capacity_;
    std::vector<Node> nodes_;
    std::vector<std::size_t> free_nodes_;
    std::unordered_map<BlockHash, std::size_t> index_;  // only looked up, never iterated
    std::uint64_t clock_ = 0;
    std::int64_t inserted_ = 0, evicted_ = 0;
};

}  // namespace clustersim
