// clustersim_kernel_bench: measures the calibration tables of kernels/calibration/<gpu>/ on a CUDA GPU.
//
// GEMMs run through cuBLASLt (heuristic algorithm), grouped GEMMs as a loop of cuBLASLt GEMMs on one
// stream, the memory-bound and MoE routing operators as the simple kernels below, copies as
// cudaMemcpyAsync. Every measurement is timed by time_graph (CUDA graph, events, rotated buffers).
// Usage: clustersim_kernel_bench --out DIR [--ops gemm,copy,...] [--header FILE] [--quick] [gbench flags]
#include "kernels/bench/bench_common.cuh"

#include <cublasLt.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

namespace clustersim::bench {
namespace {

#define CS_LT(call)                                                                                          \
    do {                                                                                                     \
        const cublasStatus_t st_ = (call);                                                                   \
        if (st_ != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(#call) + ": status " + std::to_string(st_)); \
    } while (0)

struct Context {
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    std::unique_ptr<DeviceBuffer> workspace;
    std::size_t l2_bytes = 0;
    bool fp8_block_scales = false;
    Collector* out = nullptr;
};

constexpr std::size_t kWorkspace = 32u << 20;

// ---- GEMM through cuBLASLt ---------------------------------------------------------------------
// Row-major Y[m,n] = X[m,k] W[n,k]^T is, in cuBLASLt's column-major terms, D(n x m) = op(A) B with
// A = W stored k x n (transposed, "T") and B = X stored k x m ("N"): the TN layout FP8 requires on Hopper.
struct LtGemm {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulHeuristicResult_t algo{};
    bool ok = false;
    ~LtGemm() {
        if (desc) cublasLtMatmulDescDestroy(desc);
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (d) cublasLtMatrixLayoutDestroy(d);
    }
};

std::unique_ptr<LtGemm> make_gemm(Context& c, std::int64_t m, std::int64_t n, std::int64_t k, bool fp8, bool block,
                                  const float* a_scale, const float* b_scale) {
    auto g = std::make_unique<LtGemm>();
    const cudaDataType_t in = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
    CS_LT(cublasLtMatmulDescCreate(&g->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CS_LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    CS_LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (fp8) {
        CS_LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale, sizeof(a_scale)));
        CS_LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale, sizeof(b_scale)));
        if (block) {
            // DeepSeek-V3's recipe: 128x128 blocks for weights, 1x128 tiles for activations.
            const cublasLtMatmulMatrixScale_t am = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
            const cublasLtMatmulMatrixScale_t bm = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
            CS_LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &am, sizeof(am)));
            CS_LT(cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &bm, sizeof(bm)));
        }
    }
    CS_LT(cublasLtMatrixLayoutCreate(&g->a, in, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(n), k));
    CS_LT(cublasLtMatrixLayoutCreate(&g->b, in, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(m), k));
    CS_LT(cublasLtMatrixLayoutCreate(&g->d, CUDA_R_16BF, static_cast<std::uint64_t>(n), static_cast<std::uint64_t>(m), n));
    cublasLtMatmulPreference_t pref;
    CS_LT(cublasLtMatmulPreferenceCreate(&pref));
    CS_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &kWorkspace, sizeof(kWorkspace)));
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(c.lt, g->desc, g->a, g->b, g->d, g->d, pref, 1, &g->algo, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    g->ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
    return g;
}

void run_gemm(Context& c, const LtGemm& g, const void* w, const void* x, void* y, cudaStream_t s) {
    const float alpha = 1.0f, beta = 0.0f;
    CS_LT(cublasLtMatmul(c.lt, g.desc, &alpha, w, g.a, x, g.b, &beta, y, g.d, y, g.d, &g.algo.algo, c.workspace->ptr,
                         kWorkspace, s));
}

// Scale buffers big enough for any mode: one float per 128 elements of each operand (padded).
std::size_t scale_count(std::int64_t rows, std::int64_t k) { return static_cast<std::size_t>((rows + 127) / 128 * 128 * ((k + 127) / 128)) + 16; }

