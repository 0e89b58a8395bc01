// Kernel shapes several kernel tests query.
#pragma once

#include "kernels/calibration_table.hpp"

#include <cstdint>

namespace clustersim::test {

// DeepSeek-V3's weight-absorbed MLA decode (FlashMLA's dense decoding): 128 query heads over one
// 576-wide latent per cached token, V its first 512 columns.
inline KernelShape deepseek_mla_decode(std::int64_t batch, std::int64_t query_tokens, std::int64_t context) {
    KernelShape s;
    s.op = "mla_decode";
    s.dtype = "bf16";
    s.batch = batch;
    s.heads = 128;
    s.kv_heads = 1;
    s.head_dim = 576;
    s.n = 512;
    s.seq = query_tokens;
    s.context = context;
    return s;
}

// DeepSeek-V3's MLA prefill attention in MHA mode (training and prefill): 128 heads, q/k 192, v 128,
// `batch` causal sequences of `seq` tokens.
inline KernelShape deepseek_mla_prefill(const char* op, std::int64_t batch, std::int64_t seq) {
    KernelShape s;
    s.op = op;
    s.dtype = "bf16";
    s.batch = batch;
    s.heads = 128;
    s.kv_heads = 128;
    s.head_dim = 192;
    s.n = 128;
    s.seq = seq;
    return s;
}

}  // namespace clustersim::test
