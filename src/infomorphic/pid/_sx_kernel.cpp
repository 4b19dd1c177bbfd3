// Fused CPU kernel for the I^sx training path (infomorphic.pid.samples).
//
// For every neuron j (in parallel over neurons) and every antichain a of the lattice, from the
// samples' cells in the marginal table of every source subset k (keys[k, j, b]) and the
// per-sample target masses m[j, b, t] = p(t | b) / B:
//
//   cond[j, a] = sum_{b,t} m[j,b,t] * log2( P(E_a(s_b), t) / P(E_a(s_b)) )   (0 where P(E_a, t) = 0)
//   plus[j, a] = -sum_{b,t} m[j,b,t] * log2 P(E_a(s_b))                       (informative part)
//
// with P(E_a(s), t) = sum_k coeffs[a, k] * P(S_k = s_k, t) (inclusion-exclusion) and P(E_a(s))
// the same over sample counts / B.  The summand of antichain a depends on a sample only through
// its cell in the table of the sources a involves (union[a]), so each sum runs over the occupied
// cells of that table, weighted by the cell's mass: every logarithm is taken once per occupied
// cell, not once per sample.  The backward pass returns the gradient of
// sum_a (g_cond[j,a] cond[j,a] + g_plus[j,a] plus[j,a]) with respect to m[j, b, t]:
//
//   sum_a g_cond[a] ( log2 P(t | E_a(s_b)) + (1/ln 2) sum_k coeffs[a,k] sum_{b': s_b'k = s_bk} m[b',t] / P(E_a(s_b'), t) )
//     - sum_a g_plus[a] log2 P(E_a(s_b)),
//
// accumulated per cell and gathered back to the samples.  When the gradient's direction is known
// in advance (training), values and gradient come from one pass.  Tables are kept in double.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

struct Nonzero {
  int64_t k;
  double c;
};

struct Occupied {
  int64_t cell;
  int64_t sample;  // a sample in that cell: its cells in the sub-tables are the cell's projections
};

struct Problem {
  int64_t K, N, B, T, A;
  const int64_t* keys;  // (K, N, B)
  std::vector<int64_t> offsets;  // start of each subset's table in the flat tables
  std::vector<std::vector<Nonzero>> rows;  // nonzero inclusion-exclusion coefficients per antichain
  std::vector<int64_t> unions;  // subset index of the sources each antichain involves
  std::vector<std::vector<int64_t>> by_union;  // antichains per union subset
  std::vector<std::vector<int64_t>> parts;  // per union subset u: the subsets k that antichains of u use

  int64_t key(int64_t k, int64_t j, int64_t b) const { return keys[(k * N + j) * B + b]; }
};

Problem make_problem(const torch::Tensor& keys, const torch::Tensor& sizes, const torch::Tensor& coeffs,
                     const torch::Tensor& unions, int64_t T) {
  Problem p;
  p.K = keys.size(0);
  p.N = keys.size(1);
  p.B = keys.size(2);
  p.T = T;
  p.A = coeffs.size(0);
  TORCH_CHECK(coeffs.size(1) == p.K && sizes.size(0) == p.K && unions.size(0) == p.A, "shape mismatch");
  p.keys = keys.data_ptr<int64_t>();
  p.offsets.assign(p.K + 1, 0);
  const int64_t* sz = sizes.data_ptr<int64_t>();
  for (int64_t k = 0; k < p.K; ++k) p.offsets[k + 1] = p.offsets[k] + sz[k];
  auto c = coeffs.to(torch::kDouble).contiguous();
  const double* cp = c.data_ptr<double>();
  p.rows.resize(p.A);
  for (int64_t a = 0; a < p.A; ++a)
    for (int64_t k = 0; k < p.K; ++k)
      if (cp[a * p.K + k] != 0.0) p.rows[a].push_back({k, cp[a * p.K + k]});
  const int64_t* u = unions.data_ptr<int64_t>();
  p.unions.assign(u, u + p.A);
  p.by_union.assign(p.K, {});
  p.parts.assign(p.K, {});
  for (int64_t a = 0; a < p.A; ++a) {
    TORCH_CHECK(p.unions[a] >= 0 && p.unions[a] < p.K, "bad union index");
    p.by_union[p.unions[a]].push_back(a);
    for (const auto& nz : p.rows[a]) {
      auto& v = p.parts[p.unions[a]];
      if (std::find(v.begin(), v.end(), nz.k) == v.end()) v.push_back(nz.k);
    }
  }
  return p;
}

// Per-thread scratch: tables of counts and masses for every subset, and the occupied cells.
struct Scratch {
  std::vector<double> count, table, back;
  std::vector<std::vector<Occupied>> occupied;
  explicit Scratch(const Problem& p)
      : count(p.offsets[p.K], 0.0), table(p.offsets[p.K] * p.T, 0.0), back(p.offsets[p.K] * p.T, 0.0),
        occupied(p.K) {}