void bench_gemm(benchmark::State& state, Context& c, const std::string& op, bool fp8, std::int64_t m, std::int64_t n,
                std::int64_t k) {
    const double e = fp8 ? 1.0 : 2.0;
    const std::size_t w_bytes = static_cast<std::size_t>(n * k * e);
    const int copies = rotation_copies(w_bytes, c.l2_bytes);
    DeviceBuffer w(w_bytes * copies), x(static_cast<std::size_t>(m * k * e)), y(static_cast<std::size_t>(m * n * 2));
    DeviceBuffer sa(scale_count(n, k) * 4), sb(scale_count(m, k) * 4);
    if (fp8) {
        fill_fp8(w.ptr, w_bytes * copies, 1, c.stream);
        fill_fp8(x.ptr, static_cast<std::size_t>(m * k), 2, c.stream);
    } else {
        fill_bf16(w.ptr, w_bytes * copies / 2, -1.f, 1.f, 1, c.stream);
        fill_bf16(x.ptr, static_cast<std::size_t>(m * k), -1.f, 1.f, 2, c.stream);
    }
    fill_f32(sa.ptr, sa.size / 4, 0.5f, 1.5f, 3, c.stream);
    fill_f32(sb.ptr, sb.size / 4, 0.5f, 1.5f, 4, c.stream);
    auto g = make_gemm(c, m, n, k, fp8, fp8 && c.fp8_block_scales, sa.as<float>(), sb.as<float>());
    if (!g->ok) {
        state.SkipWithError("cuBLASLt heuristic found no algorithm");
        c.out->skipped[op + (fp8 ? "/fp8" : "/bf16") + "/m" + std::to_string(m) + "/n" + std::to_string(n) + "/k" + std::to_string(k)] = "no cuBLASLt algorithm";
        for (auto _ : state) {}
        return;
    }
    const Timing t = time_graph(state, c.stream, [&](cudaStream_t s, int i) {
        run_gemm(c, *g, static_cast<char*>(w.ptr) + (i % copies) * w_bytes, x.ptr, y.ptr, s);
    });
    Row r{op, fp8 ? "fp8" : "bf16", m, n, k};
    r.p10 = t.p10_us, r.p50 = t.p50_us, r.p90 = t.p90_us, r.reps = t.reps;
    c.out->rows[op].push_back(r);
}

// Grouped GEMM: a loop of cuBLASLt GEMMs on one stream (captured in the graph), one per expert with
// its own token count. Skewed: tokens per expert proportional to 1/(i+1)^1.2 (a Zipf-like load, in
// the spirit of the routing skew DeepSeek's EPLB balances), same total as uniform.
void bench_grouped(benchmark::State& state, Context& c, bool fp8, bool skewed, std::int64_t groups, std::int64_t m,
                   std::int64_t n, std::int64_t k) {
    std::vector<std::int64_t> tokens(static_cast<std::size_t>(groups), m);
    if (skewed) {
        double z = 0;
        for (std::int64_t i = 0; i < groups; ++i) z += 1.0 / std::pow(static_cast<double>(i + 1), 1.2);
        std::int64_t left = groups * m;
        for (std::int64_t i = 0; i < groups; ++i) {
            const auto share = static_cast<std::int64_t>(std::llround(static_cast<double>(groups * m) /
                                                                      std::pow(static_cast<double>(i + 1), 1.2) / z));
            tokens[static_cast<std::size_t>(i)] = i + 1 == groups ? left : std::min(left, share);
            left -= tokens[static_cast<std::size_t>(i)];
        }
    }
    const double e = fp8 ? 1.0 : 2.0;
    const std::size_t w_bytes = static_cast<std::size_t>(n * k * e);
    const std::int64_t total = groups * m;
    DeviceBuffer w(w_bytes * groups), x(static_cast<std::size_t>(total * k * e)), y(static_cast<std::size_t>(total * n * 2));
    DeviceBuffer sa(scale_count(n, k) * 4), sb(scale_count(total, k) * 4);
    if (fp8) {
        fill_fp8(w.ptr, w.size, 1, c.stream);
        fill_fp8(x.ptr, x.size, 2, c.stream);
    } else {
        fill_bf16(w.ptr, w.size / 2, -1.f, 1.f, 1, c.stream);
        fill_bf16(x.ptr, x.size / 2, -1.f, 1.f, 2, c.stream);
    }
    fill_f32(sa.ptr, sa.size / 4, 0.5f, 1.5f, 3, c.stream);
    fill_f32(sb.ptr, sb.size / 4, 0.5f, 1.5f, 4, c.stream);
    std::vector<std::unique_ptr<LtGemm>> gemms;
    for (std::int64_t t : tokens) {
        gemms.push_back(t > 0 ? make_gemm(c, t, n, k, fp8, fp8 && c.fp8_block_scales, sa.as<float>(), sb.as<float>())
                              : nullptr);
        if (gemms.back() && !gemms.back()->ok) {
            state.SkipWithError("cuBLASLt heuristic found no algorithm");
            for (auto _ : state) {}
            return;
        }
    }
    // The expert weights together exceed L2 for every grid shape, so no further rotation is needed.
    const Timing t = time_graph(state, c.stream, [&](cudaStream_t s, int) {
        std::int64_t offset = 0;
        for (std::size_t i = 0; i < gemms.size(); ++i) {
            if (!gemms[i]) continue;
            run_gemm(c, *gemms[i], static_cast<char*>(w.ptr) + i * w_bytes,
                     static_cast<char*>(x.ptr) + static_cast<std::size_t>(offset * k * e),
                     static_cast<char*>(y.ptr) + static_cast<std::size_t>(offset * n * 2), s);
            offset += tokens[i];
        }
    });
    const std::string op = skewed ? "grouped_gemm_skewed" : "grouped_gemm";
    Row r{op, fp8 ? "fp8" : "bf16", m, n, k, groups};
    r.p10 = t.p10_us, r.p50 = t.p50_us, r.p90 = t.p90_us, r.reps = t.reps;
    c.out->rows[op].push_back(r);
}

