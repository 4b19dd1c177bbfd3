// Fused CPU kernel for the I^sx training path (infomorphic.pid.samples).
//
// For every neuron j (in parallel) and every antichain a of the lattice, from the samples'
// cells in the marginal table of every source subset k (keys[k, j, b]) and the per-sample
// target masses m[j, b, t] = p(t | b) / B:
//
//   cond[j, a] = sum_{b,t} m[j,b,t] * log2( P(E_a(s_b), t) / P(E_a(s_b)) )     (0 where P(E_a, t) = 0)
//   plus[j, a] = -sum_b (1/B) * log2 P(E_a(s_b))                               (informative part)
//
// with P(E_a(s), t) = sum_k coeffs[a, k] * P(S_k = s_k, t) (inclusion-exclusion) and P(E_a(s))
// the same over sample counts / B.  The backward pass returns d(sum_a g[j,a] cond[j,a]) / dm:
//
//   log2 P(t | E_a(s_b))  +  (1/ln 2) sum_k coeffs[a,k] sum_{b': s_b'k = s_bk} m[b',t] / P(E_a(s_b'), t)
//
// Tables are accumulated in double; logarithms are taken in the input precision.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <vector>

namespace {

struct Nonzero {
  int64_t k;
  double c;
};

std::vector<std::vector<Nonzero>> sparse_rows(const torch::Tensor& coeffs) {
  auto c = coeffs.to(torch::kDouble).contiguous();
  const int64_t A = c.size(0), K = c.size(1);
  const double* p = c.data_ptr<double>();
  std::vector<std::vector<Nonzero>> rows(A);
  for (int64_t a = 0; a < A; ++a)
    for (int64_t k = 0; k < K; ++k)
      if (p[a * K + k] != 0.0) rows[a].push_back({k, p[a * K + k]});
  return rows;
}

template <typename T>
inline T log2_of(double x) {
  return static_cast<T>(std::log2(static_cast<T>(x)));
}

// Accumulate the count and mass tables of one neuron.
void fill_tables(const int64_t* keys, const int64_t* sizes, const int64_t* offsets, int64_t K, int64_t N,
                 int64_t B, int64_t T, int64_t j, const double* mass_j, std::vector<double>& count,
                 std::vector<double>& table) {
  std::fill(count.begin(), count.end(), 0.0);
  std::fill(table.begin(), table.end(), 0.0);
  const double inv_b = 1.0 / static_cast<double>(B);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t* key = keys + (k * N + j) * B;
    double* cnt = count.data() + offsets[k];
    double* tab = table.data() + offsets[k] * T;
    for (int64_t b = 0; b < B; ++b) {
      cnt[key[b]] += inv_b;
      for (int64_t t = 0; t < T; ++t) tab[key[b] * T + t] += mass_j[b * T + t];
    }
  }
}

}  // namespace

// Returns (cond, plus, log_cond) with log_cond (N, B, T, A) saved for the backward pass.
std::vector<torch::Tensor> sx_forward(torch::Tensor keys, torch::Tensor sizes, torch::Tensor mass,
                                      torch::Tensor coeffs) {
  TORCH_CHECK(keys.dim() == 3 && mass.dim() == 3, "keys (K, N, B) and mass (N, B, T) expected");
  keys = keys.to(torch::kLong).contiguous();
  sizes = sizes.to(torch::kLong).contiguous();
  mass = mass.contiguous();
  const int64_t K = keys.size(0), N = keys.size(1), B = keys.size(2), T = mass.size(2);
  const int64_t A = coeffs.size(0);
  TORCH_CHECK(coeffs.size(1) == K && mass.size(0) == N && mass.size(1) == B, "shape mismatch");
  auto rows = sparse_rows(coeffs);
  std::vector<int64_t> offsets(K + 1, 0);
  const int64_t* sz = sizes.data_ptr<int64_t>();
  for (int64_t k = 0; k < K; ++k) offsets[k + 1] = offsets[k] + sz[k];
  auto cond = torch::zeros({N, A}, mass.options());
  auto plus = torch::zeros({N, A}, mass.options());
  auto log_cond = torch::empty({N, B, T, A}, mass.options());
  const int64_t* key_p = keys.data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(mass.scalar_type(), "sx_forward", [&] {
    const scalar_t* m = mass.data_ptr<scalar_t>();
    scalar_t* cond_p = cond.data_ptr<scalar_t>();
    scalar_t* plus_p = plus.data_ptr<scalar_t>();
    scalar_t* lc_p = log_cond.data_ptr<scalar_t>();
    at::parallel_for(0, N, 1, [&](int64_t lo, int64_t hi) {
      std::vector<double> count(offsets[K]), table(offsets[K] * T), mass_j(B * T);
      std::vector<double> mk(K), mtk(K * T), acc_cond(A), acc_plus(A);
      for (int64_t j = lo; j < hi; ++j) {
        for (int64_t i = 0; i < B * T; ++i) mass_j[i] = static_cast<double>(m[j * B * T + i]);
        fill_tables(key_p, sz, offsets.data(), K, N, B, T, j, mass_j.data(), count, table);
        std::fill(acc_cond.begin(), acc_cond.end(), 0.0);
        std::fill(acc_plus.begin(), acc_plus.end(), 0.0);
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t k = 0; k < K; ++k) {
            const int64_t cell = key_p[(k * N + j) * B + b];
            mk[k] = count[offsets[k] + cell];
            for (int64_t t = 0; t < T; ++t) mtk[k * T + t] = table[(offsets[k] + cell) * T + t];
          }
          double m_b = 0.0;
          for (int64_t t = 0; t < T; ++t) m_b += mass_j[b * T + t];
          scalar_t* lc = lc_p + ((j * B + b) * T) * A;
          for (int64_t a = 0; a < A; ++a) {
            double pe = 0.0;
            for (const auto& nz : rows[a]) pe += nz.c * mk[nz.k];
            const scalar_t lpe = log2_of<scalar_t>(pe);  // pe >= 1/B: the sample's own cell
            acc_plus[a] -= m_b * lpe;
            for (int64_t t = 0; t < T; ++t) {
              double pet = 0.0;
              for (const auto& nz : rows[a]) pet += nz.c * mtk[nz.k * T + t];
              scalar_t value = 0;
              if (pet > 0) {
                value = log2_of<scalar_t>(pet) - lpe;
                acc_cond[a] += mass_j[b * T + t] * value;
              }
              lc[t * A + a] = value;
            }
          }
        }
        for (int64_t a = 0; a < A; ++a) {
          cond_p[j * A + a] = static_cast<scalar_t>(acc_cond[a]);
          plus_p[j * A + a] = static_cast<scalar_t>(acc_plus[a]);
        }
      }
    });
  });
  return {cond, plus, log_cond};
}