  template <typename scalar_t>
  void fill(const Problem& p, int64_t j, const scalar_t* mass_j) {
    const double inv_b = 1.0 / static_cast<double>(p.B);
    for (int64_t k = 0; k < p.K; ++k) {
      double* cnt = count.data() + p.offsets[k];
      double* tab = table.data() + p.offsets[k] * p.T;
      auto& occ = occupied[k];
      occ.clear();
      for (int64_t b = 0; b < p.B; ++b) {
        const int64_t cell = p.key(k, j, b);
        if (cnt[cell] == 0.0) occ.push_back({cell, b});
        cnt[cell] += inv_b;
        for (int64_t t = 0; t < p.T; ++t) tab[cell * p.T + t] += static_cast<double>(mass_j[b * p.T + t]);
      }
    }
  }

  void clear(const Problem& p) {
    for (int64_t k = 0; k < p.K; ++k) {
      for (const auto& o : occupied[k]) {
        const int64_t i = p.offsets[k] + o.cell;
        count[i] = 0.0;
        for (int64_t t = 0; t < p.T; ++t) table[i * p.T + t] = back[i * p.T + t] = 0.0;
      }
    }
  }

  // Flat table index, count and masses of every subset u's antichains use, at one occupied cell
  // of u (through its representative sample).
  void gather(const Problem& p, int64_t u, int64_t j, int64_t sample, int64_t* index, double* mk,
              double* mtk) const {
    for (int64_t k : p.parts[u]) {
      const int64_t i = p.offsets[k] + p.key(k, j, sample);
      index[k] = i;
      mk[k] = count[i];
      for (int64_t t = 0; t < p.T; ++t) mtk[k * p.T + t] = table[i * p.T + t];
    }
  }
};

// log2 of a positive, normal float to about 2 ulp: exponent plus the Cephes polynomial for
// log(1 + z) on the mantissa, |z| < 0.42.  Several times faster than the libm call.
inline float fast_log2f(float x) {
  int32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  int32_t e = ((bits >> 23) & 0xff) - 127;
  bits = (bits & 0x007fffff) | 0x3f800000;  // mantissa in [1, 2)
  float m;
  std::memcpy(&m, &bits, sizeof m);
  if (m > 1.41421356f) {
    m *= 0.5f;
    e += 1;
  }
  const float z = m - 1.0f, z2 = z * z;
  float y = 7.0376836292e-2f;
  y = y * z - 1.1514610310e-1f;
  y = y * z + 1.1676998740e-1f;
  y = y * z - 1.2420140846e-1f;
  y = y * z + 1.4249322787e-1f;
  y = y * z - 1.6668057665e-1f;
  y = y * z + 2.0000714765e-1f;
  y = y * z - 2.4999993993e-1f;
  y = y * z + 3.3333331174e-1f;
  const float ln = z + (y * z * z2 - 0.5f * z2);
  return ln * 1.44269504088896341f + static_cast<float>(e);
}

// Logarithms in the input precision: exact libm for double, the fast form for float.
template <typename scalar_t>
inline double lg(double x) {
  return std::log2(x);
}

template <>
inline double lg<float>(double x) {
  return static_cast<double>(fast_log2f(static_cast<float>(x)));
}

// P(E_a) and P(E_a, t) from the gathered marginals.
inline double event(const Problem& p, int64_t a, const double* mk, const double* mtk, double* pet) {
  double pe = 0.0;
  for (int64_t t = 0; t < p.T; ++t) pet[t] = 0.0;
  for (const auto& nz : p.rows[a]) {
    pe += nz.c * mk[nz.k];
    for (int64_t t = 0; t < p.T; ++t) pet[t] += nz.c * mtk[nz.k * p.T + t];
  }
  return pe;
}

}  // namespace