// ---- memory-bound operators ----------------------------------------------------------------------
// Simple, well-written kernels: 16-byte vector accesses coalesced across the warp, one pass over the data.
using bf16 = __nv_bfloat16;
constexpr int kVec = 8;  // bf16 per 16-byte access

__device__ inline void load8(const bf16* p, float (&v)[kVec]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const bf16* h = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
    for (int i = 0; i < kVec; ++i) v[i] = __bfloat162float(h[i]);
}
__device__ inline void store8(bf16* p, const float (&v)[kVec]) {
    uint4 raw;
    bf16* h = reinterpret_cast<bf16*>(&raw);
#pragma unroll
    for (int i = 0; i < kVec; ++i) h[i] = __float2bfloat16(v[i]);
    *reinterpret_cast<uint4*>(p) = raw;
}

__global__ void rmsnorm_kernel(const bf16* x, const bf16* w, bf16* y, int n) {
    const bf16* row = x + static_cast<std::size_t>(blockIdx.x) * n;
    bf16* out = y + static_cast<std::size_t>(blockIdx.x) * n;
    float ss = 0;
    for (int i = threadIdx.x * kVec; i < n; i += blockDim.x * kVec) {
        float v[kVec];
        load8(row + i, v);
#pragma unroll
        for (int j = 0; j < kVec; ++j) ss += v[j] * v[j];
    }
    __shared__ float partial[32];
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
    __syncthreads();
    float total = 0;
    for (int i = 0; i < static_cast<int>(blockDim.x / 32); ++i) total += partial[i];
    const float inv = rsqrtf(total / static_cast<float>(n) + 1e-6f);
    for (int i = threadIdx.x * kVec; i < n; i += blockDim.x * kVec) {
        float v[kVec], g[kVec];
        load8(row + i, v);
        load8(w + i, g);
#pragma unroll
        for (int j = 0; j < kVec; ++j) v[j] = v[j] * inv * g[j];
        store8(out + i, v);
    }
}

__global__ void silu_mul_kernel(const bf16* gate_up, bf16* y, std::int64_t m, int n) {
    const std::int64_t vecs = m * n / kVec;
    for (std::int64_t v = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; v < vecs;
         v += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t row = v * kVec / n, col = v * kVec % n;
        float g[kVec], u[kVec], o[kVec];
        load8(gate_up + row * 2 * n + col, g);
        load8(gate_up + row * 2 * n + n + col, u);
#pragma unroll
        for (int j = 0; j < kVec; ++j) o[j] = g[j] / (1.0f + __expf(-g[j])) * u[j];
        store8(y + row * n + col, o);
    }
}

__global__ void residual_add_kernel(const bf16* a, const bf16* b, bf16* y, std::int64_t count) {
    for (std::int64_t v = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) * kVec; v < count;
         v += static_cast<std::int64_t>(gridDim.x) * blockDim.x * kVec) {
        float x[kVec], r[kVec];
        load8(a + v, x);
        load8(b + v, r);
#pragma unroll
        for (int j = 0; j < kVec; ++j) x[j] += r[j];
        store8(y + v, x);
    }
}

// Rotary embedding, rotate-half (GPT-NeoX) form, in place on q[m, heads, d]; cos/sin[m, d/2] in fp32.
__global__ void rope_kernel(bf16* q, const float* cos_t, const float* sin_t, std::int64_t m, int heads, int d) {
    const int half = d / 2;
    const std::int64_t pairs = m * heads * half;
    for (std::int64_t p = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; p < pairs;
         p += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t token = p / (heads * half);
        const int i = static_cast<int>(p % half);
        bf16* head = q + (p / half) * d;
        const float c = cos_t[token * half + i], s = sin_t[token * half + i];
        const float x0 = __bfloat162float(head[i]), x1 = __bfloat162float(head[i + half]);
        head[i] = __float2bfloat16(x0 * c - x1 * s);
        head[i + half] = __float2bfloat16(x1 * c + x0 * s);
    }
}

