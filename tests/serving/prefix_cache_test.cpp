// PrefixCache: prefix matching, LRU eviction deepest block first, the capacity bound and determinism.
#include "sim/serving/prefix_cache.hpp"

#include "sim/core/rng_stream.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace clustersim;

namespace {

using Chain = std::vector<BlockHash>;

// Random chains over a few shared prefixes (documents, system prompts) with private tails.
std::vector<Chain> random_chains(std::uint64_t seed, int count) {
    RngStream rng(seed, "prefix_cache_test");
    std::vector<Chain> chains;
    BlockHash next_private = 1'000'000;
    for (int i = 0; i < count; ++i) {
        const auto prefix = rng.uniform_int(6);
        const auto shared = 1 + rng.uniform_int(8);
        Chain c;
        for (std::uint64_t b = 0; b < shared; ++b) c.push_back(prefix * 100 + b);
        for (std::uint64_t b = 0, tail = rng.uniform_int(5); b < tail; ++b) c.push_back(next_private++);
        chains.push_back(c);
    }
    return chains;
}

}  // namespace

TEST_CASE("matching a chain stops at its first missing block") {
    PrefixCache cache(100);
    CHECK(cache.insert(Chain{1, 2, 3}) == 3);
    CHECK(cache.match(Chain{1, 2, 9, 3}) == 2);
    CHECK(cache.match(Chain{9, 1, 2}) == 0);
    CHECK(cache.match(Chain{1, 2, 3, 4}) == 3);
    CHECK(cache.longest_prefix(Chain{1, 2, 3}) == 3);
    CHECK(cache.match(Chain{}) == 0);
    CHECK(cache.insert(Chain{1, 2, 4}) == 1);  // blocks 1 and 2 are there already
    CHECK(cache.size() == 4);
}

TEST_CASE("the least recently used chain is evicted first") {
    PrefixCache cache(6);
    cache.insert(Chain{1, 2, 3});
    cache.insert(Chain{4, 5, 6});
    CHECK(cache.match(Chain{1, 2, 3}) == 3);  // now more recent than 4, 5, 6
    cache.insert(Chain{7, 8, 9});
    for (BlockHash b : {1, 2, 3, 7, 8, 9}) CHECK(cache.contains(b));
    for (BlockHash b : {4, 5, 6}) CHECK_FALSE(cache.contains(b));
    CHECK(cache.evicted_blocks() == 3);
    CHECK(cache.inserted_blocks() == 9);
    // Looking without matching marks nothing: 1, 2, 3 stay the least recent and go next.
    CHECK(cache.longest_prefix(Chain{1, 2, 3}) == 3);
    cache.insert(Chain{10, 11, 12});
    CHECK(cache.longest_prefix(Chain{1}) == 0);
    CHECK(cache.longest_prefix(Chain{7, 8, 9}) == 3);
}

TEST_CASE("within a chain the deepest blocks are evicted first, so no hole is left in front") {
    PrefixCache cache(4);
    cache.insert(Chain{1, 2, 3});
    CHECK(cache.eviction_order() == Chain{3, 2, 1});
    cache.insert(Chain{10, 11});  // one block must go: the leaf 3, not the root 1
    CHECK(cache.eviction_order() == Chain{2, 1, 11, 10});
    CHECK(cache.match(Chain{1, 2, 3}) == 2);
    // Matching a prefix makes it more recent than the rest of its chain, which goes first.
    PrefixCache partial(5);
    partial.insert(Chain{1, 2, 3, 4});
    partial.match(Chain{1, 2});
    partial.insert(Chain{20, 21, 22});  // two blocks go: 4 then 3
    CHECK(partial.longest_prefix(Chain{1, 2, 3, 4}) == 2);
    CHECK(partial.eviction_order() == Chain{2, 1, 22, 21, 20});
}

TEST_CASE("a chain longer than the capacity keeps its leading blocks") {
    PrefixCache cache(3);
    cache.insert(Chain{7, 8});
    CHECK(cache.insert(Chain{1, 2, 3, 4, 5}) == 3);
    CHECK(cache.match(Chain{1, 2, 3, 4, 5}) == 3);
    CHECK(cache.size() == 3);
    CHECK_FALSE(cache.contains(7));
}

TEST_CASE("the cache never holds more blocks than its capacity") {
    for (std::int64_t capacity : {1, 7, 50}) {
        PrefixCache cache(capacity);
        for (const Chain& c : random_chains(3, 2000)) {
            cache.match(c);
            cache.insert(c);
            REQUIRE(cache.size() <= capacity);
            REQUIRE(static_cast<std::int64_t>(cache.eviction_order().size()) == cache.size());
        }
        CHECK(cache.inserted_blocks() - cache.evicted_blocks() == cache.size());
        CHECK(cache.evicted_blocks() > 0);
    }
}

TEST_CASE("the same operations give the same evictions, whatever the hash values") {
    const auto chains = random_chains(11, 3000);
    // A relabelling of the hashes: an odd multiplier is a bijection of 64-bit integers.
    auto relabel = [](BlockHash h) { return h * 0x9e3779b97f4a7c15ULL + 12345; };
    PrefixCache a(40), b(40), c(40);
    std::vector<std::int64_t> hits_a, hits_c;
    for (const Chain& chain : chains) {
        Chain other;
        for (BlockHash h : chain) other.push_back(relabel(h));
        hits_a.push_back(a.match(chain));
        a.insert(chain);
        b.match(chain);
        b.insert(chain);
        hits_c.push_back(c.match(other));
        c.insert(other);
    }
    CHECK(a.eviction_order() == b.eviction_order());
    CHECK(hits_a == hits_c);
    Chain expected;
    for (BlockHash h : a.eviction_order()) expected.push_back(relabel(h));
    CHECK(c.eviction_order() == expected);
    CHECK(a.evicted_blocks() == c.evicted_blocks());
}