// One pass per neuron: the sums (when want_values) and, when g_cond / g_plus (N, A) are given
// (non-empty), the gradient of sum_a (g_cond[j,a] cond[j,a] + g_plus[j,a] plus[j,a]) with respect
// to the masses, sharing the tables and the logarithms.  Returns {cond, plus, grad}; a part that
// was not asked for is an empty tensor.
std::vector<torch::Tensor> sx_run(torch::Tensor keys, torch::Tensor sizes, torch::Tensor mass, torch::Tensor coeffs,
                                  torch::Tensor unions, torch::Tensor g_cond, torch::Tensor g_plus,
                                  bool want_values) {
  keys = keys.to(torch::kLong).contiguous();
  sizes = sizes.to(torch::kLong).contiguous();
  unions = unions.to(torch::kLong).contiguous();
  mass = mass.contiguous();
  TORCH_CHECK(keys.dim() == 3 && mass.dim() == 3 && mass.size(0) == keys.size(1) && mass.size(1) == keys.size(2),
              "keys (K, N, B) and mass (N, B, T) expected");
  const Problem p = make_problem(keys, sizes, coeffs, unions, mass.size(2));
  const bool want_grad = g_cond.numel() > 0 || g_plus.numel() > 0;
  auto zeros_na = torch::zeros({p.N, p.A}, torch::kDouble);
  g_cond = (g_cond.numel() > 0 ? g_cond : zeros_na).to(torch::kDouble).contiguous();
  g_plus = (g_plus.numel() > 0 ? g_plus : zeros_na).to(torch::kDouble).contiguous();
  TORCH_CHECK(g_cond.numel() == p.N * p.A && g_plus.numel() == p.N * p.A, "gradients must be (N, A)");
  auto cond = want_values ? torch::zeros({p.N, p.A}, mass.options()) : torch::empty({0}, mass.options());
  auto plus = want_values ? torch::zeros({p.N, p.A}, mass.options()) : torch::empty({0}, mass.options());
  auto grad = want_grad ? torch::empty_like(mass) : torch::empty({0}, mass.options());
  const double* gc = g_cond.data_ptr<double>();
  const double* gp = g_plus.data_ptr<double>();
  const double inv_ln2 = 1.4426950408889634;
  AT_DISPATCH_FLOATING_TYPES(mass.scalar_type(), "sx_run", [&] {
    const scalar_t* m = mass.data_ptr<scalar_t>();
    scalar_t* cond_p = want_values ? cond.data_ptr<scalar_t>() : nullptr;
    scalar_t* plus_p = want_values ? plus.data_ptr<scalar_t>() : nullptr;
    scalar_t* out = want_grad ? grad.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, p.N, 1, [&](int64_t lo, int64_t hi) {
      Scratch s(p);
      std::vector<double> pet(p.T), mk(p.K), mtk(p.K * p.T), racc(p.K * p.T), acc_cond(p.A), acc_plus(p.A);
      std::vector<int64_t> index(p.K);
      for (int64_t j = lo; j < hi; ++j) {
        s.fill(p, j, m + j * p.B * p.T);
        std::fill(acc_cond.begin(), acc_cond.end(), 0.0);
        std::fill(acc_plus.begin(), acc_plus.end(), 0.0);
        const double* gj = gc + j * p.A;
        const double* hj = gp + j * p.A;
        for (int64_t u = 0; u < p.K; ++u) {
          if (p.by_union[u].empty()) continue;
          bool active = want_values;
          for (int64_t a : p.by_union[u]) active = active || gj[a] != 0.0 || hj[a] != 0.0;
          if (!active) continue;
          for (const auto& o : s.occupied[u]) {
            s.gather(p, u, j, o.sample, index.data(), mk.data(), mtk.data());
            const int64_t cell_i = p.offsets[u] + o.cell;
            const double* w = s.table.data() + cell_i * p.T;  // the cell's mass per t
            if (want_grad)
              for (int64_t k : p.parts[u])
                for (int64_t t = 0; t < p.T; ++t) racc[k * p.T + t] = 0.0;
            for (int64_t a : p.by_union[u]) {
              const double g = gj[a], h = hj[a];
              const double pe = event(p, a, mk.data(), mtk.data(), pet.data());
              const double lpe = lg<scalar_t>(pe);  // pe >= 1/B: the cell's own samples
              for (int64_t t = 0; t < p.T; ++t) {
                const double lc = pet[t] > 0 ? lg<scalar_t>(pet[t]) - lpe : 0.0;
                acc_plus[a] -= w[t] * lpe;
                acc_cond[a] += w[t] * lc;
                if (!want_grad || (g == 0.0 && h == 0.0)) continue;
                if (pet[t] > 0 && g != 0.0) {
                  const double r = g * w[t] / pet[t] * inv_ln2;
                  for (const auto& nz : p.rows[a]) racc[nz.k * p.T + t] += nz.c * r;
                }
                s.back[cell_i * p.T + t] += g * lc - h * lpe;  // d/dm of m * lc and of -m * lpe
              }
            }
            if (want_grad)
              for (int64_t k : p.parts[u])
                for (int64_t t = 0; t < p.T; ++t) s.back[index[k] * p.T + t] += racc[k * p.T + t];
          }
        }
        if (want_values) {
          for (int64_t a = 0; a < p.A; ++a) {
            cond_p[j * p.A + a] = static_cast<scalar_t>(acc_cond[a]);
            plus_p[j * p.A + a] = static_cast<scalar_t>(acc_plus[a]);
          }
        }
        if (want_grad) {
          scalar_t* out_j = out + j * p.B * p.T;
          for (int64_t b = 0; b < p.B; ++b) {
            for (int64_t t = 0; t < p.T; ++t) {
              double total = 0.0;
              for (int64_t k = 0; k < p.K; ++k) total += s.back[(p.offsets[k] + p.key(k, j, b)) * p.T + t];
              out_j[b * p.T + t] = static_cast<scalar_t>(total);
            }
          }
        }
        s.clear(p);
      }
    });
  });
  return {cond, plus, grad};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("run", &sx_run, "I^sx sums per neuron and antichain and / or their gradient");
}