// FP8 e4m3 quantization with one fp32 scale per 1x128 tile (DeepSeek-V3's activation recipe): one
// warp per tile, 4 elements per lane, amax by shuffles.
__global__ void fp8_quant_kernel(const bf16* x, __nv_fp8_e4m3* y, float* scales, std::int64_t tiles) {
    const std::int64_t tile = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (tile >= tiles) return;
    const bf16* src = x + tile * 128 + lane * 4;
    float v[4];
    float amax = 0;
    for (int j = 0; j < 4; ++j) {
        v[j] = __bfloat162float(src[j]);
        amax = fmaxf(amax, fabsf(v[j]));
    }
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float scale = fmaxf(amax, 1e-12f) / 448.0f;  // 448 = largest finite e4m3 value
    for (int j = 0; j < 4; ++j) y[tile * 128 + lane * 4 + j] = __nv_fp8_e4m3(v[j] / scale);
    if (lane == 0) scales[tile] = scale;
}

// MoE top-k: softmax over n expert scores and the k largest, one warp per token (n <= 256).
__global__ void topk_kernel(const bf16* scores, int* idx, float* weight, std::int64_t m, int n, int k) {
    const std::int64_t token = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (token >= m) return;
    float v[8];
    float mx = -1e30f;
    for (int j = 0; j < 8; ++j) {
        const int e = lane + 32 * j;
        v[j] = e < n ? __bfloat162float(scores[token * n + e]) : -1e30f;
        mx = fmaxf(mx, v[j]);
    }
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0;
    for (int j = 0; j < 8; ++j) {
        v[j] = lane + 32 * j < n ? __expf(v[j] - mx) : 0.0f;
        sum += v[j];
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    for (int r = 0; r < k; ++r) {
        float best = -1.0f;
        int at = 0;
        for (int j = 0; j < 8; ++j)
            if (v[j] > best) best = v[j], at = lane + 32 * j;
        for (int o = 16; o > 0; o >>= 1) {
            const float ob = __shfl_xor_sync(0xffffffffu, best, o);
            const int oa = __shfl_xor_sync(0xffffffffu, at, o);
            if (ob > best || (ob == best && oa < at)) best = ob, at = oa;
        }
        if (lane == 0) {
            idx[token * k + r] = at;
            weight[token * k + r] = best / sum;
        }
        if (at % 32 == lane) v[at / 32] = -2.0f;
    }
}

// Permute: row r of the expert-sorted buffer is a copy of token src_of[r] (m*k rows of n features).
__global__ void permute_kernel(const bf16* x, const int* src_of, bf16* y, int n) {
    const bf16* src = x + static_cast<std::size_t>(src_of[blockIdx.x]) * n;
    bf16* dst = y + static_cast<std::size_t>(blockIdx.x) * n;
    for (int i = threadIdx.x * kVec; i < n; i += blockDim.x * kVec)
        *reinterpret_cast<uint4*>(dst + i) = *reinterpret_cast<const uint4*>(src + i);
}

// Unpermute: token t = sum over its k expert outputs (rows pos_of[t*k+j]) weighted by the router.
__global__ void unpermute_kernel(const bf16* y, const int* pos_of, const float* w, bf16* out, int n, int k) {
    const std::int64_t t = blockIdx.x;
    for (int i = threadIdx.x * kVec; i < n; i += blockDim.x * kVec) {
        float acc[kVec] = {};
        for (int j = 0; j < k; ++j) {
            float v[kVec];
            load8(y + static_cast<std::size_t>(pos_of[t * k + j]) * n + i, v);
            const float g = w[t * k + j];
#pragma unroll
            for (int q = 0; q < kVec; ++q) acc[q] += g * v[q];
        }
        store8(out + t * n + i, acc);
    }
}

__global__ void iota_perm_kernel(int* p, std::int64_t count, std::int64_t modulo) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
        p[i] = static_cast<int>((i * 7919) % modulo);  // a fixed scattered permutation-like map
}

int grid_for(std::int64_t threads_needed, int block) {
    return static_cast<int>(std::clamp<std::int64_t>((threads_needed + block - 1) / block, 1, 132 * 16));
}

// Runs a memory-bound op with its working set (in + out bytes) rotated past L2.
void bench_memory(benchmark::State& state, Context& c, Row r, std::size_t in_bytes, std::size_t out_bytes,
                  const std::function<void(cudaStream_t, char*, char*)>& launch) {
    const std::size_t set = ((in_bytes + out_bytes + 255) / 256) * 256;
    const int copies = rotation_copies(set, c.l2_bytes);
    DeviceBuffer buf(set * copies);
    fill_bf16(buf.ptr, buf.size / 2, -1.f, 1.f, 7, c.stream);
    const Timing t = time_graph(state, c.stream, [&](cudaStream_t s, int i) {
        char* base = static_cast<char*>(buf.ptr) + (i % copies) * set;
        launch(s, base, base + (in_bytes + 255) / 256 * 256);
        CS_CUDA(cudaGetLastError());
    });
    r.p10 = t.p10_us, r.p50 = t.p50_us, r.p90 = t.p90_us, r.reps = t.reps;
    c.out->rows[r.op].push_back(r);
}

