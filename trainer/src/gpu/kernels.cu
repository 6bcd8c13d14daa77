// The device training step's kernels (see backend.rs, `Kernel`, for what each computes, and
// host.rs for the same arithmetic in plain Rust). Compiled by NVRTC when a run starts.
//
// Every kernel but the reductions runs one thread per output value, 256 to a block; the
// reductions (row_sums, total, kl_value) run one block each and add in a fixed tree, so a
// step gives the same bits every time. Sizes are unsigned 32-bit (the session checks).

#define ACT_NONE 0
#define ACT_LEAKY 1
#define ACT_SIGMOID 2

#define SUM_SQUARED_ERROR 0
#define SUM_ABS 1
#define SUM_SQUARE 2

#define THREADS 256

__device__ __forceinline__ unsigned index_of() {
    return blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ float activate(int act, float slope, float x) {
    if (act == ACT_LEAKY) {
        return x > 0.0f ? x : slope * x;
    }
    if (act == ACT_SIGMOID) {
        return 1.0f / (1.0f + expf(-x));
    }
    return x;
}

// The order of Rust's f32::total_cmp as an unsigned key.
__device__ __forceinline__ unsigned order_key(float v) {
    unsigned u = __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

extern "C" __global__ void fill(float* x, unsigned n, float value) {
    unsigned i = index_of();
    if (i < n) x[i] = value;
}

extern "C" __global__ void gather(const float* data, const unsigned* order, unsigned first,
                                  unsigned rows, unsigned width, float* out) {
    unsigned i = index_of();
    if (i >= rows * width) return;
    unsigned r = i / width, j = i % width;
    out[i] = data[(size_t)order[first + r] * width + j];
}

extern "C" __global__ void bias_act(float* y, const float* bias, unsigned rows, unsigned cols,
                                    unsigned per, int act, float slope, float* z) {
    unsigned i = index_of();
    if (i >= rows * cols) return;
    float v = y[i] + bias[(i % cols) / per];
    y[i] = v;
    if (act != ACT_NONE) z[i] = activate(act, slope, v);
}

extern "C" __global__ void activation(const float* x, float* y, unsigned n, int act, float slope) {
    unsigned i = index_of();
    if (i < n) y[i] = activate(act, slope, x[i]);
}

extern "C" __global__ void activation_backward(const float* y, const float* dy, float* dx,
                                               unsigned n, int act, float slope) {
    unsigned i = index_of();
    if (i >= n) return;
    if (act == ACT_LEAKY) {
        dx[i] = y[i] > 0.0f ? dy[i] : slope * dy[i];
    } else {
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
    }
}

extern "C" __global__ void mask_mul(const float* x, const float* mask, float* y, unsigned n) {
    unsigned i = index_of();
    if (i < n) y[i] = x[i] * mask[i];
}

// Per row: a value is kept when fewer than k values of its row rank above it.
extern "C" __global__ void topk(const float* x, float* mask, unsigned rows, unsigned cols, unsigned k) {
    unsigned i = index_of();
    if (i >= rows * cols) return;
    unsigned r = i / cols, j = i % cols;
    const float* row = x + (size_t)r * cols;
    unsigned key = order_key(row[j]), rank = 0;
    for (unsigned q = 0; q < cols; ++q) {
        unsigned other = order_key(row[q]);
        rank += (other > key) || (other == key && q < j);
    }
    mask[i] = rank < k ? 1.0f : 0.0f;
}

// Per column, over the whole batch: the same rank, ties to the earlier row.
extern "C" __global__ void lifetime_topk(const float* x, float* mask, unsigned rows, unsigned cols,
                                         unsigned k) {
    unsigned i = index_of();
    if (i >= rows * cols) return;
    unsigned r = i / cols, j = i % cols;
    unsigned key = order_key(x[i]), rank = 0;
    for (unsigned q = 0; q < rows; ++q) {
        unsigned other = order_key(x[(size_t)q * cols + j]);
        rank += (other > key) || (other == key && q < r);
    }
    mask[i] = rank < k ? 1.0f : 0.0f;
}

// One thread a row: softmax cross-entropy in double, as layers/softmax_ce.rs.
extern "C" __global__ void softmax_ce(const float* z, const unsigned* labels, float* dz, unsigned rows,
                                      unsigned cols, double scale, float* out) {
    unsigned r = index_of();
    if (r >= rows) return;
    const float* row = z + (size_t)r * cols;
    float mx = -__int_as_float(0x7f800000);
    for (unsigned c = 0; c < cols; ++c) mx = fmaxf(mx, row[c]);
    double sum = 0.0;
    for (unsigned c = 0; c < cols; ++c) sum += exp((double)row[c] - (double)mx);
    double log_sum = log(sum) + (double)mx;
    unsigned y = labels[r];
    out[r] = (float)(log_sum - (double)row[y]);
    for (unsigned c = 0; c < cols; ++c) {
        double p = exp((double)row[c] - log_sum);
        dz[(size_t)r * cols + c] = (float)((p - (c == y ? 1.0 : 0.0)) * scale);
    }
}

extern "C" __global__ void mse_grad(const float* y, const float* t, float* dy, unsigned n, float scale) {
    unsigned i = index_of();
    if (i < n) dy[i] = scale * (y[i] - t[i]);
}

// One block a row; THREADS strided partial sums, then a fixed tree.
extern "C" __global__ void row_sums(const float* x, const float* t, int kind, unsigned rows,
                                    unsigned cols, float* out) {
    __shared__ float part[THREADS];
    unsigned r = blockIdx.x;
    if (r >= rows) return;
    const float* row = x + (size_t)r * cols;
    const float* trow = t ? t + (size_t)r * cols : 0;
    float s = 0.0f;
    for (unsigned j = threadIdx.x; j < cols; j += THREADS) {
        float v = row[j];
        if (kind == SUM_SQUARED_ERROR) {
            float e = v - trow[j];
            s += e * e;
        } else if (kind == SUM_ABS) {
            s += fabsf(v);
        } else {
            s += v * v;
        }
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[r] = part[0];
}

// One block: out = scale * sum(parts), or out += ..., summed in double.
extern "C" __global__ void total(const float* parts, unsigned n, double scale, float* out, int accumulate) {
    __shared__ double part[THREADS];
    double s = 0.0;
    for (unsigned j = threadIdx.x; j < n; j += THREADS) s += (double)parts[j];
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        double value = scale * part[0];
        *out = accumulate ? (float)((double)*out + value) : (float)value;
    }
}

extern "C" __global__ void l1_grad(const float* c, float* dc, unsigned n, float g) {
    unsigned i = index_of();
    if (i >= n) return;
    float v = c[i];
    if (v > 0.0f) dc[i] += g;
    else if (v < 0.0f) dc[i] -= g;
}

__device__ __forceinline__ double kl_rho_hat(const float* sums, unsigned j, unsigned rows) {
    double q = (double)sums[j] / (double)rows;
    return fmin(fmax(q, 1e-6), 1.0 - 1e-6);
}

extern "C" __global__ void kl_grad(const float* sums, float* dc, unsigned rows, unsigned cols,
                                   double rho, double lambda) {
    unsigned i = index_of();
    if (i >= rows * cols) return;
    double q = kl_rho_hat(sums, i % cols, rows);
    dc[i] += (float)(lambda / (double)cols * (-rho / q + (1.0 - rho) / (1.0 - q)) / (double)rows);
}

// One block: out += lambda / K * sum_j KL(rho || rho_hat_j).
extern "C" __global__ void kl_value(const float* sums, unsigned rows, unsigned cols, double rho,
                                    double lambda, float* out) {
    __shared__ double part[THREADS];
    double s = 0.0;
    for (unsigned j = threadIdx.x; j < cols; j += THREADS) {
        double q = kl_rho_hat(sums, j, rows);
        s += rho * log(rho / q) + (1.0 - rho) * log((1.0 - rho) / (1.0 - q));
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = (float)((double)*out + lambda * part[0] / (double)cols);
}

// cols[(n*P + p) * C*k*k + (c*k + ky)*k + kx] = x[n, c, oy + ky, ox + kx], p = oy*OW + ox.
extern "C" __global__ void im2col(const float* x, float* cols, unsigned rows, unsigned c,
                                  unsigned h, unsigned w, unsigned k) {
    unsigned i = index_of();
    unsigned oh = h + 1 - k, ow = w + 1 - k, patch = c * k * k, positions = oh * ow;
    if (i >= rows * positions * patch) return;
    unsigned q = i % patch, np = i / patch;
    unsigned n = np / positions, p = np % positions;
    unsigned oy = p / ow, ox = p % ow;
    unsigned ch = q / (k * k), ky = (q / k) % k, kx = q % k;
    cols[i] = x[(size_t)n * c * h * w + (ch * h + oy + ky) * w + ox + kx];
}

// dx[n, c, i, j] = sum of the patch gradients that read input (c, i, j).
extern "C" __global__ void col2im(const float* dcols, float* dx, unsigned rows, unsigned c,
                                  unsigned h, unsigned w, unsigned k) {
    unsigned idx = index_of();
    if (idx >= rows * c * h * w) return;
    unsigned oh = h + 1 - k, ow = w + 1 - k, patch = c * k * k, positions = oh * ow;
    unsigned j = idx % w, i = (idx / w) % h, ch = (idx / (w * h)) % c, n = idx / (c * h * w);
    float sum = 0.0f;
    for (unsigned ky = 0; ky < k; ++ky) {
        if (ky > i || i - ky >= oh) continue;
        for (unsigned kx = 0; kx < k; ++kx) {
            if (kx > j || j - kx >= ow) continue;
            unsigned p = (i - ky) * ow + (j - kx);
            sum += dcols[((size_t)n * positions + p) * patch + (ch * k + ky) * k + kx];
        }
    }
    dx[idx] = sum;
}

extern "C" __global__ void conv_out(const float* z, float* y, const float* bias, unsigned rows,
                                    unsigned channels, unsigned positions) {
    unsigned i = index_of();
    if (i >= rows * channels * positions) return;
    unsigned p = i % positions, o = (i / positions) % channels, n = i / (positions * channels);
    y[i] = z[((size_t)n * positions + p) * channels + o] + bias[o];
}

extern "C" __global__ void conv_grad(const float* dy, float* dz, unsigned rows, unsigned channels,
                                     unsigned positions) {
    unsigned i = index_of();
    if (i >= rows * channels * positions) return;
    unsigned o = i % channels, np = i / channels;
    unsigned n = np / positions, p = np % positions;
    dz[i] = dy[((size_t)n * channels + o) * positions + p];
}

// Window order: top-left, top-right, bottom-left, bottom-right; the last NaN wins, else the
// first largest.
extern "C" __global__ void max_pool(const float* x, float* y, unsigned* argmax, unsigned rows,
                                    unsigned c, unsigned h, unsigned w) {
    unsigned i = index_of();
    unsigned oh = h / 2, ow = w / 2, out = c * oh * ow;
    if (i >= rows * out) return;
    unsigned n = i / out, o = i % out;
    unsigned ch = o / (oh * ow), oy = (o / ow) % oh, ox = o % ow;
    const float* row = x + (size_t)n * c * h * w;
    unsigned at = (ch * h + 2 * oy) * w + 2 * ox;
    unsigned window[4] = {at, at + 1, at + w, at + w + 1};
    unsigned best = window[0];
    int nan = -1;
    for (int q = 0; q < 4; ++q) {
        if (isnan(row[window[q]])) nan = q;
    }
    for (int q = 1; q < 4; ++q) {
        if (row[window[q]] > row[best]) best = window[q];
    }
    if (nan >= 0) best = window[nan];
    y[i] = row[best];
    argmax[i] = best;
}

// One thread an input value: its window's gradient if it was the window's pick, else 0.
extern "C" __global__ void max_pool_backward(const float* dy, const unsigned* argmax, float* dx,
                                             unsigned rows, unsigned c, unsigned h, unsigned w) {
    unsigned idx = index_of();
    unsigned len = c * h * w, oh = h / 2, ow = w / 2, out = c * oh * ow;
    if (idx >= rows * len) return;
    unsigned n = idx / len, q = idx % len;
    unsigned j = q % w, i = (q / w) % h, ch = q / (w * h);
    float g = 0.0f;
    if (i / 2 < oh && j / 2 < ow) {
        unsigned o = (size_t)n * out + (ch * oh + i / 2) * ow + j / 2;
        if (argmax[o] == q) g = dy[o];
    }
    dx[idx] = g;
}

extern "C" __global__ void axpy(const float* x, float* y, unsigned n, float a) {
    unsigned i = index_of();
    if (i < n) y[i] += a * x[i];
}

// PyTorch's Adam, as optim/adam.rs; nothing changes once a step's loss is NaN or infinite.
extern "C" __global__ void adam(float* p, const float* g, float* m, float* v, unsigned n,
                                float one_minus_b1, float b2, float one_minus_b2, float step_size,
                                float bc2_sqrt, float eps, const float* loss, float* halted) {
    unsigned i = index_of();
    if (!isfinite(*loss) || *halted != 0.0f) {
        if (i == 0) *halted = 1.0f;
        return;
    }
    if (i >= n) return;
    float gi = g[i];
    float mi = m[i] + one_minus_b1 * (gi - m[i]);
    float vi = v[i] * b2 + one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
}

// The matrix product where cuBLAS is missing: C = op(A) op(B) (+ C), row-major, in 16x16 tiles
// through shared memory; block b computes tile (b / tiles_n, b % tiles_n).
extern "C" __global__ void gemm_tiled(const float* a, const float* b, float* c, unsigned m, unsigned n,
                                      unsigned k, int a_t, int b_t, int accumulate) {
    __shared__ float as[16][17];
    __shared__ float bs[16][17];
    unsigned tiles_n = (n + 15) / 16;
    unsigned row0 = (blockIdx.x / tiles_n) * 16, col0 = (blockIdx.x % tiles_n) * 16;
    unsigned tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float sum = 0.0f;
    for (unsigned l0 = 0; l0 < k; l0 += 16) {
        unsigned ar = row0 + ty, ac = l0 + tx;
        as[ty][tx] = (ar < m && ac < k) ? (a_t ? a[(size_t)ac * m + ar] : a[(size_t)ar * k + ac]) : 0.0f;
        unsigned br = l0 + ty, bc = col0 + tx;
        bs[ty][tx] = (br < k && bc < n) ? (b_t ? b[(size_t)bc * k + br] : b[(size_t)br * n + bc]) : 0.0f;
        __syncthreads();
        for (int l = 0; l < 16; ++l) sum += as[ty][l] * bs[l][tx];
        __syncthreads();
    }
    unsigned row = row0 + ty, col = col0 + tx;
    if (row < m && col < n) {
        size_t o = (size_t)row * n + col;
        c[o] = accumulate ? c[o] + sum : sum;
    }
}