// Gradient of sum_a (g_cond[j,a] cond[j,a] + g_plus[j,a] plus[j,a]) with respect to mass (N, B, T).
torch::Tensor sx_backward(torch::Tensor keys, torch::Tensor sizes, torch::Tensor mass, torch::Tensor coeffs,
                          torch::Tensor log_cond, torch::Tensor g_cond, torch::Tensor g_plus) {
  keys = keys.to(torch::kLong).contiguous();
  sizes = sizes.to(torch::kLong).contiguous();
  mass = mass.contiguous();
  log_cond = log_cond.contiguous();
  g_cond = g_cond.to(torch::kDouble).contiguous();
  g_plus = g_plus.to(torch::kDouble).contiguous();
  const int64_t K = keys.size(0), N = keys.size(1), B = keys.size(2), T = mass.size(2);
  const int64_t A = coeffs.size(0);
  auto rows = sparse_rows(coeffs);
  std::vector<int64_t> offsets(K + 1, 0);
  const int64_t* sz = sizes.data_ptr<int64_t>();
  for (int64_t k = 0; k < K; ++k) offsets[k + 1] = offsets[k] + sz[k];
  auto grad = torch::empty_like(mass);
  const int64_t* key_p = keys.data_ptr<int64_t>();
  const double* gc = g_cond.data_ptr<double>();
  const double* gp = g_plus.data_ptr<double>();
  const double inv_ln2 = 1.4426950408889634;

  AT_DISPATCH_FLOATING_TYPES(mass.scalar_type(), "sx_backward", [&] {
    const scalar_t* m = mass.data_ptr<scalar_t>();
    const scalar_t* lc_p = log_cond.data_ptr<scalar_t>();
    scalar_t* out = grad.data_ptr<scalar_t>();
    at::parallel_for(0, N, 1, [&](int64_t lo, int64_t hi) {
      std::vector<double> count(offsets[K]), table(offsets[K] * T), mass_j(B * T);
      std::vector<double> back(offsets[K] * T), mk(K), mtk(K * T), g_b(B * T);
      for (int64_t j = lo; j < hi; ++j) {
        for (int64_t i = 0; i < B * T; ++i) mass_j[i] = static_cast<double>(m[j * B * T + i]);
        fill_tables(key_p, sz, offsets.data(), K, N, B, T, j, mass_j.data(), count, table);
        std::fill(back.begin(), back.end(), 0.0);
        const double* gcj = gc + j * A;
        const double* gpj = gp + j * A;
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t k = 0; k < K; ++k) {
            const int64_t cell = key_p[(k * N + j) * B + b];
            mk[k] = count[offsets[k] + cell];
            for (int64_t t = 0; t < T; ++t) mtk[k * T + t] = table[(offsets[k] + cell) * T + t];
          }
          const scalar_t* lc = lc_p + ((j * B + b) * T) * A;
          double plus_term = 0.0;  // d plus / d m_bt = -log2 P(E) (the same for every t)
          for (int64_t a = 0; a < A; ++a) {
            if (gpj[a] != 0.0) {
              double pe = 0.0;
              for (const auto& nz : rows[a]) pe += nz.c * mk[nz.k];
              plus_term -= gpj[a] * std::log2(pe);
            }
          }
          for (int64_t t = 0; t < T; ++t) {
            double direct = plus_term;
            const double m_bt = mass_j[b * T + t];
            for (int64_t a = 0; a < A; ++a) {
              if (gcj[a] == 0.0) continue;
              direct += gcj[a] * static_cast<double>(lc[t * A + a]);
              if (m_bt == 0.0) continue;
              double pet = 0.0;
              for (const auto& nz : rows[a]) pet += nz.c * mtk[nz.k * T + t];
              if (pet <= 0) continue;
              const double r = gcj[a] * m_bt / pet * inv_ln2;
              for (const auto& nz : rows[a]) {
                const int64_t cell = key_p[(nz.k * N + j) * B + b];
                back[(offsets[nz.k] + cell) * T + t] += nz.c * r;
              }
            }
            g_b[b * T + t] = direct;
          }
        }
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t t = 0; t < T; ++t) {
            double total = g_b[b * T + t];
            for (int64_t k = 0; k < K; ++k) {
              const int64_t cell = key_p[(k * N + j) * B + b];
              total += back[(offsets[k] + cell) * T + t];
            }
            out[(j * B + b) * T + t] = static_cast<scalar_t>(total);
          }
        }
      }
    });
  });
  return grad;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("forward", &sx_forward, "I^sx per-sample sums (forward)");
  module.def("backward", &sx_backward, "I^sx per-sample sums (backward)");
}