// ---- the shape grids -----------------------------------------------------------------------------
// Token counts 1..16384: powers of two plus some in between.
std::vector<std::int64_t> token_counts(bool quick) {
    if (quick) return {1, 16, 256, 4096};
    return {1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384};
}

// (n, k) of y = x W^T for the listed models, unsharded (public configs): DeepSeek-V3 (hidden 7168,
// MLA q_lora 1536, kv_lora 512, rope 64, 128 heads of 128/192, dense FFN 18432, expert 2048), Llama 3
// 8B/70B/405B, Qwen3-235B-A22B (hidden 4096, 64x128 q, 4 kv heads, expert 1536), Mixtral 8x7B (hidden
// 4096, FFN 14336) and Llama 4 Scout/Maverick (hidden 5120, 40x128 q, 8 kv heads, expert 8192).
const std::vector<std::pair<std::int64_t, std::int64_t>>& gemm_shapes() {
    static const std::vector<std::pair<std::int64_t, std::int64_t>> s = {
        {2112, 7168}, {24576, 1536}, {32768, 512}, {7168, 16384}, {36864, 7168}, {7168, 18432}, {4096, 7168},
        {7168, 2048},                                                             // DeepSeek-V3
        {6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336},                 // Llama 3 8B, Mixtral
        {10240, 8192}, {8192, 8192}, {57344, 8192}, {8192, 28672},                // Llama 3 70B
        {18432, 16384}, {16384, 16384}, {106496, 16384}, {16384, 53248},          // Llama 3 405B
        {9216, 4096}, {4096, 8192}, {3072, 4096}, {4096, 1536},                   // Qwen3-235B-A22B
        {7168, 5120}, {5120, 5120}, {16384, 5120}, {5120, 8192}};                 // Llama 4
    return s;
}

void register_all(Context& c, const std::set<std::string>& ops, bool quick) {
    auto want = [&](const char* op) { return ops.empty() || ops.count(op) > 0; };
    const auto tokens = token_counts(quick);
    auto reg = [&](const std::string& name, std::function<void(benchmark::State&)> fn) {
        // A failing shape (no algorithm, a refused launch) is reported and skipped; the others still run.
        benchmark::RegisterBenchmark(name.c_str(), [fn, &c, name](benchmark::State& st) {
            try {
                fn(st);
            } catch (const std::exception& e) {
                c.out->skipped[name] = e.what();
                st.SkipWithError(e.what());
            }
        })
            ->UseManualTime()
            ->Iterations(quick ? 5 : 25)
            ->Unit(benchmark::kMicrosecond);
    };
    if (want("gemm"))
        for (const char* dt : {"bf16", "fp8"})
            for (auto [n, k] : gemm_shapes())
                for (std::int64_t m : tokens) {
                    const bool fp8 = std::strcmp(dt, "fp8") == 0;
                    reg("gemm/" + std::string(dt) + "/m" + std::to_string(m) + "/n" + std::to_string(n) + "/k" +
                            std::to_string(k),
                        [&c, fp8, m, n = n, k = k](benchmark::State& st) { bench_gemm(st, c, "gemm", fp8, m, n, k); });
                }
    if (want("grouped_gemm")) {
        // Expert (n, k) with experts per GPU: Mixtral 8 (all), the others 8 and 32 (EP slices).
        const std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> experts = {
            {8, 4096, 7168}, {32, 4096, 7168}, {8, 7168, 2048}, {32, 7168, 2048}, {8, 3072, 4096},
            {32, 4096, 1536}, {8, 28672, 4096}, {8, 4096, 14336}, {8, 16384, 5120}, {8, 5120, 8192}};
        const std::vector<std::int64_t> per_expert =
            quick ? std::vector<std::int64_t>{16, 256} : std::vector<std::int64_t>{1, 4, 16, 64, 128, 256, 512, 1024, 2048};
        for (const char* dt : {"bf16", "fp8"})
            for (bool skewed : {false, true})
                for (auto [g, n, k] : experts)
                    for (std::int64_t m : per_expert) {
                        const bool fp8 = std::strcmp(dt, "fp8") == 0;
                        reg(std::string(skewed ? "grouped_gemm_skewed/" : "grouped_gemm/") + dt + "/g" +
                                std::to_string(g) + "/m" + std::to_string(m) + "/n" + std::to_string(n) + "/k" +
                                std::to_string(k),
                            [&c, fp8, skewed, g = g, m, n = n, k = k](benchmark::State& st) {
                                bench_grouped(st, c, fp8, skewed, g, m, n, k);
                            });
                    }
    }
    if (want("moe_gate"))
        for (auto [n, k] : std::vector<std::pair<std::int64_t, std::int64_t>>{{256, 7168}, {128, 4096}, {8, 4096}, {16, 5120}, {128, 5120}})
            for (std::int64_t m : tokens)
                reg("moe_gate/m" + std::to_string(m) + "/n" + std::to_string(n) + "/k" + std::to_string(k),
                    [&c, m, n = n, k = k](benchmark::State& st) { bench_gemm(st, c, "moe_gate", false, m, n, k); });
    const std::vector<std::int64_t> hidden = {4096, 5120, 7168, 8192, 16384};
    if (want("rmsnorm"))
        for (std::int64_t n : hidden)
            for (std::int64_t m : tokens)
                reg("rmsnorm/m" + std::to_string(m) + "/n" + std::to_string(n), [&c, m, n](benchmark::State& st) {
                    Row r{"rmsnorm", "bf16", m, n};
                    bench_memory(st, c, r, static_cast<std::size_t>((m * n + n) * 2), static_cast<std::size_t>(m * n * 2),
                                 [m, n](cudaStream_t s, char* in, char* out) {
                                     rmsnorm_kernel<<<static_cast<unsigned>(m), 256, 0, s>>>(
                                         reinterpret_cast<bf16*>(in), reinterpret_cast<bf16*>(in) + m * n,
                                         reinterpret_cast<bf16*>(out), static_cast<int>(n));
                                 });
                });
    if (want("silu_mul"))
        for (std::int64_t n : {1536, 2048, 8192, 14336, 18432})
            for (std::int64_t m : tokens)
                reg("silu_mul/m" + std::to_string(m) + "/n" + std::to_string(n), [&c, m, n](benchmark::State& st) {
                    Row r{"silu_mul", "bf16", m, n};
                    bench_memory(st, c, r, static_cast<std::size_t>(2 * m * n * 2), static_cast<std::size_t>(m * n * 2),
                                 [m, n](cudaStream_t s, char* in, char* out) {
                                     silu_mul_kernel<<<grid_for(m * n / kVec, 256), 256, 0, s>>>(
                                         reinterpret_cast<bf16*>(in), reinterpret_cast<bf16*>(out), m, static_cast<int>(n));
                                 });
                });
    if (want("residual_add"))
        for (std::int64_t n : hidden)
            for (std::int64_t m : tokens)
                reg("residual_add/m" + std::to_string(m) + "/n" + std::to_string(n), [&c, m, n](benchmark::State& st) {
                    Row r{"residual_add", "bf16", m, n};
                    bench_memory(st, c, r, static_cast<std::size_t>(2 * m * n * 2), static_cast<std::size_t>(m * n * 2),
                                 [m, n](cudaStream_t s, char* in, char* out) {
                                     residual_add_kernel<<<grid_for(m * n / kVec, 256), 256, 0, s>>>(
                                         reinterpret_cast<bf16*>(in), reinterpret_cast<bf16*>(in) + m * n,
                                         reinterpret_cast<bf16*>(out), m * n);
                                 });
                });
    if (want("rope"))
        for (auto [h, d] : std::vector<std::pair<std::int64_t, std::int64_t>>{{32, 128}, {64, 128}, {8, 128}, {128, 64}, {40, 128}})
            for (std::int64_t m : tokens)
                reg("rope/m" + std::to_string(m) + "/h" + std::to_string(h) + "/d" + std::to_string(d),
                    [&c, m, h = h, d = d](benchmark::State& st) {
                        Row r{"rope", "bf16", m};
                        r.heads = h;
                        r.head_dim = d;
                        const std::size_t q = static_cast<std::size_t>(m * h * d * 2), cs = static_cast<std::size_t>(m * d / 2 * 4);
                        bench_memory(st, c, r, q + 2 * cs, 0, [m, h, d, q, cs](cudaStream_t s, char* in, char*) {
                            rope_kernel<<<grid_for(m * h * d / 2, 256), 256, 0, s>>>(
                                reinterpret_cast<bf16*>(in), reinterpret_cast<float*>(in + q), reinterpret_cast<float*>(in + q + cs),
                                m, static_cast<int>(h), static_cast<int>(d));
                        });
                    });
    if (want("fp8_quant"))
        for (std::int64_t n : {2048, 4096, 7168, 16384})
            for (std::int64_t m : tokens)
                reg("fp8_quant/m" + std::to_string(m) + "/n" + std::to_string(n), [&c, m, n](benchmark::State& st) {
                    Row r{"fp8_quant", "fp8", m, n};
                    const std::int64_t tiles = m * n / 128;
                    bench_memory(st, c, r, static_cast<std::size_t>(m * n * 2), static_cast<std::size_t>(m * n + tiles * 4),
                                 [tiles, m, n](cudaStream_t s, char* in, char* out) {
                                     fp8_quant_kernel<<<grid_for(tiles * 32, 256), 256, 0, s>>>(
                                         reinterpret_cast<bf16*>(in), reinterpret_cast<__nv_fp8_e4m3*>(out),
                                         reinterpret_cast<float*>(out + m * n), tiles);
                                 });
                });
    if (want("moe_topk"))
        for (auto [n, k] : std::vector<std::pair<std::int64_t, std::int64_t>>{{8, 2}, {16, 1}, {128, 1}, {128, 8}, {256, 8}})
            for (std::int64_t m : tokens)
                reg("moe_topk/m" + std::to_string(m) + "/n" + std::to_string(n) + "/k" + std::to_string(k),
                    [&c, m, n = n, k = k](benchmark::State& st) {
                        Row r{"moe_topk", "bf16", m, n, k};
                        bench_memory(st, c, r, static_cast<std::size_t>(m * n * 2), static_cast<std::size_t>(m * k * 8),
                                     [m, n, k](cudaStream_t s, char* in, char* out) {
                                         topk_kernel<<<grid_for(m * 32, 256), 256, 0, s>>>(
                                             reinterpret_cast<bf16*>(in), reinterpret_cast<int*>(out),
                                             reinterpret_cast<float*>(out + m * k * 4), m, static_cast<int>(n), static_cast<int>(k));
                                     });
                    });
    for (const char* op : {"moe_permute", "moe_unpermute"}) {
        if (!want(op)) continue;
        const bool un = std::strcmp(op, "moe_unpermute") == 0;
        for (auto [n, k] : std::vector<std::pair<std::int64_t, std::int64_t>>{{7168, 8}, {4096, 8}, {4096, 2}, {5120, 1}})
            for (std::int64_t m : tokens)
                reg(std::string(op) + "/m" + std::to_string(m) + "/n" + std::to_string(n) + "/k" + std::to_string(k),
                    [&c, un, m, n = n, k = k](benchmark::State& st) {
                        // The index map lives outside the rotated set (it is small and reused, as in production).
                        DeviceBuffer map(static_cast<std::size_t>(m * k * 4)), wts(static_cast<std::size_t>(m * k * 4));
                        iota_perm_kernel<<<64, 256, 0, c.stream>>>(map.as<int>(), m * k, un ? m * k : m);
                        fill_f32(wts.ptr, static_cast<std::size_t>(m * k), 0.f, 1.f, 9, c.stream);
                        Row r{un ? "moe_unpermute" : "moe_permute", "bf16", m, n, k};
                        const std::size_t small = static_cast<std::size_t>(m * n * 2), big = static_cast<std::size_t>(m * k * n * 2);
                        bench_memory(st, c, r, un ? big : small, un ? small : big,
                                     [&, un, m, n, k](cudaStream_t s, char* in, char* out) {
                                         if (un)
                                             unpermute_kernel<<<static_cast<unsigned>(m), 128, 0, s>>>(
                                                 reinterpret_cast<bf16*>(in), map.as<int>(), wts.as<float>(),
                                                 reinterpret_cast<bf16*>(out), static_cast<int>(n), static_cast<int>(k));
                                         else
                                             permute_kernel<<<static_cast<unsigned>(m * k), 128, 0, s>>>(
                                                 reinterpret_cast<bf16*>(in), map.as<int>(), reinterpret_cast<bf16*>(out),
                                                 static_cast<int>(n));
                                     });
                    });
    }
    if (want("copy"))
        for (std::int64_t b = 1024; b <= (std::int64_t{1} << 32); b *= quick ? 64 : 4)
            reg("copy/bytes" + std::to_string(b), [&c, b](benchmark::State& st) {
                Row r{"copy", ""};
                r.bytes = b;
                bench_memory(st, c, r, static_cast<std::size_t>(b), static_cast<std::size_t>(b),
                             [b](cudaStream_t s, char* in, char* out) {
                                 CS_CUDA(cudaMemcpyAsync(out, in, static_cast<std::size_t>(b), cudaMemcpyDeviceToDevice, s));
                             });
            });
}

const char* method_of(const std::string& op, bool block) {
    if (op == "gemm" || op == "moe_gate")
        return block ? "cuBLASLt matmul, heuristic algorithm (top 1, 32 MiB workspace), TN layout, bf16 out; fp8 e4m3 "
                       "with 128x128 weight and 1x128 activation block scales"
                     : "cuBLASLt matmul, heuristic algorithm (top 1, 32 MiB workspace), TN layout, bf16 out; fp8 e4m3 "
                       "with per-tensor scales";
    if (op == "grouped_gemm") return "loop of cuBLASLt GEMMs on one stream, one per expert, uniform tokens per expert";
    if (op == "grouped_gemm_skewed")
        return "loop of cuBLASLt GEMMs on one stream; tokens per expert proportional to 1/(i+1)^1.2, m = mean";
    if (op == "copy") return "cudaMemcpyAsync device to device; bytes = bytes copied (read once, written once)";
    return "clustersim CUDA kernel (kernels/bench/bench_main.cu), 16-byte vector accesses";
}

}  // namespace
}  // namespace clustersim::bench

int main(int argc, char** argv) {
    using namespace clustersim::bench;
    std::string out_dir = ".", header_file;
    std::set<std::string> ops;
    bool quick = false;
    std::vector<char*> rest = {argv[0]};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--out" && i + 1 < argc) out_dir = argv[++i];
        else if (a == "--header" && i + 1 < argc) header_file = argv[++i];
        else if (a == "--quick") quick = true;
        else if (a == "--ops" && i + 1 < argc) {
            std::stringstream list(argv[++i]);
            for (std::string op; std::getline(list, op, ',');) ops.insert(op);
        } else rest.push_back(argv[i]);
    }
    int rest_argc = static_cast<int>(rest.size());
    try {
        Collector collector;
        Context c;
        c.out = &collector;
        CS_CUDA(cudaSetDevice(0));
        cudaDeviceProp prop{};
        CS_CUDA(cudaGetDeviceProperties(&prop, 0));
        c.l2_bytes = static_cast<std::size_t>(prop.l2CacheSize);
        CS_CUDA(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
        CS_LT(cublasLtCreate(&c.lt));
        c.workspace = std::make_unique<DeviceBuffer>(kWorkspace);
        {
            // Block-scaled FP8 where this cuBLASLt supports it on this GPU, else per-tensor scales.
            DeviceBuffer sa(scale_count(7168, 7168) * 4), sb(scale_count(128, 7168) * 4);
            c.fp8_block_scales = make_gemm(c, 128, 7168, 7168, true, true, sa.as<float>(), sb.as<float>())->ok;
        }
        register_all(c, ops, quick);
        benchmark::Initialize(&rest_argc, rest.data());
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();

        int driver = 0, runtime = 0, clock_khz = 0, mem_khz = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
        cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, 0);
        std::string extra;
        if (!header_file.empty()) {
            std::ifstream h(header_file);
            std::stringstream t;
            t << h.rdbuf();
            extra = t.str();
        }
        for (const auto& [op, rows] : collector.rows) {
            std::ofstream f(out_dir + "/" + op + ".csv");
            f << "# gpu: " << prop.name << " (" << prop.multiProcessorCount << " SMs, L2 " << prop.l2CacheSize / (1024 * 1024)
              << " MiB, cudaGetDeviceProperties)\n";
            f << "# cuda: runtime " << runtime / 1000 << "." << (runtime % 1000) / 10 << ", driver API " << driver / 1000 << "."
              << (driver % 1000) / 10 << "\n";
            f << "# device_clocks: max SM " << clock_khz / 1000 << " MHz, memory " << mem_khz / 1000
              << " MHz (cudaDeviceGetAttribute)\n";
            f << extra;
            f << "# method: " << method_of(op, c.fp8_block_scales)
              << "; CUDA graph of back-to-back calls timed with CUDA events, buffers rotated past 3x L2, 3 warm-up "
                 "replays, percentiles over "
              << (quick ? 5 : 25) << " replays (reps = calls timed); random inputs\n";
            f << "# provenance: measured\n";
            f << "op,dtype,m,n,k,groups,batch,heads,kv_heads,head_dim,seq,context,bytes,time_us_p50,time_us_p10,time_us_p90,reps\n";
            auto field = [](std::int64_t v) { return v ? std::to_string(v) : std::string(); };
            for (const Row& r : rows) {
                char times[96];
                std::snprintf(times, sizeof times, "%.4f,%.4f,%.4f", r.p50, r.p10, r.p90);
                f << r.op << ',' << r.dtype << ',' << field(r.m) << ',' << field(r.n) << ',' << field(r.k) << ','
                  << field(r.groups) << ',' << field(r.batch) << ',' << field(r.heads) << ',' << field(r.kv_heads) << ','
                  << field(r.head_dim) << ',' << field(r.seq) << ',' << field(r.context) << ',' << field(r.bytes) << ','
                  << times << ',' << r.reps << '\n';
            }
        }
        for (const auto& [name, why] : collector.skipped) std::cerr << "skipped " << name << ": " << why << "\n";
        cublasLtDestroy(c.lt);
        cudaStreamDestroy(c.stream);
    } catch (const std::exception& e) {
        std::cerr << "clustersim_kernel_bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
