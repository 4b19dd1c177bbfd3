// Fused CPU kernel for the I^sx training path (infomorphic.pid.samples).
//
// For every neuron j (in parallel over neurons) and every antichain a of the lattice, from the
// samples' bins (bins[b, j, i], any strides) and the per-sample target masses
// m[j, b, t] = w[b, j, t] / B (w = p(t | b), or for a binary target w = (1 - theta, theta) given
// as theta[b, j] alone).  Each sample's cell in the marginal table of every source subset k
// (keys[k, b], per neuron) is computed here: the bins folded into a dense index, or, for tables
// larger than dense_factor * B cells, a number for that index among the neuron's distinct ones
// (in order of first occurrence, through a hash table).
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
// accumulated per cell and gathered back to the samples (and returned with respect to w, or to
// theta for a binary target).  A sample's cell in the table of all sources determines its cell in
// every marginal table, so when the marginal tables are dense (the usual case: e.g. 20 bins per
// source and batches of 1024) only that finest table is filled from the samples, and the
// marginals from its occupied cells (Scratch::load_projected); per sample the work is then one
// key, one table update and one gather of the gradient, whatever the number of subsets (for a
// binary target and 2 to 4 sources in one loop: Scratch::load_projected_binary).  When the
// gradient's direction is known in advance (training), values and gradient come from one pass.
// Tables are kept in double.
//
// The same module holds the fused activation of the neurons (act_forward / act_backward, at the
// end of this file): A = f * (k0 + sum_i term_i(b_i f m_i)) and theta = sigmoid(A), with
// term_i(x) = a_i sigmoid(x) (plain) or a_i (2 sigmoid(x) - 1) (centred), and its gradient, in
// one pass over the elements each, instead of the dozen elementwise tensor operations (and
// their autograd records) of the PyTorch expression; and the product of the neurons with their
// sparse partners (partner_forward / partner_backward, before the module definition).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define INFOMORPHIC_AVX512 1
#endif

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
  int64_t K, N, B, T, A, n;
  std::vector<std::vector<int64_t>> members;  // sources of each subset k
  std::vector<int64_t> bins_per_source;
  std::vector<bool> ranked;  // subset k's table is rank-compressed (at most B cells)
  std::vector<int64_t> offsets;  // start of each subset's table in the flat tables
  std::vector<std::vector<Nonzero>> rows;  // nonzero inclusion-exclusion coefficients per antichain
  std::vector<int64_t> unions;  // subset index of the sources each antichain involves
  std::vector<std::vector<int64_t>> by_union;  // antichains per union subset
  std::vector<std::vector<int64_t>> parts;  // per union subset u: the subsets k that antichains of u use
  std::vector<int64_t> mult;  // (K, n): key of subset k = sum_i mult[k, i] * bin_i (0 for non-members)
  int64_t full = -1;  // the subset of all n sources (the finest table)
  bool project = false;  // every other subset's table is dense: filled from the finest table's cells
};

Problem make_problem(int64_t B, int64_t N, const torch::Tensor& sizes, const torch::Tensor& members,
                     int64_t dense_factor, const torch::Tensor& coeffs, const torch::Tensor& unions, int64_t T) {
  Problem p;
  p.K = members.size(0);
  p.n = members.size(1);
  p.N = N;
  p.B = B;
  p.T = T;
  p.A = coeffs.size(0);
  TORCH_CHECK(coeffs.size(1) == p.K && sizes.size(0) == p.n && unions.size(0) == p.A, "shape mismatch");
  const int64_t* sz = sizes.data_ptr<int64_t>();
  const int64_t* mem = members.data_ptr<int64_t>();
  p.bins_per_source.assign(sz, sz + p.n);
  p.members.assign(p.K, {});
  p.ranked.assign(p.K, false);
  p.offsets.assign(p.K + 1, 0);
  for (int64_t k = 0; k < p.K; ++k) {
    double cells = 1.0;
    for (int64_t i = 0; i < p.n; ++i)
      if (mem[k * p.n + i] != 0) {
        p.members[k].push_back(i);
        cells *= static_cast<double>(sz[i]);
      }
    TORCH_CHECK(!p.members[k].empty(), "empty source subset");
    p.ranked[k] = cells > static_cast<double>(dense_factor) * static_cast<double>(B);
    // row-major fold of the members' bins: the last member varies fastest
    int64_t stride = 1;
    std::vector<int64_t> m(p.n, 0);
    for (auto it = p.members[k].rbegin(); it != p.members[k].rend(); ++it) {
      m[*it] = stride;
      stride *= sz[*it];
    }
    p.mult.insert(p.mult.end(), m.begin(), m.end());
    p.offsets[k + 1] = p.offsets[k] + (p.ranked[k] ? B : static_cast<int64_t>(cells));
  }
  for (int64_t k = 0; k < p.K; ++k)
    if (static_cast<int64_t>(p.members[k].size()) == p.n) p.full = k;
  TORCH_CHECK(p.full >= 0, "no subset holds every source");
  p.project = true;
  for (int64_t k = 0; k < p.K; ++k)
    if (k != p.full && p.ranked[k]) p.project = false;
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

// The loop of Scratch::load_projected_binary over a neuron's samples, in a function of its own:
// each sample's key in the finest table, its count and masses added to its cell, and the cells in
// order of first occurrence written to occ (their number returned).  Inlined into sx_run's large
// per-neuron lambda, g++ kept most of its variables on the stack and reloaded them every sample;
// here they stay in registers (the kernel call on setup 2's captured inputs: 0.87x).
template <int NS, typename index_t, typename scalar_t>
__attribute__((noinline)) int64_t binary_samples(const index_t* const* src, const int64_t* m, int64_t sb,
                                                 const scalar_t* __restrict wj, int64_t wb, int64_t B, double inv_b,
                                                 int64_t* __restrict kk, double* __restrict cnt,
                                                 double* __restrict tab, Occupied* __restrict occ) {
  const index_t* s[NS];
  int64_t mm[NS];
  for (int i = 0; i < NS; ++i) {
    s[i] = src[i];
    mm[i] = m[i];
  }
  int64_t n_occ = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t key = 0;
    for (int i = 0; i < NS; ++i) key += mm[i] * static_cast<int64_t>(s[i][b * sb]);
    kk[b] = key;
    const double theta = static_cast<double>(wj[b * wb]);
    const double c = cnt[key];
    if (c == 0.0) occ[n_occ++] = {key, b};
    cnt[key] = c + inv_b;
    tab[key * 2] += (1.0 - theta) * inv_b;
    tab[key * 2 + 1] += theta * inv_b;
  }
  return n_occ;
}

// Per-thread scratch: tables of counts and masses for every subset, and the occupied cells.
struct Scratch {
  std::vector<double> count, table, back, mass, total;
  std::vector<int64_t> keys;  // (K, B): each sample's cell in each subset's table, this neuron
  // rank compression: an open-addressing hash table from a key to its rank (>= 2B slots, so
  // O(B) memory whatever the table's size), emptied again through the slots it used
  std::vector<int64_t> hash_keys, hash_ranks, hash_used;
  int hash_shift;
  std::vector<std::vector<Occupied>> occupied;
  std::vector<Occupied> first;  // binary_samples writes the finest table's occupied cells here
  explicit Scratch(const Problem& p)
      : count(p.offsets[p.K], 0.0), table(p.offsets[p.K] * p.T, 0.0), back(p.offsets[p.K] * p.T, 0.0),
        mass(p.B * p.T), total((p.offsets[p.full + 1] - p.offsets[p.full]) * p.T), keys(p.K * p.B),
        occupied(p.K) {
    int bits = 1;
    while ((int64_t{1} << bits) < 2 * p.B) ++bits;
    hash_keys.assign(int64_t{1} << bits, -1);
    hash_ranks.assign(int64_t{1} << bits, 0);
    hash_used.reserve(p.B);
    hash_shift = 64 - bits;
  }

  int64_t key(const Problem& p, int64_t k, int64_t b) const { return keys[k * p.B + b]; }

  // Each sample's cell in the table of subset `only` (every subset when only < 0), its bins read
  // once, and its target masses m[b, t] = w[b, j, t] / B.
  template <typename index_t, typename scalar_t>
  void read_samples(const Problem& p, const index_t* bins, int64_t sb, int64_t sn, int64_t si, const scalar_t* w,
                    int64_t wb, int64_t wn, int64_t wt, bool binary, int64_t j, int64_t only) {
    const double inv_b = 1.0 / static_cast<double>(p.B);
    const int64_t n = p.n, T = p.T, B = p.B;
    const int64_t k_lo = only < 0 ? 0 : only, k_hi = only < 0 ? p.K : only + 1;
    int64_t v[8];
    for (int64_t b = 0; b < B; ++b) {
      const index_t* row = bins + b * sb + j * sn;
      for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(row[i * si]);
      for (int64_t k = k_lo; k < k_hi; ++k) {
        const int64_t* mk = p.mult.data() + k * n;
        int64_t key = 0;
        for (int64_t i = 0; i < n; ++i) key += mk[i] * v[i];
        keys[k * B + b] = key;
      }
      const scalar_t* wj = w + b * wb + j * wn;
      double* mb = mass.data() + b * T;
      if (binary) {
        const double theta = static_cast<double>(*wj);
        mb[0] = (1.0 - theta) * inv_b;
        mb[1] = theta * inv_b;
      } else {
        for (int64_t t = 0; t < T; ++t) mb[t] = static_cast<double>(wj[t * wt]) * inv_b;
      }
    }
  }

  // Subset k's table from its samples, in order of b (its occupied cells in order of first
  // occurrence); a rank-compressed subset's keys are first replaced by their ranks.
  void fill_table(const Problem& p, int64_t k) {
    const double inv_b = 1.0 / static_cast<double>(p.B);
    const int64_t T = p.T, B = p.B;
    int64_t* kk = keys.data() + k * B;
    if (p.ranked[k]) {
      // ranks in order of first occurrence (any numbering of the cells gives the same sums: the
      // occupied cells are visited in order of first occurrence either way)
      const uint64_t mask = hash_keys.size() - 1;
      int64_t next = 0;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t key = kk[b];
        uint64_t h = (static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ull) >> hash_shift;
        while (hash_keys[h] != -1 && hash_keys[h] != key) h = (h + 1) & mask;
        if (hash_keys[h] == -1) {
          hash_keys[h] = key;
          hash_ranks[h] = next++;
          hash_used.push_back(static_cast<int64_t>(h));
        }
        kk[b] = hash_ranks[h];
      }
      for (int64_t h : hash_used) hash_keys[h] = -1;
      hash_used.clear();
    }
    double* cnt = count.data() + p.offsets[k];
    double* tab = table.data() + p.offsets[k] * T;
    auto& occ = occupied[k];
    occ.clear();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t cell = kk[b];
      if (cnt[cell] == 0.0) occ.push_back({cell, b});
      cnt[cell] += inv_b;
      for (int64_t t = 0; t < T; ++t) tab[cell * T + t] += mass[b * T + t];
    }
  }

  // Every subset's table from the samples (needed when a marginal table is rank-compressed).
  template <typename index_t, typename scalar_t>
  void load(const Problem& p, const index_t* bins, int64_t sb, int64_t sn, int64_t si, const scalar_t* w,
            int64_t wb, int64_t wn, int64_t wt, bool binary, int64_t j) {
    read_samples(p, bins, sb, sn, si, w, wb, wn, wt, binary, j, -1);
    for (int64_t k = 0; k < p.K; ++k) fill_table(p, k);
  }

  // The same tables as load(), when every subset but the finest is dense: the finest table (all
  // sources: a sample's cell there fixes its cell in every marginal) is filled from the samples,
  // then each of its occupied cells adds its count and masses to its projection in every other
  // subset's table.  Per sample that is one key and one table update instead of one per subset.
  // Keys of the other subsets are kept only for each finest cell's representative sample (the
  // one gather() and the gradient read).
  template <typename index_t, typename scalar_t>
  void load_projected(const Problem& p, const index_t* bins, int64_t sb, int64_t sn, int64_t si, const scalar_t* w,
                      int64_t wb, int64_t wn, int64_t wt, bool binary, int64_t j) {
    read_samples(p, bins, sb, sn, si, w, wb, wn, wt, binary, j, p.full);
    for (int64_t k = 0; k < p.K; ++k) occupied[k].clear();
    fill_table(p, p.full);
    project(p, bins, sb, sn, si, j);
  }

  // load_projected for a binary target and NS sources (the tables of training), with the finest
  // table dense: keys, masses and table updates in one pass over the samples, the same operations
  // in the same order as read_samples and fill_table (the same bits), without their loops over
  // the sources and targets, the masses' round trip through memory and a second pass.  At the few
  // occupied cells of a layer in training this pass is most of the kernel's time.
  template <int NS, typename index_t, typename scalar_t>
  void load_projected_binary(const Problem& p, const index_t* bins, int64_t sb, int64_t sn, int64_t si,
                             const scalar_t* w, int64_t wb, int64_t wn, int64_t j) {
    const double inv_b = 1.0 / static_cast<double>(p.B);
    const int64_t B = p.B, F = p.full;
    int64_t m[NS];
    const index_t* src[NS];
    for (int i = 0; i < NS; ++i) {
      m[i] = p.mult[F * p.n + i];
      src[i] = bins + j * sn + i * si;
    }
    const scalar_t* wj = w + j * wn;
    int64_t* kk = keys.data() + F * B;
    double* cnt = count.data() + p.offsets[F];
    double* tab = table.data() + p.offsets[F] * 2;
    for (int64_t k = 0; k < p.K; ++k) occupied[k].clear();
    if (static_cast<int64_t>(first.size()) < B) first.resize(B);
    const int64_t n_occ = binary_samples<NS>(src, m, sb, wj, wb, B, inv_b, kk, cnt, tab, first.data());
    occupied[F].assign(first.begin(), first.begin() + n_occ);
    project(p, bins, sb, sn, si, j);
  }

  // Every other subset's table from the finest one's occupied cells (see load_projected).
  template <typename index_t>
  void project(const Problem& p, const index_t* bins, int64_t sb, int64_t sn, int64_t si, int64_t j) {
    const int64_t K = p.K, n = p.n, T = p.T, B = p.B, F = p.full;
    const double* cf = count.data() + p.offsets[F];
    const double* tf = table.data() + p.offsets[F] * T;
    const auto& occ_f = occupied[F];
    int64_t v[8];
    for (const auto& o : occ_f) {
      const index_t* row = bins + o.sample * sb + j * sn;
      for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(row[i * si]);
      const double c = cf[o.cell];
      const double* tc = tf + o.cell * T;
      for (int64_t k = 0; k < K; ++k) {
        if (k == F) continue;
        const int64_t* mk = p.mult.data() + k * n;
        int64_t key = 0;
        for (int64_t i = 0; i < n; ++i) key += mk[i] * v[i];
        keys[k * B + o.sample] = key;
        double* cnt = count.data() + p.offsets[k];
        double* tab = table.data() + p.offsets[k] * T;
        if (cnt[key] == 0.0) occupied[k].push_back({key, o.sample});
        cnt[key] += c;
        for (int64_t t = 0; t < T; ++t) tab[key * T + t] += tc[t];
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


// The (occupied cell, antichain) pairs of one union subset u, kLanes cells at a time: each
// cell's marginals are gathered into lanes (structure of arrays), and every antichain of u is
// evaluated for all lanes at once in loops over the lanes that the compiler vectorises (the
// inclusion-exclusion sums, the logarithms, the gradient's per-subset accumulators).  Each lane
// sees exactly the operations, in the same order, that a cell saw when cells were evaluated one
// at a time, and the per-antichain sums are still taken over cells in order, so the results are
// the same to the bit.
constexpr int64_t kLanes = 32;

// One clone per instruction set, chosen when the module loads (see the activation below).  The
// union passes and the partner products switch contraction off (fp-contract=off), so their clones
// round as the baseline build does.  The activation's clones do not: AVX-512F includes fused
// multiply-adds, and g++ uses them in its AVX-512 clone (act_forward_float, act_backward_float), so
// theta on a CPU with AVX-512 can differ in the last bit from theta on one without (as PyTorch's
// own kernels and matrix products differ between instruction sets); on one CPU it is always the
// same.  (On a CPU with AVX2 but not AVX-512 the activation runs act_forward_avx2 /
// act_backward_avx2 instead of the clones: the same operations, so the bits of the AVX2 clone.)
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define INFOMORPHIC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define INFOMORPHIC_CLONES
#endif

// The hand-vectorised loops (the spike kernels, the activation on AVX2) come in versions per
// instruction set, chosen at run time: "avx512", "avx2", and "generic" (the loops as written,
// compiled for the baseline instruction set).  vector_paths(): those this CPU runs, the fastest
// first; vector_path(name): "best" (the first of them) or one of them by name (tests).
#if defined(INFOMORPHIC_AVX512)
bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#else
bool has_avx512() { return false; }
bool has_avx2() { return false; }
#endif

std::vector<std::string> vector_paths() {
  std::vector<std::string> paths;
  if (has_avx512()) paths.push_back("avx512");
  if (has_avx2()) paths.push_back("avx2");
  paths.push_back("generic");
  return paths;
}

enum class VecPath { kAvx512, kAvx2, kGeneric };
VecPath vector_path(const std::string& path) {
  const auto paths = vector_paths();
  const std::string chosen = path == "best" ? paths.front() : path;
  if (std::find(paths.begin(), paths.end(), chosen) == paths.end()) {
    std::string runs = "best";
    for (const auto& name : paths) runs += ", " + name;
    TORCH_CHECK(false, "the kernel's path '", path, "' does not run on this CPU; it runs: ", runs);
  }
  return chosen == "avx512" ? VecPath::kAvx512 : chosen == "avx2" ? VecPath::kAvx2 : VecPath::kGeneric;
}

struct Lanes {
  std::vector<double> mk, mtk, wc, pe, pet, lpe, lc, rr, racc, bk;
  std::vector<int64_t> idx, cell, qpos;
  explicit Lanes(const Problem& p)
      : mk(p.K * kLanes), mtk(p.K * p.T * kLanes), wc(p.T * kLanes), pe(kLanes), pet(p.T * kLanes), lpe(kLanes),
        lc(p.T * kLanes), rr(kLanes), racc(p.K * p.T * kLanes), bk(p.T * kLanes), idx(p.K * kLanes), cell(kLanes),
        qpos(p.K, -1) {}
};

template <typename scalar_t, int64_t TT = 0>
inline __attribute__((always_inline)) void union_pass(const Problem& p, Scratch& s, Lanes& L, int64_t u,
                                                      const double* gj, const double* hj, bool want_grad,
                                                      bool all_values, double* acc_cond, double* acc_plus) {
  const int64_t T = TT > 0 ? TT : p.T;  // TT: the number of targets when known at compile time
  const auto& parts = p.parts[u];
  const int64_t Q = static_cast<int64_t>(parts.size());
  for (int64_t q = 0; q < Q; ++q) L.qpos[parts[q]] = q;
  const auto& occ = s.occupied[u];
  const int64_t total = static_cast<int64_t>(occ.size());
  const double inv_ln2 = 1.4426950408889634;
  double* __restrict mk = L.mk.data();
  double* __restrict mtk = L.mtk.data();
  double* __restrict wc = L.wc.data();
  double* __restrict pe = L.pe.data();
  double* __restrict pet = L.pet.data();
  double* __restrict lpe = L.lpe.data();
  double* __restrict lc = L.lc.data();
  double* __restrict rr = L.rr.data();
  double* __restrict racc = L.racc.data();
  double* __restrict bk = L.bk.data();
  for (int64_t lo = 0; lo < total; lo += kLanes) {
    const int64_t n = std::min(kLanes, total - lo);
    // lanes computed: n rounded up to a multiple of 8, so that the loops over lanes run whole
    // vectors (a table has few occupied cells in training: with n lanes most of them ran in the
    // loops' scalar remainders); the extra lanes hold a neutral cell (every marginal count 1,
    // every mass 1/2, weight 0: finite logarithms), are never stored, and the sums over cells
    // below still stop at n
    const int64_t nv = std::min(kLanes, (n + 7) & ~int64_t{7});
    for (int64_t c = 0; c < n; ++c) {
      const Occupied& o = occ[lo + c];
      const int64_t ci = p.offsets[u] + o.cell;
      L.cell[c] = ci;
      for (int64_t t = 0; t < T; ++t) wc[t * kLanes + c] = s.table[ci * T + t];
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t k = parts[q];
        const int64_t i = p.offsets[k] + s.key(p, k, o.sample);
        L.idx[q * kLanes + c] = i;
        mk[q * kLanes + c] = s.count[i];
        for (int64_t t = 0; t < T; ++t) mtk[(q * T + t) * kLanes + c] = s.table[i * T + t];
      }
    }
    for (int64_t c = n; c < nv; ++c) {
      for (int64_t t = 0; t < T; ++t) wc[t * kLanes + c] = 0.0;
      for (int64_t q = 0; q < Q; ++q) {
        mk[q * kLanes + c] = 1.0;
        for (int64_t t = 0; t < T; ++t) mtk[(q * T + t) * kLanes + c] = 0.5;
      }
    }
    if (want_grad) {
      std::fill(racc, racc + Q * T * kLanes, 0.0);
      for (int64_t c = 0; c < n; ++c)
        for (int64_t t = 0; t < T; ++t) bk[t * kLanes + c] = s.back[L.cell[c] * T + t];
      for (int64_t c = n; c < nv; ++c)
        for (int64_t t = 0; t < T; ++t) bk[t * kLanes + c] = 0.0;
    }
    for (int64_t a : p.by_union[u]) {
      const double g = gj[a], h = hj[a];
      if (!all_values && g == 0.0 && h == 0.0) continue;  // neither its value nor its gradient is wanted
      for (int64_t c = 0; c < nv; ++c) pe[c] = 0.0;
      for (int64_t c = 0; c < T * kLanes; ++c) pet[c] = 0.0;
      for (const auto& nz : p.rows[a]) {
        const double cf = nz.c;
        const double* __restrict m = mk + L.qpos[nz.k] * kLanes;
        for (int64_t c = 0; c < nv; ++c) pe[c] += cf * m[c];
        for (int64_t t = 0; t < T; ++t) {
          const double* __restrict mt = mtk + (L.qpos[nz.k] * T + t) * kLanes;
          double* __restrict pt = pet + t * kLanes;
          for (int64_t c = 0; c < nv; ++c) pt[c] += cf * mt[c];
        }
      }
      for (int64_t c = 0; c < nv; ++c) lpe[c] = lg<scalar_t>(pe[c]);  // pe >= 1/B: the cell's own samples
      for (int64_t t = 0; t < T; ++t) {
        const double* __restrict pt = pet + t * kLanes;
        double* __restrict l = lc + t * kLanes;
        for (int64_t c = 0; c < nv; ++c) {
          const double x = pt[c];
          const double v = lg<scalar_t>(x) - lpe[c];
          l[c] = x > 0 ? v : 0.0;
        }
      }
      double ap = acc_plus[a], ac = acc_cond[a];
      for (int64_t c = 0; c < n; ++c)
        for (int64_t t = 0; t < T; ++t) {
          ap -= wc[t * kLanes + c] * lpe[c];
          ac += wc[t * kLanes + c] * lc[t * kLanes + c];
        }
      acc_plus[a] = ap;
      acc_cond[a] = ac;
      if (!want_grad || (g == 0.0 && h == 0.0)) continue;
      for (int64_t t = 0; t < T; ++t) {
        const double* __restrict pt = pet + t * kLanes;
        const double* __restrict w = wc + t * kLanes;
        if (g != 0.0) {
          for (int64_t c = 0; c < nv; ++c) {
            const double x = pt[c];
            const double v = g * w[c] / x * inv_ln2;
            rr[c] = x > 0 ? v : 0.0;
          }
          for (const auto& nz : p.rows[a]) {
            const double cf = nz.c;
            double* __restrict ra = racc + (L.qpos[nz.k] * T + t) * kLanes;
            for (int64_t c = 0; c < nv; ++c) ra[c] += cf * rr[c];
          }
        }
        const double* __restrict l = lc + t * kLanes;
        double* __restrict b = bk + t * kLanes;
        for (int64_t c = 0; c < nv; ++c) b[c] += g * l[c] - h * lpe[c];  // d/dm of m * lc and of -m * lpe
      }
    }
    if (want_grad)
      for (int64_t c = 0; c < n; ++c) {
        for (int64_t t = 0; t < T; ++t) s.back[L.cell[c] * T + t] = bk[t * kLanes + c];
        for (int64_t q = 0; q < Q; ++q)
          for (int64_t t = 0; t < T; ++t) s.back[L.idx[q * kLanes + c] * T + t] += racc[(q * T + t) * kLanes + c];
      }
  }
}

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
// the zeroing loops as vector stores, not turned into memset (which g++ expands as `rep stos`:
// about 13 % of the pass's time on an AMD Zen 2, whose string instructions start slowly)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
INFOMORPHIC_CLONES void union_pass_float(const Problem& p, Scratch& s, Lanes& L, int64_t u, const double* gj,
                                         const double* hj, bool want_grad, bool all_values, double* acc_cond,
                                         double* acc_plus) {
  union_pass<float>(p, s, L, u, gj, hj, want_grad, all_values, acc_cond, acc_plus);
}
// the same for a binary target (T = 2 known to the compiler: the loops over targets unrolled)
INFOMORPHIC_CLONES void union_pass_float_binary(const Problem& p, Scratch& s, Lanes& L, int64_t u, const double* gj,
                                                const double* hj, bool want_grad, bool all_values, double* acc_cond,
                                                double* acc_plus) {
  union_pass<float, 2>(p, s, L, u, gj, hj, want_grad, all_values, acc_cond, acc_plus);
}
#pragma GCC pop_options

void union_pass_any(float, const Problem& p, Scratch& s, Lanes& L, int64_t u, const double* gj, const double* hj,
                    bool want_grad, bool all_values, double* acc_cond, double* acc_plus) {
  if (p.T == 2) union_pass_float_binary(p, s, L, u, gj, hj, want_grad, all_values, acc_cond, acc_plus);
  else union_pass_float(p, s, L, u, gj, hj, want_grad, all_values, acc_cond, acc_plus);
}

// double: std::log2 is a library call per element, so vector clones would gain little
void union_pass_any(double, const Problem& p, Scratch& s, Lanes& L, int64_t u, const double* gj, const double* hj,
                    bool want_grad, bool all_values, double* acc_cond, double* acc_plus) {
  union_pass<double>(p, s, L, u, gj, hj, want_grad, all_values, acc_cond, acc_plus);
}

}  // namespace

// One pass per neuron: the sums (when want_values) and, when g_cond / g_plus (N, A) are given
// (non-empty), the gradient of sum_a (g_cond[j,a] cond[j,a] + g_plus[j,a] plus[j,a]) with respect
// to the weights, sharing the tables and the logarithms.  bins: (B, N, n) uint8 / int32 / int64,
// any strides; weights: (B, N, T) or, when binary, theta (B, N), any strides; members: (K, n) 0/1,
// the sources of each subset in the order of coeffs' columns.  Returns {cond, plus, grad}; a part
// that was not asked for is an empty tensor; grad has the weights' shape.  With hinted_only, the
// sums are computed only for the antichains whose g_cond or g_plus is non-zero (for the neuron);
// the others hold 0: what a goal whose weights are g_cond needs, and no more.
std::vector<torch::Tensor> sx_run(torch::Tensor bins, torch::Tensor sizes, torch::Tensor members, int64_t dense_factor,
                                  torch::Tensor weights, bool binary, torch::Tensor coeffs, torch::Tensor unions,
                                  torch::Tensor g_cond, torch::Tensor g_plus, bool want_values, bool hinted_only) {
  TORCH_CHECK(bins.dim() == 3, "bins (B, N, n) expected");
  const auto bins_type = bins.scalar_type();
  TORCH_CHECK(bins_type == torch::kLong || bins_type == torch::kInt || bins_type == torch::kByte,
              "bins must be uint8, int32 or int64");
  TORCH_CHECK(binary ? weights.dim() == 2 : weights.dim() == 3, "weights (B, N, T) or theta (B, N) expected");
  TORCH_CHECK(weights.size(0) == bins.size(0) && weights.size(1) == bins.size(1), "bins and weights disagree");
  sizes = sizes.to(torch::kLong).contiguous();
  members = members.to(torch::kLong).contiguous();
  unions = unions.to(torch::kLong).contiguous();
  TORCH_CHECK(members.dim() == 2 && members.size(1) == bins.size(2), "members (K, n) expected");
  const int64_t T = binary ? 2 : weights.size(2);
  const Problem p = make_problem(bins.size(0), bins.size(1), sizes, members, dense_factor, coeffs, unions, T);
  const bool want_grad = g_cond.numel() > 0 || g_plus.numel() > 0;
  auto zeros_na = torch::zeros({p.N, p.A}, torch::kDouble);
  g_cond = (g_cond.numel() > 0 ? g_cond : zeros_na).to(torch::kDouble).contiguous();
  g_plus = (g_plus.numel() > 0 ? g_plus : zeros_na).to(torch::kDouble).contiguous();
  TORCH_CHECK(g_cond.numel() == p.N * p.A && g_plus.numel() == p.N * p.A, "gradients must be (N, A)");
  auto cond = want_values ? torch::zeros({p.N, p.A}, weights.options()) : torch::empty({0}, weights.options());
  auto plus = want_values ? torch::zeros({p.N, p.A}, weights.options()) : torch::empty({0}, weights.options());
  // the weights' memory layout where it is dense (e.g. samples fastest), so the writes follow the reads
  auto grad = want_grad ? torch::empty_like(weights) : torch::empty({0}, weights.options());
  const double* gc = g_cond.data_ptr<double>();
  const double* gp = g_plus.data_ptr<double>();
  const double inv_b = 1.0 / static_cast<double>(p.B);
  const int64_t wb = weights.stride(0), wn = weights.stride(1), wt = binary ? 0 : weights.stride(2);
  const int64_t sb = bins.stride(0), sn = bins.stride(1), si = bins.stride(2);
  const int64_t gsb = want_grad ? grad.stride(0) : 0, gsn = want_grad ? grad.stride(1) : 0;
  const int64_t gst = want_grad && !binary ? grad.stride(2) : 0;
  // the fused pass over the samples (Scratch::load_projected_binary) for 2 to 4 sources
  const int fused = p.project && binary && !p.ranked[p.full] && p.n >= 2 && p.n <= 4 ? static_cast<int>(p.n) : 0;
  // neuron j's tables from the bins bp (uint8, int32 or int64) and the weights w
  auto load = [&](Scratch& s, const auto* bp, const auto* w, int64_t j) {
    if (fused == 3) s.load_projected_binary<3>(p, bp, sb, sn, si, w, wb, wn, j);
    else if (fused == 2) s.load_projected_binary<2>(p, bp, sb, sn, si, w, wb, wn, j);
    else if (fused == 4) s.load_projected_binary<4>(p, bp, sb, sn, si, w, wb, wn, j);
    else if (p.project) s.load_projected(p, bp, sb, sn, si, w, wb, wn, wt, binary, j);
    else s.load(p, bp, sb, sn, si, w, wb, wn, wt, binary, j);
  };
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "sx_run", [&] {
    const scalar_t* w = weights.data_ptr<scalar_t>();
    scalar_t* cond_p = want_values ? cond.data_ptr<scalar_t>() : nullptr;
    scalar_t* plus_p = want_values ? plus.data_ptr<scalar_t>() : nullptr;
    scalar_t* out = want_grad ? grad.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, p.N, 1, [&](int64_t lo, int64_t hi) {
      Scratch s(p);
      Lanes lanes(p);
      std::vector<double> acc_cond(p.A), acc_plus(p.A);
      for (int64_t j = lo; j < hi; ++j) {
        if (bins_type == torch::kByte) load(s, bins.data_ptr<uint8_t>(), w, j);
        else if (bins_type == torch::kLong) load(s, bins.data_ptr<int64_t>(), w, j);
        else load(s, bins.data_ptr<int32_t>(), w, j);
        std::fill(acc_cond.begin(), acc_cond.end(), 0.0);
        std::fill(acc_plus.begin(), acc_plus.end(), 0.0);
        const double* gj = gc + j * p.A;
        const double* hj = gp + j * p.A;
        for (int64_t u = 0; u < p.K; ++u) {
          if (p.by_union[u].empty()) continue;
          bool active = want_values && !hinted_only;
          for (int64_t a : p.by_union[u]) active = active || gj[a] != 0.0 || hj[a] != 0.0;
          if (!active) continue;
          union_pass_any(scalar_t{}, p, s, lanes, u, gj, hj, want_grad, want_values && !hinted_only, acc_cond.data(),
                         acc_plus.data());
        }
        if (want_values) {
          for (int64_t a = 0; a < p.A; ++a) {
            cond_p[j * p.A + a] = static_cast<scalar_t>(acc_cond[a]);
            plus_p[j * p.A + a] = static_cast<scalar_t>(acc_plus[a]);
          }
        }
        if (want_grad) {
          // d/dw = d/dm / B; for a binary target d/dtheta = d/dm_1 - d/dm_0 (times 1/B).  A sample's
          // d/dm sums the back tables at its cell in every subset; with projected tables all
          // samples of a finest cell share their cells, so the sum is taken once per finest cell.
          const int64_t F = p.full;
          const int64_t* kf = s.keys.data() + F * p.B;
          if (p.project)
            for (const auto& o : s.occupied[F])
              for (int64_t t = 0; t < p.T; ++t) {
                double total = 0.0;
                for (int64_t k = 0; k < p.K; ++k) total += s.back[(p.offsets[k] + s.key(p, k, o.sample)) * p.T + t];
                s.total[o.cell * p.T + t] = total;
              }
          if (fused) {  // binary, projected: each sample's d/dtheta from its finest cell's totals
            scalar_t* oj = out + j * gsn;
            const double* tot = s.total.data();
            for (int64_t b = 0; b < p.B; ++b) {
              const double* tt = tot + kf[b] * 2;
              oj[b * gsb] = static_cast<scalar_t>((tt[1] - tt[0]) * inv_b);
            }
          }
          for (int64_t b = 0; b < (fused ? 0 : p.B); ++b) {
            double dm[2] = {0.0, 0.0};
            for (int64_t t = 0; t < p.T; ++t) {
              double total = 0.0;
              if (p.project) total = s.total[kf[b] * p.T + t];
              else
                for (int64_t k = 0; k < p.K; ++k) total += s.back[(p.offsets[k] + s.key(p, k, b)) * p.T + t];
              if (binary) dm[t] = total;
              else out[b * gsb + j * gsn + t * gst] = static_cast<scalar_t>(total * inv_b);
            }
            if (binary) out[b * gsb + j * gsn] = static_cast<scalar_t>((dm[1] - dm[0]) * inv_b);
          }
        }
        s.clear(p);
      }
    });
  });
  return {cond, plus, grad};
}


// ------------------------------------------------------------------------------------------------
// Fused activation of the neurons (infomorphic.nn.functional.fused_theta).
//
//   g = k0 + sum_i term_i,  term_i = a_i s_i (plain) or a_i (2 s_i - 1) (centred),
//   s_i = sigmoid(b_i f m_i),  A = f g,  theta = sigmoid(A)
//
// and, from the gradient of theta, with d_i = a_i s_i (1 - s_i) (times 2 when centred) and
// gA = g_theta theta (1 - theta):
//
//   g_f = gA (g + f sum_i d_i b_i m_i),   g_m_i = gA d_i b_i f^2.
//
// Sums run in the order of the modulators, so a centred modulator that is 0 adds exactly 0 (s = 1/2
// exactly: exp(0) = 1 below) and leaves theta and every gradient bit for bit as without it.
namespace {

// exp for float in plain arithmetic that the compiler vectorises (with -fno-trapping-math):
// Cody-Waite reduction by ln 2 and the degree-6 polynomial of Cephes' expf, about 1 ulp; exactly
// 1 at 0; NaN stays NaN.  Arguments are clamped to [-80, 80], so neither exp nor the sigmoid built
// from it ever produces a subnormal number (each costs ~100 cycles on x86: with inputs of a few
// units that made the whole kernel 2x slower); sigmoid then saturates at 1.8e-35 and 1 - 1.8e-35
// (exactly 1 in float) instead of going on to 0.  Double uses std::exp, unclamped.
// exp_v of K floats, each step a loop over the K elements.  exp_v is its K = 1 case (the loops
// vanish); sigmoid_block calls it with K = 32: the same operations on every element (the same
// bits), but the K / 8 vectors of a block interleaved step by step.
template <int64_t K>
inline __attribute__((always_inline)) void exp_block(const float* __restrict x, float* __restrict out) {
  float xs[K], t[K], fn[K], r[K], z[K], q[K];
  int32_t n[K];
  for (int64_t e = 0; e < K; ++e) xs[e] = std::min(std::max(x[e], -80.0f), 80.0f);
  for (int64_t e = 0; e < K; ++e) t[e] = xs[e] * 1.44269504088896341f + 0.5f;
  for (int64_t e = 0; e < K; ++e) {
    const int32_t m = static_cast<int32_t>(t[e]);
    n[e] = m - static_cast<int32_t>(static_cast<float>(m) > t[e]);  // floor(t)
  }
  for (int64_t e = 0; e < K; ++e) fn[e] = static_cast<float>(n[e]);
  for (int64_t e = 0; e < K; ++e) {
    const float a = xs[e] - fn[e] * 0.693359375f;
    r[e] = a + fn[e] * 2.12194440e-4f;
  }
  for (int64_t e = 0; e < K; ++e) z[e] = r[e] * r[e];
  for (int64_t e = 0; e < K; ++e) q[e] = 1.9875691500e-4f * r[e] + 1.3981999507e-3f;
  for (int64_t e = 0; e < K; ++e) q[e] = q[e] * r[e] + 8.3334519073e-3f;
  for (int64_t e = 0; e < K; ++e) q[e] = q[e] * r[e] + 4.1665795894e-2f;
  for (int64_t e = 0; e < K; ++e) q[e] = q[e] * r[e] + 1.6666665459e-1f;
  for (int64_t e = 0; e < K; ++e) q[e] = q[e] * r[e] + 5.0000001201e-1f;
  for (int64_t e = 0; e < K; ++e) q[e] = q[e] * z[e] + r[e] + 1.0f;
  for (int64_t e = 0; e < K; ++e) {
    const int32_t bits = (n[e] + 127) << 23;  // 2^n, n in [-126, 127]
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    out[e] = q[e] * scale;
  }
}

inline float exp_v(float x) {
  float y;
  exp_block<1>(&x, &y);
  return y;
}
inline double exp_v(double x) { return std::exp(x); }

template <typename T>
inline T sigmoid_v(T x) {
  return T(1) / (T(1) + exp_v(-x));
}

// s[e] = sigmoid_v(x[e]) for K floats through exp_block<K>, so that the CPU overlaps the K / 8
// vectors' long chains of dependent operations.  Without this, the activation on an AMD Zen 2 ran
// about 30 cycles per vector of 8 sigmoids, the latency of one chain (its scheduler holds too few
// operations to overlap more than 3 vectors); with K = 32, 0.70x.
template <int64_t K>
inline __attribute__((always_inline)) void sigmoid_block(const float* __restrict x, float* __restrict s) {
  float neg[K], ex[K];
  for (int64_t e = 0; e < K; ++e) neg[e] = -x[e];
  exp_block<K>(neg, ex);
  for (int64_t e = 0; e < K; ++e) s[e] = 1.0f / (1.0f + ex[e]);
}

// s[e] = sigmoid_v(x[e]) for e < len: blocks of kSigmoidBlock when kBlocked (float), else one by one
constexpr int64_t kSigmoidBlock = 32;
template <typename T, bool kBlocked>
inline __attribute__((always_inline)) void sigmoid_array(const T* __restrict x, T* __restrict s, int64_t len) {
  int64_t e = 0;
  if constexpr (kBlocked)
    for (; e + kSigmoidBlock <= len; e += kSigmoidBlock) sigmoid_block<kSigmoidBlock>(x + e, s + e);
  for (; e < len; ++e) s[e] = sigmoid_v<T>(x[e]);
}

constexpr int64_t kActBlock = 256;  // elements per inner block (kept in registers / L1)
constexpr int64_t kActGrain = 16384;  // elements per parallel task

struct ActParams {
  int M;
  double k0;
  double a[3], b[3];
  bool centred[3];
};

ActParams act_params(int64_t M, double k0, const std::vector<double>& a, const std::vector<double>& b,
                     const std::vector<bool>& centred) {
  TORCH_CHECK(M >= 1 && M <= 3, "the fused activation takes 1 to 3 modulators, got ", M);
  TORCH_CHECK(static_cast<int64_t>(a.size()) == M && static_cast<int64_t>(b.size()) == M &&
                  static_cast<int64_t>(centred.size()) == M,
              "one a, b and centred flag per modulator expected");
  ActParams q{static_cast<int>(M), k0, {0, 0, 0}, {0, 0, 0}, {false, false, false}};
  for (int64_t i = 0; i < M; ++i) {
    q.a[i] = a[i];
    q.b[i] = b[i];
    q.centred[i] = centred[i];
  }
  return q;
}

// The elementwise kernels run over the elements in memory order, so any dense layout will do when
// every operand has it: f keeps its own when it is dense (e.g. the transposed view of a (N, B)
// tensor that a neuron-major layer gives), else it is made contiguous, and every other operand is
// brought to f's strides (a copy only when they differ).
torch::Tensor dense_layout(const torch::Tensor& f) {
  return f.is_non_overlapping_and_dense() ? f : f.contiguous();
}
torch::Tensor in_layout_of(const torch::Tensor& t, const torch::Tensor& f) {
  if (t.strides() == f.strides()) return t;
  auto out = torch::empty_like(f, t.options());
  out.copy_(t);
  return out;
}

void act_check(const torch::Tensor& f, const std::vector<torch::Tensor>& mods) {
  TORCH_CHECK(f.device().is_cpu(), "the fused activation runs on CPU tensors");
  for (const auto& m : mods)
    TORCH_CHECK(m.sizes() == f.sizes() && m.scalar_type() == f.scalar_type() && m.device().is_cpu(),
                "every modulator must have the shape, dtype and device of f");
}

// One modulator's term added to the bracket of one block: g[e] += a s_e + c with s_e =
// sigmoid(b f[e] m[e]), kept in si[e] when si is given.  A function of its own, called once per
// modulator without a loop over the modulators: with that loop, g++ (12, -O3) ran the third
// modulator's pass in scalar code in some builds (a four-source neuron's activation took 6x the
// time of a trivariate one in the kernel compiled on first use, not in the one built at install).
template <typename T, bool kBlocked>
inline __attribute__((always_inline)) void act_term(const T* __restrict f, const T* __restrict mi, int64_t len,
                                                    T* __restrict g, T* __restrict si, T a, T b, T c) {
  if constexpr (kBlocked) {  // the arguments, their sigmoids, then the terms (the same operations)
    T arg[kActBlock], own[kActBlock];
    T* __restrict sv = si != nullptr ? si : own;
    for (int64_t e = 0; e < len; ++e) arg[e] = b * f[e] * mi[e];
    sigmoid_array<T, true>(arg, sv, len);
    for (int64_t e = 0; e < len; ++e) g[e] += a * sv[e] + c;
  } else if (si != nullptr) {
    for (int64_t e = 0; e < len; ++e) {
      const T sv = sigmoid_v<T>(b * f[e] * mi[e]);
      si[e] = sv;
      g[e] += a * sv + c;
    }
  } else {
    for (int64_t e = 0; e < len; ++e) g[e] += a * sigmoid_v<T>(b * f[e] * mi[e]) + c;
  }
}

// g (the bracket) for one block: g[e] = k0 + sum_i term_i; s[i][e] = s_i when s is given.
template <typename T, bool kBlocked>
inline __attribute__((always_inline)) void act_bracket(const ActParams& q, const T* __restrict f, const T* const* m,
                                                       int64_t len, T* __restrict g, T (*s)[kActBlock]) {
  const T k0 = static_cast<T>(q.k0);
  for (int64_t e = 0; e < len; ++e) g[e] = k0;
  T a[3], b[3], c[3];
  for (int i = 0; i < 3; ++i) {
    b[i] = static_cast<T>(q.b[i]);
    a[i] = static_cast<T>(q.centred[i] ? 2.0 * q.a[i] : q.a[i]);
    c[i] = static_cast<T>(q.centred[i] ? -q.a[i] : 0.0);
  }
  act_term<T, kBlocked>(f, m[0], len, g, s != nullptr ? s[0] : nullptr, a[0], b[0], c[0]);
  if (q.M > 1) act_term<T, kBlocked>(f, m[1], len, g, s != nullptr ? s[1] : nullptr, a[1], b[1], c[1]);
  if (q.M > 2) act_term<T, kBlocked>(f, m[2], len, g, s != nullptr ? s[2] : nullptr, a[2], b[2], c[2]);
}

// theta for elements [lo, hi) (m: the modulators' base pointers).
template <typename T, bool kBlocked = false>
inline __attribute__((always_inline)) void act_forward_range(const ActParams& q, const T* f, const T* const* m,
                                                             T* theta, int64_t lo, int64_t hi) {
  T g[kActBlock];
  for (int64_t s0 = lo; s0 < hi; s0 += kActBlock) {
    const int64_t len = std::min(kActBlock, hi - s0);
    const T* ms[3] = {m[0] + s0, m[1] ? m[1] + s0 : nullptr, m[2] ? m[2] + s0 : nullptr};
    const T* __restrict fb = f + s0;
    act_bracket<T, kBlocked>(q, fb, ms, len, g, nullptr);
    T* __restrict ob = theta + s0;
    if constexpr (kBlocked) {
      T arg[kActBlock];
      for (int64_t e = 0; e < len; ++e) arg[e] = fb[e] * g[e];
      sigmoid_array<T, true>(arg, ob, len);
    } else {
      for (int64_t e = 0; e < len; ++e) ob[e] = sigmoid_v<T>(fb[e] * g[e]);
    }
  }
}

// One modulator's share of the backward pass for one block (a function of its own for the
// reason given at act_term): acc[e] += d_e m[e] and gm[e] = ga[e] d_e f[e]^2 with d_e = ab s_e (1 - s_e),
// the derivative of the term by f m.
template <typename T>
inline __attribute__((always_inline)) void act_term_grad(const T* __restrict f, const T* __restrict mi,
                                                         const T* __restrict si, const T* __restrict ga, int64_t len,
                                                         T* __restrict acc, T* __restrict gmi, T ab) {
  for (int64_t e = 0; e < len; ++e) {
    const T db = ab * si[e] * (T(1) - si[e]);  // d term_i / d(f m_i)
    acc[e] += db * mi[e];
    gmi[e] = ga[e] * db * f[e] * f[e];
  }
}

// g_f and g_m (gm: the modulators' gradient base pointers) for elements [lo, hi).
template <typename T, bool kBlocked = false>
inline __attribute__((always_inline)) void act_backward_range(const ActParams& q, const T* gt, const T* th, const T* f,
                                                              const T* const* m, T* gf, T* const* gm, int64_t lo,
                                                              int64_t hi) {
  T g[kActBlock], ga[kActBlock], acc[kActBlock];
  T s[3][kActBlock];
  for (int64_t s0 = lo; s0 < hi; s0 += kActBlock) {
    const int64_t len = std::min(kActBlock, hi - s0);
    const T* ms[3] = {m[0] + s0, m[1] ? m[1] + s0 : nullptr, m[2] ? m[2] + s0 : nullptr};
    const T* __restrict fb = f + s0;
    act_bracket<T, kBlocked>(q, fb, ms, len, g, s);
    const T* __restrict gtb = gt + s0;
    const T* __restrict thb = th + s0;
    for (int64_t e = 0; e < len; ++e) {
      ga[e] = gtb[e] * thb[e] * (T(1) - thb[e]);
      acc[e] = T(0);
    }
    T ab[3];
    for (int i = 0; i < 3; ++i) ab[i] = static_cast<T>((q.centred[i] ? 2.0 : 1.0) * q.a[i] * q.b[i]);
    act_term_grad<T>(fb, ms[0], s[0], ga, len, acc, gm[0] + s0, ab[0]);
    if (q.M > 1) act_term_grad<T>(fb, ms[1], s[1], ga, len, acc, gm[1] + s0, ab[1]);
    if (q.M > 2) act_term_grad<T>(fb, ms[2], s[2], ga, len, acc, gm[2] + s0, ab[2]);
    T* __restrict gfb = gf + s0;
    for (int64_t e = 0; e < len; ++e) gfb[e] = ga[e] * (g[e] + fb[e] * acc[e]);
  }
}

// The float loops are compiled once per instruction set and the best one the CPU has is picked
// when the module loads (GCC's target_clones, x86-64 Linux): the default build targets the
// baseline x86-64 (4-wide SSE), which is 2-4x slower here than AVX2 / AVX-512.

INFOMORPHIC_CLONES void act_forward_float(const ActParams& q, const float* f, const float* const* m, float* theta,
                                          int64_t lo, int64_t hi) {
  act_forward_range<float>(q, f, m, theta, lo, hi);
}

INFOMORPHIC_CLONES void act_backward_float(const ActParams& q, const float* gt, const float* th, const float* f,
                                           const float* const* m, float* gf, float* const* gm, int64_t lo,
                                           int64_t hi) {
  act_backward_range<float>(q, gt, th, f, m, gf, gm, lo, hi);
}

// Flush subnormal results and operands to zero while the activation runs on this thread (x86:
// the FTZ and DAZ bits of MXCSR, restored after).  The gradients of saturated neurons are
// products of numbers near 1e-35 and would otherwise be subnormal, each such operation costing
// ~100 cycles (measured: the backward pass 4.6x slower with aggregates of a few units); flushed,
// they differ from the exact ones by less than 1.2e-38 (float) or 2.3e-308 (double).
struct FlushSubnormals {
#if defined(__SSE__)
  unsigned int saved = _mm_getcsr();
  FlushSubnormals() { _mm_setcsr(saved | 0x8040u); }
  ~FlushSubnormals() { _mm_setcsr(saved); }
#endif
};

// The loops as written for the baseline instruction set (the "generic" path: the reference of the
// tests), and, on CPUs with AVX2 but not AVX-512, with the sigmoids in interleaved blocks (no fused
// multiply-adds, as the clones' AVX2 build: the same bits as both).
void act_forward_plain(const ActParams& q, const float* f, const float* const* m, float* theta, int64_t lo,
                       int64_t hi) {
  act_forward_range<float>(q, f, m, theta, lo, hi);
}
void act_backward_plain(const ActParams& q, const float* gt, const float* th, const float* f, const float* const* m,
                        float* gf, float* const* gm, int64_t lo, int64_t hi) {
  act_backward_range<float>(q, gt, th, f, m, gf, gm, lo, hi);
}
#if defined(INFOMORPHIC_AVX512)
__attribute__((target("avx2"))) void act_forward_avx2(const ActParams& q, const float* f, const float* const* m,
                                                       float* theta, int64_t lo, int64_t hi) {
  act_forward_range<float, true>(q, f, m, theta, lo, hi);
}
__attribute__((target("avx2"))) void act_backward_avx2(const ActParams& q, const float* gt, const float* th,
                                                        const float* f, const float* const* m, float* gf,
                                                        float* const* gm, int64_t lo, int64_t hi) {
  act_backward_range<float, true>(q, gt, th, f, m, gf, gm, lo, hi);
}
#endif

// path: vector_path's; "avx512" (the best on a CPU with it) runs the clones
void act_forward_any(const ActParams& q, const float* f, const float* const* m, float* theta, int64_t lo, int64_t hi,
                     VecPath path) {
  FlushSubnormals flush;
#if defined(INFOMORPHIC_AVX512)
  if (path == VecPath::kAvx2) return act_forward_avx2(q, f, m, theta, lo, hi);
#endif
  if (path == VecPath::kGeneric) return act_forward_plain(q, f, m, theta, lo, hi);
  act_forward_float(q, f, m, theta, lo, hi);
}
void act_forward_any(const ActParams& q, const double* f, const double* const* m, double* theta, int64_t lo,
                     int64_t hi, VecPath) {
  FlushSubnormals flush;
  act_forward_range<double>(q, f, m, theta, lo, hi);
}
void act_backward_any(const ActParams& q, const float* gt, const float* th, const float* f, const float* const* m,
                      float* gf, float* const* gm, int64_t lo, int64_t hi, VecPath path) {
  FlushSubnormals flush;
#if defined(INFOMORPHIC_AVX512)
  if (path == VecPath::kAvx2) return act_backward_avx2(q, gt, th, f, m, gf, gm, lo, hi);
#endif
  if (path == VecPath::kGeneric) return act_backward_plain(q, gt, th, f, m, gf, gm, lo, hi);
  act_backward_float(q, gt, th, f, m, gf, gm, lo, hi);
}
void act_backward_any(const ActParams& q, const double* gt, const double* th, const double* f,
                      const double* const* m, double* gf, double* const* gm, int64_t lo, int64_t hi, VecPath) {
  FlushSubnormals flush;
  act_backward_range<double>(q, gt, th, f, m, gf, gm, lo, hi);
}

}  // namespace

// theta = sigmoid(f * (k0 + sum_i term_i(b_i f m_i))), elementwise; f and mods of one shape.
// A modulator broadcast over the samples (an absent input class: its bias, expanded, stride 0
// along the batch) of a dense (B, N) f is read per neuron instead of being copied to f's layout
// first (an 8 MB copy per call at 1024 x 2000): element e of f's memory belongs to neuron e / B
// (neuron-major f) or e % N (sample-major).  Filled into a buffer chunk by chunk, then the same
// compiled loop runs on the chunk (every call runs in chunks of kBroadcastChunk elements), so
// theta is the same to the bit.
constexpr int64_t kBroadcastChunk = 8192;

template <typename T>
void fill_broadcast(const T* v, int64_t sv, bool neuron_major, int64_t B, int64_t N, int64_t s0, int64_t len,
                    T* out) {
  if (neuron_major) {
    for (int64_t e = 0; e < len;) {
      const int64_t j = (s0 + e) / B, run = std::min(len - e, (j + 1) * B - (s0 + e));
      std::fill(out + e, out + e + run, v[j * sv]);
      e += run;
    }
  } else {
    for (int64_t e = 0; e < len; ++e) out[e] = v[((s0 + e) % N) * sv];
  }
}

torch::Tensor act_forward(torch::Tensor f, std::vector<torch::Tensor> mods, double k0, std::vector<double> a,
                          std::vector<double> b, std::vector<bool> centred, const std::string& path) {
  act_check(f, mods);
  const VecPath chosen = vector_path(path);
  const ActParams q = act_params(static_cast<int64_t>(mods.size()), k0, a, b, centred);
  f = dense_layout(f);
  const bool neuron_major = f.dim() == 2 && f.size(0) > 1 && f.size(1) > 1 && f.t().is_contiguous();
  const bool sample_major = f.dim() == 2 && f.size(0) > 1 && f.size(1) > 1 && f.is_contiguous();
  bool broadcast[3] = {false, false, false};
  for (int i = 0; i < q.M; ++i) {
    broadcast[i] = (neuron_major || sample_major) && mods[i].stride(0) == 0;
    if (!broadcast[i]) mods[i] = in_layout_of(mods[i], f);
  }
  auto theta = torch::empty_like(f);  // f's layout
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "act_forward", [&] {
    const scalar_t* mp[3] = {nullptr, nullptr, nullptr};
    for (int i = 0; i < q.M; ++i) mp[i] = mods[i].data_ptr<scalar_t>();
    const scalar_t* fp = f.data_ptr<scalar_t>();
    scalar_t* out = theta.data_ptr<scalar_t>();
    const int64_t B = f.dim() == 2 ? f.size(0) : 0, N = f.dim() == 2 ? f.size(1) : 0;
    at::parallel_for(0, f.numel(), kActGrain, [&](int64_t lo, int64_t hi) {
      std::vector<scalar_t> buf[3];
      for (int64_t s0 = lo; s0 < hi; s0 += kBroadcastChunk) {
        const int64_t len = std::min(hi - s0, kBroadcastChunk);
        const scalar_t* mc[3] = {nullptr, nullptr, nullptr};
        for (int i = 0; i < q.M; ++i) {
          if (broadcast[i]) {
            buf[i].resize(len);
            fill_broadcast(mp[i], mods[i].stride(1), neuron_major, B, N, s0, len, buf[i].data());
            mc[i] = buf[i].data();
          } else {
            mc[i] = mp[i] + s0;
          }
        }
        act_forward_any(q, fp + s0, mc, out + s0, 0, len, chosen);
      }
    });
  });
  return theta;
}

// The gradients {g_f, g_m_1, ..., g_m_M} of sum(g_theta * theta) (theta from act_forward).
std::vector<torch::Tensor> act_backward(torch::Tensor grad_theta, torch::Tensor theta, torch::Tensor f,
                                        std::vector<torch::Tensor> mods, double k0, std::vector<double> a,
                                        std::vector<double> b, std::vector<bool> centred, const std::string& path) {
  act_check(f, mods);
  const VecPath chosen = vector_path(path);
  const ActParams q = act_params(static_cast<int64_t>(mods.size()), k0, a, b, centred);
  TORCH_CHECK(grad_theta.sizes() == f.sizes() && theta.sizes() == f.sizes(), "theta and its gradient must have f's shape");
  f = dense_layout(f);
  for (auto& m : mods) m = in_layout_of(m, f);
  grad_theta = in_layout_of(grad_theta.to(f.scalar_type()), f);
  theta = in_layout_of(theta.to(f.scalar_type()), f);
  std::vector<torch::Tensor> grads;
  for (int i = 0; i <= q.M; ++i) grads.push_back(torch::empty_like(f));
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "act_backward", [&] {
    const scalar_t* mp[3] = {nullptr, nullptr, nullptr};
    scalar_t* gm[3] = {nullptr, nullptr, nullptr};
    for (int i = 0; i < q.M; ++i) {
      mp[i] = mods[i].data_ptr<scalar_t>();
      gm[i] = grads[i + 1].data_ptr<scalar_t>();
    }
    const scalar_t* fp = f.data_ptr<scalar_t>();
    const scalar_t* gt = grad_theta.data_ptr<scalar_t>();
    const scalar_t* th = theta.data_ptr<scalar_t>();
    scalar_t* gf = grads[0].data_ptr<scalar_t>();
    at::parallel_for(0, f.numel(), kActGrain,
                     [&](int64_t lo, int64_t hi) { act_backward_any(q, gt, th, fp, mp, gf, gm, lo, hi, chosen); });
  });
  return grads;
}

// ------------------------------------------------------------------------------------------------
// Fixed-width bins of the per-class aggregates (infomorphic.nn.layer.InfomorphicLayer.bins_of):
// out[k, b, j] = clamp(int((clamp(x, low, high) - low) * scale), 0, n_bins - 1) with x =
// parts[k][b, j] and scale = n_bins / (high - low), each step rounded in the parts' dtype exactly as
// infomorphic.estimate.bin_fixed does it on the stacked (B, N, K) tensor, so the bins are identical;
// one pass over the aggregates instead of stacking them and five tensor operations.
namespace {

template <typename T, typename O = int32_t>
inline __attribute__((always_inline)) void bin_row(const T* __restrict x, int64_t stride, O* __restrict out,
                                                   int64_t n, T low, T high, T scale, int32_t top) {
  if (stride == 1) {
    for (int64_t j = 0; j < n; ++j) {
      const T v = (std::min(std::max(x[j], low), high) - low) * scale;
      out[j] = static_cast<O>(std::min(std::max(static_cast<int32_t>(v), int32_t(0)), top));
    }
  } else {
    for (int64_t j = 0; j < n; ++j) {
      const T v = (std::min(std::max(x[j * stride], low), high) - low) * scale;
      out[j] = static_cast<O>(std::min(std::max(static_cast<int32_t>(v), int32_t(0)), top));
    }
  }
}

// bin_row of x / div (each quotient rounded in T, as the tensor division rounds it)
template <typename T, typename O>
inline __attribute__((always_inline)) void bin_row_divided(const T* __restrict x, int64_t stride, T div,
                                                           O* __restrict out, int64_t n, T low, T high, T scale,
                                                           int32_t top) {
  for (int64_t j = 0; j < n; ++j) {
    const T q = x[j * stride] / div;
    const T v = (std::min(std::max(q, low), high) - low) * scale;
    out[j] = static_cast<O>(std::min(std::max(static_cast<int32_t>(v), int32_t(0)), top));
  }
}

// max |x| over a row (NaN propagates, as in amax)
template <typename T>
inline T abs_max_row(const T* __restrict x, int64_t stride, int64_t n) {
  T m = 0;
  bool nan = false;
  for (int64_t j = 0; j < n; ++j) {
    const T a = std::abs(x[j * stride]);
    nan = nan || a != a;
    m = std::max(m, a);
  }
  return nan ? std::numeric_limits<T>::quiet_NaN() : m;
}

INFOMORPHIC_CLONES void bin_row_float(const float* x, int64_t stride, int32_t* out, int64_t n, float low, float high,
                                      float scale, int32_t top) {
  bin_row<float>(x, stride, out, n, low, high, scale, top);
}
void bin_row_any(const float* x, int64_t stride, int32_t* out, int64_t n, float low, float high, float scale,
                 int32_t top) {
  bin_row_float(x, stride, out, n, low, high, scale, top);
}
template <typename O>
void bin_row_any(const double* x, int64_t stride, O* out, int64_t n, double low, double high, double scale,
                 int32_t top) {
  bin_row<double, O>(x, stride, out, n, low, high, scale, top);
}
INFOMORPHIC_CLONES void bin_row_float_u8(const float* x, int64_t stride, uint8_t* out, int64_t n, float low, float high,
                                         float scale, int32_t top) {
  bin_row<float, uint8_t>(x, stride, out, n, low, high, scale, top);
}
void bin_row_any(const float* x, int64_t stride, uint8_t* out, int64_t n, float low, float high, float scale,
                 int32_t top) {
  bin_row_float_u8(x, stride, out, n, low, high, scale, top);
}

// The bins' dtype: uint8 when asked for (small) and there are at most 256 bins, else int32; and f
// called with the output's data as that type.
at::ScalarType bins_dtype(bool small, int64_t n_bins) { return small && n_bins <= 256 ? torch::kByte : torch::kInt; }

template <typename F>
void with_bins_out(torch::Tensor& out, F&& f) {
  if (out.scalar_type() == torch::kByte) f(out.data_ptr<uint8_t>());
  else f(out.data_ptr<int32_t>());
}

// Aggregates to bin: at least one, each (B, N) on the CPU with the first's shape and dtype.
void parts_check(const std::vector<torch::Tensor>& parts) {
  TORCH_CHECK(!parts.empty(), "give at least one aggregate");
  const auto& first = parts[0];
  TORCH_CHECK(first.dim() == 2 && first.device().is_cpu(), "aggregates (B, N) on the CPU expected");
  for (const auto& x : parts)
    TORCH_CHECK(x.sizes() == first.sizes() && x.scalar_type() == first.scalar_type() && x.device().is_cpu(),
                "every aggregate must have the shape, dtype and device of the first");
}

}  // namespace

// Bins (K, B, N) int32 (uint8 with small and at most 256 bins) of K aggregates (B, N) (any strides,
// one dtype).
torch::Tensor bins_fixed(std::vector<torch::Tensor> parts, int64_t n_bins, double low, double high, bool small) {
  parts_check(parts);
  TORCH_CHECK(n_bins >= 1 && n_bins <= (int64_t(1) << 30) && high > low, "need n_bins >= 1 and high > low");
  const auto& first = parts[0];
  const int64_t K = static_cast<int64_t>(parts.size()), B = first.size(0), N = first.size(1);
  // neuron-major bins, (K, N, B) in memory, returned as the (K, B, N) view, so that the PID kernel
  // reads each neuron's samples in a row (from sample-major bins it reads every sample of a neuron
  // from another cache line: its call at 500 four-source neurons took 37.9 instead of 34.0 ms).  A
  // sample-major aggregate is read down its columns: the lines of the 16 neurons that share them
  // stay in cache from one neuron to the next.  small (and at most 256 bins): uint8 bins, a quarter
  // of the memory traffic of int32 here and in the PID kernel that reads them (a setup-2 N = 2000
  // step 0.97x).
  const bool by_neuron = B > 1 && N > 1;
  const auto dtype = bins_dtype(small, n_bins);
  auto out = by_neuron ? torch::empty({K, N, B}, first.options().dtype(dtype))
                       : torch::empty({K, B, N}, first.options().dtype(dtype));
  const int32_t top = static_cast<int32_t>(n_bins - 1);
  with_bins_out(out, [&](auto* op) {
    AT_DISPATCH_FLOATING_TYPES(first.scalar_type(), "bins_fixed", [&] {
      // the scalars as the tensor operations see them: low and high in the dtype, the scale computed
      // in double (Python) and then rounded to the dtype
      const scalar_t lo_v = static_cast<scalar_t>(low), hi_v = static_cast<scalar_t>(high);
      const scalar_t scale = static_cast<scalar_t>(static_cast<double>(n_bins) / (high - low));
      for (int64_t k = 0; k < K; ++k) {
        const scalar_t* xp = parts[k].data_ptr<scalar_t>();
        const int64_t sb = parts[k].stride(0), sn = parts[k].stride(1);
        auto* ok = op + k * B * N;
        if (by_neuron)
          at::parallel_for(0, N, std::max<int64_t>(1, kActGrain / std::max<int64_t>(B, 1)),
                           [&](int64_t j0, int64_t j1) {
                             for (int64_t j = j0; j < j1; ++j)
                               bin_row_any(xp + j * sn, sb, ok + j * B, B, lo_v, hi_v, scale, top);
                           });
        else
          at::parallel_for(0, B, std::max<int64_t>(1, kActGrain / std::max<int64_t>(N, 1)),
                           [&](int64_t b0, int64_t b1) {
                             for (int64_t b = b0; b < b1; ++b)
                               bin_row_any(xp + b * sb, sn, ok + b * N, N, lo_v, hi_v, scale, top);
                           });
      }
    });
  });
  return by_neuron ? out.transpose(1, 2) : out;
}

// Adaptive bins (K, B, N) int32 (uint8 with small and at most 256 bins) of K aggregates (B, N)
// (infomorphic.estimate.bin_adaptive along the batch): each neuron's values of each aggregate
// divided by their largest magnitude over the batch (1 where that is 0 or NaN), then binned on
// [-1, 1] exactly as bins_fixed bins, so the integers are bin_adaptive's; one pass per aggregate
// for the maxima and one for the bins, instead of stacking the aggregates and eight tensor
// operations.  Stored neuron by neuron, as bins_fixed.
torch::Tensor bins_adaptive(std::vector<torch::Tensor> parts, int64_t n_bins, bool small) {
  parts_check(parts);
  TORCH_CHECK(n_bins >= 1 && n_bins <= (int64_t(1) << 30), "need n_bins >= 1");
  const auto& first = parts[0];
  const int64_t K = static_cast<int64_t>(parts.size()), B = first.size(0), N = first.size(1);
  auto out = torch::empty({K, N, B}, first.options().dtype(bins_dtype(small, n_bins)));  // see bins_fixed
  const int32_t top = static_cast<int32_t>(n_bins - 1);
  with_bins_out(out, [&](auto* op) {
    AT_DISPATCH_FLOATING_TYPES(first.scalar_type(), "bins_adaptive", [&] {
      const scalar_t lo_v = static_cast<scalar_t>(-1.0), hi_v = static_cast<scalar_t>(1.0);
      const scalar_t scale = static_cast<scalar_t>(static_cast<double>(n_bins) / 2.0);
      std::vector<scalar_t> div(N);
      for (int64_t k = 0; k < K; ++k) {
        const scalar_t* xp = parts[k].data_ptr<scalar_t>();
        const int64_t sb = parts[k].stride(0), sn = parts[k].stride(1);
        auto* ok = op + k * B * N;
        if (sn == 1 && sb != 1) {  // sample-major: the maxima down the columns, a row at a time
          std::fill(div.begin(), div.end(), scalar_t(0));
          std::vector<char> nan(N, 0);
          for (int64_t b = 0; b < B; ++b) {
            const scalar_t* row = xp + b * sb;
            for (int64_t j = 0; j < N; ++j) {
              const scalar_t a = std::abs(row[j]);
              nan[j] |= static_cast<char>(a != a);
              div[j] = std::max(div[j], a);
            }
          }
          for (int64_t j = 0; j < N; ++j)
            if (nan[j]) div[j] = std::numeric_limits<scalar_t>::quiet_NaN();
        } else {
          for (int64_t j = 0; j < N; ++j) div[j] = abs_max_row(xp + j * sn, sb, B);
        }
        for (int64_t j = 0; j < N; ++j)
          if (!(div[j] > scalar_t(0))) div[j] = scalar_t(1);  // 0 or NaN: as torch.where(scale > 0, scale, 1)
        at::parallel_for(0, N, std::max<int64_t>(1, kActGrain / std::max<int64_t>(B, 1)), [&](int64_t j0, int64_t j1) {
          for (int64_t j = j0; j < j1; ++j)
            bin_row_divided(xp + j * sn, sb, div[j], ok + j * B, B, lo_v, hi_v, scale, top);
        });
      }
    });
  });
  return out.transpose(1, 2);
}

// ------------------------------------------------------------------------------------------------
// Product over each neuron's partners (infomorphic.nn.functional.sparse_aggregate): with P partners
// index[j, p] and weights values[j, p] per neuron,
//
//   out[b, j] = sum_p values[j, p] x[b, index[j, p]],   grad_values[j, p] = sum_b g[b, j] x[b, index[j, p]],
//
// B * N * P multiply-adds each.  Both read x transposed, xt = x.T (in, B) contiguous: a partner's
// samples are then one contiguous row, and each sum runs over whole rows in loops the compiler
// vectorises.  transpose_tiled makes xt once (in tiles, so that reads and writes both stay in
// cache; a plain strided copy of a 1024 x 2000 float tensor took 7x as long in a training step);
// the caller keeps it for the backward pass.  The forward sum for a neuron adds its partners in
// order, one multiply and one add each (no fused multiply-add: the same rounding in every clone);
// the backward dot products keep kDotLanes partial sums over the samples, added in a fixed order.
namespace {

constexpr int64_t kTransposeTile = 32;
constexpr int64_t kPartnerCols = 1024;  // samples per accumulator row
constexpr int64_t kPartnerRows = 8;    // neurons per tile of the output / of the gradient
constexpr int64_t kDotLanes = 16;

// out[c, r] = x[r, c] for rows [r0, r1) of x (R rows), all its C columns; x with strides (sr, sc).
template <typename T>
inline __attribute__((always_inline)) void transpose_rows(const T* __restrict x, int64_t sr, int64_t sc,
                                                          T* __restrict out, int64_t R, int64_t C, int64_t r0,
                                                          int64_t r1) {
  for (int64_t ra = r0; ra < r1; ra += kTransposeTile) {
    const int64_t rb = std::min(r1, ra + kTransposeTile);
    for (int64_t c0 = 0; c0 < C; c0 += kTransposeTile) {
      const int64_t c1 = std::min(C, c0 + kTransposeTile);
      // writes run along rows of out (rows R elements apart may share cache sets)
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = ra; r < rb; ++r) out[c * R + r] = x[r * sr + c * sc];
    }
  }
}

// acc[jj][e] = sum_p v[j0 + jj, p] xt[idx[j0 + jj, p], b0 + e] for jj < rows, e < len, then
// out[(b0 + e) * ob + (j0 + jj) * oj] = acc[jj][e].
template <typename T>
inline __attribute__((always_inline)) void partner_tile(const T* __restrict xt, const T* __restrict v,
                                                        const int64_t* __restrict idx, int64_t P, int64_t B,
                                                        int64_t ob, int64_t oj, int64_t j0, int64_t rows,
                                                        int64_t b0, int64_t len, T* __restrict out) {
  T acc[kPartnerRows][kPartnerCols];
  for (int64_t jj = 0; jj < rows; ++jj) {
    T* __restrict a = acc[jj];
#pragma omp simd
    for (int64_t e = 0; e < len; ++e) a[e] = T(0);
    const T* vj = v + (j0 + jj) * P;
    const int64_t* ij = idx + (j0 + jj) * P;
    int64_t p = 0;
    for (; p + 4 <= P; p += 4) {  // four partners per pass over the accumulator, added in order
      const T w0 = vj[p], w1 = vj[p + 1], w2 = vj[p + 2], w3 = vj[p + 3];
      const T* __restrict r0 = xt + ij[p] * B + b0;
      const T* __restrict r1 = xt + ij[p + 1] * B + b0;
      const T* __restrict r2 = xt + ij[p + 2] * B + b0;
      const T* __restrict r3 = xt + ij[p + 3] * B + b0;
#pragma omp simd
      for (int64_t e = 0; e < len; ++e) {
        T t = a[e];
        t = t + w0 * r0[e];
        t = t + w1 * r1[e];
        t = t + w2 * r2[e];
        t = t + w3 * r3[e];
        a[e] = t;
      }
    }
    for (; p < P; ++p) {
      const T w = vj[p];
      const T* __restrict row = xt + ij[p] * B + b0;
#pragma omp simd
      for (int64_t e = 0; e < len; ++e) a[e] = a[e] + w * row[e];
    }
  }
  if (ob == 1)  // neuron-major output: each accumulator row is one output row
    for (int64_t jj = 0; jj < rows; ++jj)
      for (int64_t e = 0; e < len; ++e) out[b0 + e + (j0 + jj) * oj] = acc[jj][e];
  else
    for (int64_t e = 0; e < len; ++e)
      for (int64_t jj = 0; jj < rows; ++jj) out[(b0 + e) * ob + (j0 + jj) * oj] = acc[jj][e];
}

// out[q] = sum_e a[e] b_q[e] over n elements for Q rows b_q (Q <= 4; a read once for all of them):
// kDotLanes partial sums per row, then added in order.
template <typename T, int Q>
inline __attribute__((always_inline)) void dot_lanes(const T* __restrict a, const T* const* b, int64_t n,
                                                     T* __restrict out) {
  T s[Q][kDotLanes];
  for (int q = 0; q < Q; ++q)
    for (int64_t k = 0; k < kDotLanes; ++k) s[q][k] = T(0);
  int64_t e = 0;
  for (; e + kDotLanes <= n; e += kDotLanes)
    for (int q = 0; q < Q; ++q) {
      const T* __restrict bq = b[q] + e;
#pragma omp simd
      for (int64_t k = 0; k < kDotLanes; ++k) s[q][k] = s[q][k] + a[e + k] * bq[k];
    }
  for (int64_t k = 0; e < n; ++e, ++k)
    for (int q = 0; q < Q; ++q) s[q][k] = s[q][k] + a[e] * b[q][e];
  for (int q = 0; q < Q; ++q) {
    T total = T(0);
    for (int64_t k = 0; k < kDotLanes; ++k) total += s[q][k];
    out[q] = total;
  }
}

// Neurons [j0, j0 + rows): gt[jj * ld + b] = g[b, j0 + jj] (g with strides (sb, sj); ld > B, so
// that the rows of gt do not all fall into the same cache sets), then
// gv[j, p] = sum_b gt[jj * ld + b] xt[idx[j, p], b].
template <typename T>
inline __attribute__((always_inline)) void partner_grad_tile(const T* __restrict xt, const T* __restrict g,
                                                             int64_t sb, int64_t sj, const int64_t* __restrict idx,
                                                             int64_t P, int64_t B, int64_t ld, int64_t j0,
                                                             int64_t rows, T* __restrict gt, T* __restrict gv) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t jj = 0; jj < rows; ++jj) gt[jj * ld + b] = g[b * sb + (j0 + jj) * sj];
  for (int64_t jj = 0; jj < rows; ++jj) {
    const int64_t* ij = idx + (j0 + jj) * P;
    const T* __restrict a = gt + jj * ld;
    T* __restrict out = gv + (j0 + jj) * P;
    int64_t p = 0;
    for (; p + 4 <= P; p += 4) {
      const T* rows4[4] = {xt + ij[p] * B, xt + ij[p + 1] * B, xt + ij[p + 2] * B, xt + ij[p + 3] * B};
      dot_lanes<T, 4>(a, rows4, B, out + p);
    }
    for (; p < P; ++p) {
      const T* row[1] = {xt + ij[p] * B};
      dot_lanes<T, 1>(a, row, B, out + p);
    }
  }
}

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#pragma GCC optimize("no-loop-unroll-and-jam")  // jamming two partners' rows left g++ 12 with scalar code
INFOMORPHIC_CLONES void transpose_rows_float(const float* x, int64_t sr, int64_t sc, float* out, int64_t R,
                                             int64_t C, int64_t r0, int64_t r1) {
  transpose_rows<float>(x, sr, sc, out, R, C, r0, r1);
}
INFOMORPHIC_CLONES void partner_tile_float(const float* xt, const float* v, const int64_t* idx, int64_t P,
                                           int64_t B, int64_t ob, int64_t oj, int64_t j0, int64_t rows, int64_t b0,
                                           int64_t len, float* out) {
  partner_tile<float>(xt, v, idx, P, B, ob, oj, j0, rows, b0, len, out);
}
INFOMORPHIC_CLONES void partner_grad_tile_float(const float* xt, const float* g, int64_t sb, int64_t sj,
                                                const int64_t* idx, int64_t P, int64_t B, int64_t ld, int64_t j0,
                                                int64_t rows, float* gt, float* gv) {
  partner_grad_tile<float>(xt, g, sb, sj, idx, P, B, ld, j0, rows, gt, gv);
}
#pragma GCC pop_options

void transpose_rows_any(const float* x, int64_t sr, int64_t sc, float* out, int64_t R, int64_t C, int64_t r0,
                        int64_t r1) {
  transpose_rows_float(x, sr, sc, out, R, C, r0, r1);
}
void transpose_rows_any(const double* x, int64_t sr, int64_t sc, double* out, int64_t R, int64_t C, int64_t r0,
                        int64_t r1) {
  transpose_rows<double>(x, sr, sc, out, R, C, r0, r1);
}
void partner_tile_any(const float* xt, const float* v, const int64_t* idx, int64_t P, int64_t B, int64_t ob,
                      int64_t oj, int64_t j0, int64_t rows, int64_t b0, int64_t len, float* out) {
  partner_tile_float(xt, v, idx, P, B, ob, oj, j0, rows, b0, len, out);
}
void partner_tile_any(const double* xt, const double* v, const int64_t* idx, int64_t P, int64_t B, int64_t ob,
                      int64_t oj, int64_t j0, int64_t rows, int64_t b0, int64_t len, double* out) {
  partner_tile<double>(xt, v, idx, P, B, ob, oj, j0, rows, b0, len, out);
}
void partner_grad_tile_any(const float* xt, const float* g, int64_t sb, int64_t sj, const int64_t* idx, int64_t P,
                           int64_t B, int64_t ld, int64_t j0, int64_t rows, float* gt, float* gv) {
  partner_grad_tile_float(xt, g, sb, sj, idx, P, B, ld, j0, rows, gt, gv);
}
void partner_grad_tile_any(const double* xt, const double* g, int64_t sb, int64_t sj, const int64_t* idx,
                           int64_t P, int64_t B, int64_t ld, int64_t j0, int64_t rows, double* gt, double* gv) {
  partner_grad_tile<double>(xt, g, sb, sj, idx, P, B, ld, j0, rows, gt, gv);
}

// index (N, P) int64 of partners in [0, n_inputs): checked, contiguous.
void index_check(const torch::Tensor& index, int64_t n_inputs) {
  TORCH_CHECK(index.dim() == 2 && index.scalar_type() == torch::kLong && index.device().is_cpu() &&
                  index.is_contiguous(),
              "index: a contiguous (N, P) int64 CPU tensor");
  if (index.numel() > 0) {
    const int64_t* ip = index.data_ptr<int64_t>();
    const auto [lo, hi] = std::minmax_element(ip, ip + index.numel());
    TORCH_CHECK(*lo >= 0 && *hi < n_inputs, "partner index out of range [0, ", n_inputs, ")");
  }
}

// values (N, P) of index's shape and of dtype, contiguous.
void values_check(const torch::Tensor& values, const torch::Tensor& index, at::ScalarType dtype) {
  TORCH_CHECK(values.sizes() == index.sizes() && values.scalar_type() == dtype && values.is_contiguous(),
              "values: contiguous, of index's shape and xt's dtype");
}

// xt (in, B) contiguous, index into its rows, values of its dtype.
void partner_check(const torch::Tensor& xt, const torch::Tensor& values, const torch::Tensor& index) {
  TORCH_CHECK(xt.dim() == 2 && xt.device().is_cpu() && xt.is_contiguous(), "xt: a contiguous (in, B) CPU tensor");
  index_check(index, xt.size(0));
  values_check(values, index, xt.scalar_type());
}

// words: the (C, ceil(B / 64)) int64 tensor of sign_pack for B samples.
void words_check(const torch::Tensor& words, int64_t B) {
  TORCH_CHECK(words.dim() == 2 && words.scalar_type() == torch::kLong && words.is_contiguous() &&
                  words.size(1) == (B + 63) / 64,
              "words: the (C, ceil(B / 64)) int64 tensor of sign_pack");
}


// ---- the same two products when x holds spikes (every value exactly +1 or -1), float32 ----------
// x is packed once into bits, transposed: row r of `words` (W = ceil(B / 64) 64-bit words) holds
// bit b = [x[b, r] > 0].  A setup-2 lateral class (2000 inputs, B = 1024) is then 256 KiB instead
// of 8 MiB of floats, so the partners' rows come from the core's own cache instead of the shared
// one.  w * x is +-w exactly, so adding the partners' +-w in the float kernels' order (forward:
// partners in order; backward: the dot_lanes lanes and their final sum) gives the same bits.
constexpr int64_t kSignCols = 512;  // columns of x per task of the packing

typedef uint32_t __attribute__((may_alias)) u32_alias;
typedef uint16_t __attribute__((may_alias)) u16_alias;

inline bool signs_bit(const uint64_t* row, int64_t e) { return ((row[e >> 6] >> (e & 63)) & 1u) != 0; }

// words for columns [r0, r1) of x (B rows, strides (sb, sr)); false when a value is not +-1.
INFOMORPHIC_CLONES bool sign_pack_cols(const float* x, int64_t sb, int64_t sr, int64_t B, int64_t W,
                                       uint64_t* words, int64_t r0, int64_t r1) {
  uint64_t acc[kSignCols];
  uint32_t bad = 0;
  const u32_alias* xu = reinterpret_cast<const u32_alias*>(x);
  if (sb == 1) {  // each column's samples in a row (a neuron-major x): 64 of them per word
    for (int64_t r = r0; r < r1; ++r) {
      const u32_alias* col = xu + r * sr;
      for (int64_t w = 0; w < W; ++w) {
        const int64_t b0 = w * 64, n = std::min<int64_t>(64, B - b0);
        uint64_t word = 0;
        for (int64_t e = 0; e < n; ++e) {
          const uint32_t u = col[b0 + e];
          bad |= (u & 0x7fffffffu) ^ 0x3f800000u;
          word |= static_cast<uint64_t>((u >> 31) ^ 1u) << e;
        }
        words[r * W + w] = word;
      }
    }
    return bad == 0;
  }
  for (int64_t w = 0; w < W; ++w) {
    const int64_t n = r1 - r0;
    for (int64_t c = 0; c < n; ++c) acc[c] = 0;
    const int64_t b1 = std::min(B, (w + 1) * 64);
    for (int64_t b = w * 64; b < b1; ++b) {
      const u32_alias* row = xu + b * sb + r0 * sr;
      const int sh = static_cast<int>(b & 63);
      for (int64_t c = 0; c < n; ++c) {
        const uint32_t u = row[c * sr];
        bad |= (u & 0x7fffffffu) ^ 0x3f800000u;  // 0 exactly for +1 and -1
        acc[c] |= static_cast<uint64_t>((u >> 31) ^ 1u) << sh;
      }
    }
    for (int64_t c = 0; c < n; ++c) words[(r0 + c) * W + w] = acc[c];
  }
  return bad == 0;
}

// acc[jj * kSignBlock + e - e0] = sum_p (+-) v[j, p] over the partners of neurons j = j0 + jj, for
// samples e0 <= e < e1 (at most kSignBlock of them), partners in order.
constexpr int64_t kSignBlock = 256;  // samples per pass over the neurons: their bits of every row stay in cache

void signs_forward_generic(const uint64_t* words, int64_t W, const float* v, const int64_t* idx, int64_t P,
                           int64_t j0, int64_t rows, int64_t e0, int64_t e1, float* acc) {
  for (int64_t jj = 0; jj < rows; ++jj) {
    float* a = acc + jj * kSignBlock - e0;
    for (int64_t e = e0; e < e1; ++e) a[e] = 0.0f;
    for (int64_t p = 0; p < P; ++p) {
      const float w = v[(j0 + jj) * P + p], nw = -w;
      const uint64_t* row = words + idx[(j0 + jj) * P + p] * W;
      for (int64_t e = e0; e < e1; ++e) a[e] = a[e] + (signs_bit(row, e) ? w : nw);
    }
  }
}

// gv[j, p] = sum_e (+-) gt[jj * ld + e] for neurons j = j0 + jj: dot_lanes' lanes and order.
void signs_backward_generic(const uint64_t* words, int64_t W, const float* gt, int64_t ld, const int64_t* idx,
                            int64_t P, int64_t B, int64_t j0, int64_t rows, float* gv) {
  for (int64_t jj = 0; jj < rows; ++jj) {
    const float* a = gt + jj * ld;
    for (int64_t p = 0; p < P; ++p) {
      const uint64_t* row = words + idx[(j0 + jj) * P + p] * W;
      float s[kDotLanes] = {};
      for (int64_t e = 0; e < B; ++e) {
        const float t = a[e];
        s[e % kDotLanes] = s[e % kDotLanes] + (signs_bit(row, e) ? t : -t);
      }
      float total = 0.0f;
      for (int64_t k = 0; k < kDotLanes; ++k) total += s[k];
      gv[(j0 + jj) * P + p] = total;
    }
  }
}

#if defined(INFOMORPHIC_AVX512)
// The same two loops, 16 samples per vector: a sample's +-w is a blend under its bit.  Lanes past B
// (the last chunk's) read zero bits and, backward, zero padding: they are never stored (forward) or
// add -0 (backward), which leaves every lane's sum unchanged.
__attribute__((target("avx512f"))) void signs_forward_avx512(const uint64_t* words, int64_t W, const float* v,
                                                               const int64_t* idx, int64_t P, int64_t j0, int64_t rows,
                                                               int64_t e0, int64_t e1, float* acc) {
  constexpr int64_t kChunks = kSignBlock / 16;  // vectors of accumulators kept in registers
  constexpr int64_t kSignAhead = 8;  // partners' bits fetched ahead
  const int64_t c0 = e0 / 16, chunks = (e1 - e0 + 15) / 16;
  for (int64_t jj = 0; jj < rows; ++jj) {
    const float* vj = v + (j0 + jj) * P;
    const int64_t* ij = idx + (j0 + jj) * P;
    float* a = acc + jj * kSignBlock;
    if (chunks == kChunks) {
      __m512 r[kChunks];
      for (int64_t c = 0; c < kChunks; ++c) r[c] = _mm512_setzero_ps();
      for (int64_t p = 0; p < P; ++p) {
        if (p + kSignAhead < P)
          _mm_prefetch(reinterpret_cast<const char*>(words + ij[p + kSignAhead] * W + c0 / 4), _MM_HINT_T0);
        __m512 w = _mm512_set1_ps(vj[p]), nw = _mm512_set1_ps(-vj[p]);
        asm("" : "+v"(w), "+v"(nw));  // kept in registers: one vblendmps per chunk, not a masked broadcast
        const u16_alias* m = reinterpret_cast<const u16_alias*>(words + ij[p] * W) + c0;
        for (int64_t c = 0; c < kChunks; ++c) {
          __mmask16 k;
          asm("kmovw %1, %0" : "=k"(k) : "m"(m[c]));  // from memory: through a register it took 30 % longer
          r[c] = _mm512_add_ps(r[c], _mm512_mask_blend_ps(k, nw, w));
        }
      }
      for (int64_t c = 0; c < kChunks; ++c) _mm512_storeu_ps(a + c * 16, r[c]);
    } else {
      for (int64_t c = 0; c < chunks; ++c) {
        __m512 r = _mm512_setzero_ps();
        for (int64_t p = 0; p < P; ++p) {
          const __m512 w = _mm512_set1_ps(vj[p]), nw = _mm512_set1_ps(-vj[p]);
          const u16_alias* m = reinterpret_cast<const u16_alias*>(words + ij[p] * W) + c0 + c;
          r = _mm512_add_ps(r, _mm512_mask_blend_ps(m[0], nw, w));
        }
        _mm512_storeu_ps(a + c * 16, r);
      }
    }
  }
}

__attribute__((target("avx512f"))) void signs_backward_avx512(const uint64_t* words, int64_t W, const float* gt,
                                                                int64_t ld, const int64_t* idx, int64_t P, int64_t B,
                                                                int64_t j0, int64_t rows, float* gv) {
  constexpr int64_t kQ = 8;  // partners per pass over the neuron's gradient: independent chains of adds
  const int64_t chunks = (B + 15) / 16;
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  for (int64_t jj = 0; jj < rows; ++jj) {
    const float* a = gt + jj * ld;
    const int64_t* ij = idx + (j0 + jj) * P;
    float* out = gv + (j0 + jj) * P;
    for (int64_t p = 0; p < P; p += kQ) {
      const int64_t q_n = std::min<int64_t>(kQ, P - p);
      const u16_alias* m[kQ];
      __m512 s[kQ];
      for (int64_t q = 0; q < kQ; ++q) {
        m[q] = reinterpret_cast<const u16_alias*>(words + ij[p + std::min(q, q_n - 1)] * W);
        s[q] = _mm512_setzero_ps();
      }
      for (int64_t c = 0; c < chunks; ++c) {
        const __m512 t = _mm512_loadu_ps(a + c * 16);
        const __m512 nt = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(t), sign));
        for (int64_t q = 0; q < kQ; ++q) {
          __mmask16 k;
          asm("kmovw %1, %0" : "=k"(k) : "m"(m[q][c]));  // see signs_forward_avx512
          s[q] = _mm512_add_ps(s[q], _mm512_mask_blend_ps(k, nt, t));
        }
      }
      // each partner's 16 lanes summed in lane order (as dot_lanes), the kQ partners side by side:
      // the lanes transposed in cache, then one vector add per lane instead of a chain of 16 scalar
      // adds per partner
      alignas(64) float lanes[kQ][16];
      for (int64_t q = 0; q < kQ; ++q) _mm512_store_ps(lanes[q], s[q]);  // constant indices: s stays in registers
      const __m256i col = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
      __m256 total = _mm256_setzero_ps();
      for (int64_t k = 0; k < 16; ++k) total = _mm256_add_ps(total, _mm256_i32gather_ps(&lanes[0][k], col, 4));
      alignas(32) float totals[kQ];
      _mm256_store_ps(totals, total);
      for (int64_t q = 0; q < q_n; ++q) out[p + q] = totals[q];
    }
  }
}

// The same two loops for CPUs with AVX2 but not AVX-512 (no mask registers): 8 samples per vector,
// and a sample's +-w is w with its sign bit flipped under a 0 bit, the flips of a byte's 8 samples
// read from a table of 256 vectors (8 KB, kept in L1).  -w by a flipped sign bit is exactly -w, so
// the sums and their order are those of the generic loops.
struct SignFlips {
  alignas(32) uint32_t lanes[256][8];
  constexpr SignFlips() : lanes() {
    for (int byte = 0; byte < 256; ++byte)
      for (int e = 0; e < 8; ++e) lanes[byte][e] = ((byte >> e) & 1) ? 0u : 0x80000000u;
  }
};
constexpr SignFlips kSignFlips;

// +-x for the 8 samples of a byte of bits
__attribute__((target("avx2"))) inline __m256 sign_flip(uint8_t byte, __m256 x) {
  return _mm256_xor_ps(x, _mm256_load_ps(reinterpret_cast<const float*>(kSignFlips.lanes[byte])));
}

// forward: 64 samples (one word of every partner's bits) per pass over the neuron's partners, in
// 8 vectors of accumulators (AVX2 has 16 registers).  The last word's lanes past e1 read zero bits
// and are stored into acc's row (kSignBlock long, e0 a multiple of 64) but never copied out.
__attribute__((target("avx2"))) void signs_forward_avx2(const uint64_t* words, int64_t W, const float* v,
                                                         const int64_t* idx, int64_t P, int64_t j0, int64_t rows,
                                                         int64_t e0, int64_t e1, float* acc) {
  constexpr int64_t kSignAhead = 8;  // partners' bits fetched ahead
  const int64_t w0 = e0 / 64, w1 = (e1 + 63) / 64;
  for (int64_t jj = 0; jj < rows; ++jj) {
    const float* vj = v + (j0 + jj) * P;
    const int64_t* ij = idx + (j0 + jj) * P;
    float* a = acc + jj * kSignBlock;
    for (int64_t w = w0; w < w1; ++w) {
      __m256 r[8];
      for (int c = 0; c < 8; ++c) r[c] = _mm256_setzero_ps();
      for (int64_t p = 0; p < P; ++p) {
        if (p + kSignAhead < P)
          _mm_prefetch(reinterpret_cast<const char*>(words + ij[p + kSignAhead] * W + w), _MM_HINT_T0);
        const __m256 wv = _mm256_broadcast_ss(vj + p);
        const uint64_t bits = words[ij[p] * W + w];  // one load, its bytes by shifts (0.84x the time of 8 byte loads)
        for (int c = 0; c < 8; ++c) r[c] = _mm256_add_ps(r[c], sign_flip(static_cast<uint8_t>(bits >> (8 * c)), wv));
      }
      float* out = a + (w - w0) * 64;
      for (int c = 0; c < 8; ++c) _mm256_storeu_ps(out + c * 8, r[c]);
    }
  }
}

// backward: 4 partners per pass over the neuron's gradient, each partner's 16 lanes (dot_lanes) in
// two vectors; lanes past B add -0 (zero padding), which leaves every lane's sum unchanged.
__attribute__((target("avx2"))) void signs_backward_avx2(const uint64_t* words, int64_t W, const float* gt,
                                                          int64_t ld, const int64_t* idx, int64_t P, int64_t B,
                                                          int64_t j0, int64_t rows, float* gv) {
  constexpr int64_t kQ = 4;  // partners per pass: 8 accumulators, 2 gradient vectors, temporaries
  const int64_t chunks = (B + 15) / 16;
  for (int64_t jj = 0; jj < rows; ++jj) {
    const float* a = gt + jj * ld;
    const int64_t* ij = idx + (j0 + jj) * P;
    float* out = gv + (j0 + jj) * P;
    for (int64_t p = 0; p < P; p += kQ) {
      const int64_t q_n = std::min<int64_t>(kQ, P - p);
      const u16_alias* m[kQ];
      __m256 lo[kQ], hi[kQ];
      for (int64_t q = 0; q < kQ; ++q) {
        m[q] = reinterpret_cast<const u16_alias*>(words + ij[p + std::min(q, q_n - 1)] * W);
        lo[q] = _mm256_setzero_ps();
        hi[q] = _mm256_setzero_ps();
      }
      for (int64_t c = 0; c < chunks; ++c) {
        const __m256 t0 = _mm256_loadu_ps(a + c * 16), t1 = _mm256_loadu_ps(a + c * 16 + 8);
        for (int64_t q = 0; q < kQ; ++q) {
          const uint32_t bits = m[q][c];  // the chunk's 16 bits in one load, as forward
          lo[q] = _mm256_add_ps(lo[q], sign_flip(static_cast<uint8_t>(bits), t0));
          hi[q] = _mm256_add_ps(hi[q], sign_flip(static_cast<uint8_t>(bits >> 8), t1));
        }
      }
      alignas(32) float lanes[kQ][16];
      for (int64_t q = 0; q < kQ; ++q) {
        _mm256_store_ps(lanes[q], lo[q]);
        _mm256_store_ps(lanes[q] + 8, hi[q]);
      }
      float totals[kQ] = {};
      for (int64_t k = 0; k < 16; ++k)  // each partner's lanes in lane order, as dot_lanes
        for (int64_t q = 0; q < kQ; ++q) totals[q] += lanes[q][k];
      for (int64_t q = 0; q < q_n; ++q) out[p + q] = totals[q];
    }
  }
}

#endif

}  // namespace

// x.T as a contiguous (C, R) tensor, for any strides of the (R, C) tensor x.
torch::Tensor transpose_tiled(torch::Tensor x) {
  TORCH_CHECK(x.dim() == 2 && x.device().is_cpu(), "a (R, C) CPU tensor expected");
  const int64_t R = x.size(0), C = x.size(1);
  auto out = torch::empty({C, R}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "transpose_tiled", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const int64_t sr = x.stride(0), sc = x.stride(1);
    at::parallel_for(0, R, std::max<int64_t>(kTransposeTile, kActGrain / std::max<int64_t>(C, 1)),
                     [&](int64_t r0, int64_t r1) { transpose_rows_any(xp, sr, sc, op, R, C, r0, r1); });
  });
  return out;
}

// out (B, N): out[b, j] = sum_p values[j, p] xt[index[j, p], b], contiguous, or with neuron_major the
// transposed view of a contiguous (N, B) tensor.
torch::Tensor partner_forward(torch::Tensor xt, torch::Tensor values, torch::Tensor index, bool neuron_major) {
  partner_check(xt, values, index);
  const int64_t B = xt.size(1), N = index.size(0), P = index.size(1);
  auto out = neuron_major ? torch::empty({N, B}, xt.options()) : torch::empty({B, N}, xt.options());
  const int64_t ob = neuron_major ? 1 : N, oj = neuron_major ? B : 1;
  AT_DISPATCH_FLOATING_TYPES(xt.scalar_type(), "partner_forward", [&] {
    const scalar_t* xp = xt.data_ptr<scalar_t>();
    const scalar_t* vp = values.data_ptr<scalar_t>();
    const int64_t* ip = index.data_ptr<int64_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const int64_t tiles = (N + kPartnerRows - 1) / kPartnerRows;
    at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t j0 = t * kPartnerRows, rows = std::min(kPartnerRows, N - j0);
        for (int64_t b0 = 0; b0 < B; b0 += kPartnerCols)
          partner_tile_any(xp, vp, ip, P, B, ob, oj, j0, rows, b0, std::min(kPartnerCols, B - b0), op);
      }
    });
  });
  return neuron_major ? out.t() : out;
}

// grad_values (N, P): grad_values[j, p] = sum_b grad[b, j] xt[index[j, p], b] (grad (B, N), any strides).
torch::Tensor partner_backward(torch::Tensor grad, torch::Tensor xt, torch::Tensor index) {
  TORCH_CHECK(grad.dim() == 2 && grad.device().is_cpu() && grad.size(0) == xt.size(1) &&
                  grad.size(1) == index.size(0),
              "grad: a (B, N) CPU tensor");
  const int64_t B = xt.size(1), N = index.size(0), P = index.size(1);
  auto values = torch::empty({N, P}, xt.options());
  partner_check(xt, values, index);
  grad = grad.to(xt.scalar_type());
  AT_DISPATCH_FLOATING_TYPES(xt.scalar_type(), "partner_backward", [&] {
    const scalar_t* xp = xt.data_ptr<scalar_t>();
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    const int64_t sb = grad.stride(0), sj = grad.stride(1);
    const int64_t* ip = index.data_ptr<int64_t>();
    scalar_t* vp = values.data_ptr<scalar_t>();
    const int64_t tiles = (N + kPartnerRows - 1) / kPartnerRows;
    at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
      const int64_t ld = B + kDotLanes;
      std::vector<scalar_t> gt(kPartnerRows * ld);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t j0 = t * kPartnerRows;
        partner_grad_tile_any(xp, gp, sb, sj, ip, P, B, ld, j0, std::min(kPartnerRows, N - j0), gt.data(), vp);
      }
    });
  });
  return values;
}


// Spikes packed for the partner products: (C, ceil(B / 64)) int64 words, bit b of row r =
// [x[b, r] > 0], for a float32 (B, C) x of any strides; an empty tensor when some value of x is not
// exactly +1 or -1 (then use transpose_tiled and the float kernels).
torch::Tensor sign_pack(torch::Tensor x) {
  TORCH_CHECK(x.dim() == 2 && x.device().is_cpu() && x.scalar_type() == torch::kFloat,
              "a (B, C) float32 CPU tensor expected");
  const int64_t B = x.size(0), C = x.size(1), W = (B + 63) / 64;
  auto words = torch::empty({C, W}, x.options().dtype(torch::kLong));
  const float* xp = x.data_ptr<float>();
  uint64_t* wp = reinterpret_cast<uint64_t*>(words.data_ptr<int64_t>());
  const int64_t sb = x.stride(0), sr = x.stride(1);
  std::atomic<bool> ok{true};
  at::parallel_for(0, (C + kSignCols - 1) / kSignCols, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      if (!sign_pack_cols(xp, sb, sr, B, W, wp, t * kSignCols, std::min(C, (t + 1) * kSignCols))) ok = false;
  });
  return ok ? words : torch::empty({0}, words.options());
}

// partner_forward for spikes packed by sign_pack (B: the number of samples): the same bits.
torch::Tensor partner_forward_signs(torch::Tensor words, torch::Tensor values, torch::Tensor index, int64_t B,
                                    const std::string& path, bool neuron_major) {
  words_check(words, B);
  index_check(index, words.size(0));
  values_check(values, index, torch::kFloat);
  const int64_t W = words.size(1), N = index.size(0), P = index.size(1);
  auto out = neuron_major ? torch::empty({N, B}, values.options()) : torch::empty({B, N}, values.options());
  const uint64_t* wp = reinterpret_cast<const uint64_t*>(words.data_ptr<int64_t>());
  const float* vp = values.data_ptr<float>();
  const int64_t* ip = index.data_ptr<int64_t>();
  float* op = out.data_ptr<float>();
  const VecPath chosen = vector_path(path);
  const int64_t tiles = (N + kPartnerRows - 1) / kPartnerRows;
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> acc(kPartnerRows * kSignBlock);
    for (int64_t e0 = 0; e0 < B; e0 += kSignBlock) {  // blocks of samples outermost: see kSignBlock
      const int64_t e1 = std::min(B, e0 + kSignBlock);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t j0 = t * kPartnerRows, rows = std::min(kPartnerRows, N - j0);
#if defined(INFOMORPHIC_AVX512)
        if (chosen == VecPath::kAvx512) signs_forward_avx512(wp, W, vp, ip, P, j0, rows, e0, e1, acc.data());
        else if (chosen == VecPath::kAvx2) signs_forward_avx2(wp, W, vp, ip, P, j0, rows, e0, e1, acc.data());
        else
#endif
          signs_forward_generic(wp, W, vp, ip, P, j0, rows, e0, e1, acc.data());
        if (neuron_major)
          for (int64_t jj = 0; jj < rows; ++jj)
            std::memcpy(op + (j0 + jj) * B + e0, acc.data() + jj * kSignBlock, (e1 - e0) * sizeof(float));
        else
          for (int64_t e = e0; e < e1; ++e)
            for (int64_t jj = 0; jj < rows; ++jj) op[e * N + j0 + jj] = acc[jj * kSignBlock + e - e0];
      }
    }
  });
  (void)chosen;
  return neuron_major ? out.t() : out;
}

// partner_backward for spikes packed by sign_pack: the same bits.
torch::Tensor partner_backward_signs(torch::Tensor grad, torch::Tensor words, torch::Tensor index,
                                     const std::string& path) {
  TORCH_CHECK(grad.dim() == 2 && grad.device().is_cpu() && grad.size(1) == index.size(0),
              "grad: a (B, N) CPU tensor");
  const int64_t B = grad.size(0), N = index.size(0), P = index.size(1);
  words_check(words, B);
  index_check(index, words.size(0));
  const int64_t W = words.size(1);
  grad = grad.to(torch::kFloat);
  auto values = torch::empty({N, P}, grad.options());
  const uint64_t* wp = reinterpret_cast<const uint64_t*>(words.data_ptr<int64_t>());
  const float* gp = grad.data_ptr<float>();
  const int64_t sb = grad.stride(0), sj = grad.stride(1);
  const int64_t* ip = index.data_ptr<int64_t>();
  float* vp = values.data_ptr<float>();
  const VecPath chosen = vector_path(path);
  const int64_t ld = (B + 15) / 16 * 16 + kDotLanes, tiles = (N + kPartnerRows - 1) / kPartnerRows;
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> gt(kPartnerRows * ld, 0.0f);  // the padding past B stays zero
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t j0 = t * kPartnerRows, rows = std::min(kPartnerRows, N - j0);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t jj = 0; jj < rows; ++jj) gt[jj * ld + b] = gp[b * sb + (j0 + jj) * sj];
#if defined(INFOMORPHIC_AVX512)
      if (chosen == VecPath::kAvx512) signs_backward_avx512(wp, W, gt.data(), ld, ip, P, B, j0, rows, vp);
      else if (chosen == VecPath::kAvx2) signs_backward_avx2(wp, W, gt.data(), ld, ip, P, B, j0, rows, vp);
      else
#endif
        signs_backward_generic(wp, W, gt.data(), ld, ip, P, B, j0, rows, vp);
    }
  });
  (void)chosen;
  return values;
}


// ---- torch.rand for float32 on the CPU, the same numbers faster ---------------------------------
// PyTorch's CPU generator is an MT19937 engine; torch.rand (float32) takes one 32-bit output per
// number, tempered, and keeps its low 24 bits times 2^-24, one number after another under a lock.
// mt_uniform_ fills a contiguous float32 tensor with the numbers torch.rand would give from the
// generator state `state` (the bytes of Generator.get_state(): the engine's 624 words, `left`
// and `next`) and advances that state in place, so that set_state(state) leaves the generator
// where torch.rand would have.  The engine is twisted 624 words at a time and the tempering and
// conversion run over whole blocks, which the compiler vectorises.  infomorphic.nn.functional
// checks once per process that the numbers equal torch.rand's before using it.
namespace {
constexpr int64_t kMtN = 624, kMtM = 397;
constexpr int64_t kMtLeft = 8, kMtNext = 16, kMtState = 24, kMtBytes = kMtState + 8 * kMtN;

inline uint32_t mt_twist(uint32_t u, uint32_t v) {
  return (((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

void mt_next_state(uint32_t* s) {
  int64_t i = 0;
  for (; i < kMtN - kMtM; ++i) s[i] = s[i + kMtM] ^ mt_twist(s[i], s[i + 1]);
  for (; i < kMtN - 1; ++i) s[i] = s[i + kMtM - kMtN] ^ mt_twist(s[i], s[i + 1]);
  s[kMtN - 1] = s[kMtM - 1] ^ mt_twist(s[kMtN - 1], s[0]);
}

INFOMORPHIC_CLONES void mt_floats(const uint32_t* s, int64_t n, float* out) {
  for (int64_t k = 0; k < n; ++k) {
    uint32_t y = s[k];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    out[k] = static_cast<float>(y & 0xffffffu) * 5.9604644775390625e-08f;  // 2^-24: exact
  }
}

// The engine's state as torch keeps it (Generator.get_state(): 624 words, `left` and `next`),
// read from and written back to those bytes; fill() hands out the numbers torch.rand would.
struct MtStream {
  uint32_t st[kMtN];
  int32_t left;
  uint64_t next;
  uint8_t* sp;
  explicit MtStream(torch::Tensor& state) {
    TORCH_CHECK(state.scalar_type() == torch::kByte && state.is_contiguous() && state.numel() >= kMtBytes,
                "state: the bytes of a CPU generator's get_state()");
    sp = state.data_ptr<uint8_t>();
    std::memcpy(&left, sp + kMtLeft, sizeof left);
    std::memcpy(&next, sp + kMtNext, sizeof next);
    TORCH_CHECK(left >= 1 && left <= kMtN + 1 && next <= static_cast<uint64_t>(kMtN), "not an MT19937 state");
    for (int64_t i = 0; i < kMtN; ++i) {
      uint64_t w;
      std::memcpy(&w, sp + kMtState + 8 * i, sizeof w);
      st[i] = static_cast<uint32_t>(w);
    }
  }
  // per number the engine does: if (--left == 0) { twist; left = 624; next = 0; } y = st[next++]
  void fill(float* op, int64_t n) {
    while (n > 0) {
      if (left == 1) {
        mt_next_state(st);
        left = kMtN + 1;
        next = 0;
      }
      const int64_t k = std::min<int64_t>(n, left - 1);
      mt_floats(st + next, k, op);
      op += k;
      n -= k;
      next += k;
      left -= static_cast<int32_t>(k);
    }
  }
  void store() const {
    std::memcpy(sp + kMtLeft, &left, sizeof left);
    std::memcpy(sp + kMtNext, &next, sizeof next);
    for (int64_t i = 0; i < kMtN; ++i) {
      const uint64_t w = st[i];
      std::memcpy(sp + kMtState + 8 * i, &w, sizeof w);
    }
  }
};

constexpr int64_t kSampleRows = 64;  // samples per block of sample_signs (u of a block stays in cache)
// With several threads sample_signs runs a pipeline: the engine is sequential, so one thread at a
// time draws the next block's numbers into a ring of kSampleRing block buffers while the others
// compare the blocks already drawn (and the drawing thread compares too when the ring is full).
// 1024 x 2000 neuron-major on two threads: the drawing (about 0.66 ms) overlaps the comparisons.
constexpr int64_t kSampleRing = 4;

inline void cpu_relax() {
#if defined(__SSE2__)
  _mm_pause();
#endif
}

// spikes[e] = -copysign(1, u[e] - theta[e]) over a block's elements in memory order.
INFOMORPHIC_CLONES void signs_rows(const float* u, const float* th, float* out, int64_t n) {
  for (int64_t e = 0; e < n; ++e) out[e] = -std::copysign(1.0f, u[e] - th[e]);
}

// The same for a block of `rows` samples of a neuron-major theta (th[j * B + b]): u[r * N + j]
// (the block's numbers, in the generator's sample-major order) against th[j * B + b0 + r], through
// ut (N x kSampleRows, in cache): u transposed 16 neurons at a time, then one row of kSampleRows per
// neuron.
template <int64_t R>
inline __attribute__((always_inline)) void signs_block_transposed(const float* __restrict u, int64_t N,
                                                                  const float* __restrict th, int64_t B, int64_t b0,
                                                                  int64_t rows, float* __restrict out,
                                                                  float* __restrict ut) {
  const int64_t n = R > 0 ? R : rows;
  for (int64_t j0 = 0; j0 < N; j0 += 16) {
    const int64_t jn = std::min<int64_t>(16, N - j0);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t jj = 0; jj < jn; ++jj) ut[(j0 + jj) * kSampleRows + r] = u[r * N + j0 + jj];
  }
  for (int64_t j = 0; j < N; ++j) {
    const float* __restrict t = th + j * B + b0;
    const float* __restrict uj = ut + j * kSampleRows;
    float* __restrict o = out + j * B + b0;
    for (int64_t r = 0; r < n; ++r) o[r] = -std::copysign(1.0f, uj[r] - t[r]);
  }
}

#if defined(INFOMORPHIC_AVX512)
// signs_block_transposed for a whole block on a CPU with AVX-512: each neuron's kSampleRows numbers
// gathered from the block's rows (16 per gather), the same subtraction, and -copysign(1, d) as its
// bits (1.0 with the sign bit of d flipped): no transposed buffer.
__attribute__((target("avx512f"))) void signs_block_gather(const float* u, int64_t N, const float* th, int64_t B,
                                                            int64_t b0, float* out) {
  const __m512i rows = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(static_cast<int>(N)));
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512i one = _mm512_set1_epi32(0x3f800000);
  for (int64_t j = 0; j < N; ++j) {
    const float* t = th + j * B + b0;
    float* o = out + j * B + b0;
    for (int64_t q = 0; q < kSampleRows; q += 16) {
      const __m512 uv = _mm512_i32gather_ps(rows, u + q * N + j, 4);
      const __m512i d = _mm512_castps_si512(_mm512_sub_ps(uv, _mm512_loadu_ps(t + q)));
      // (d & sign) ^ sign | one: 1.0 carrying the flipped sign bit of d
      const __m512i bits = _mm512_or_si512(_mm512_xor_si512(_mm512_and_si512(d, sign), sign), one);
      _mm512_storeu_si512(o + q, bits);
    }
  }
}
#endif

INFOMORPHIC_CLONES void signs_rows_transposed_any(const float* u, int64_t N, const float* th, int64_t B, int64_t b0,
                                                  int64_t rows, float* out, float* ut) {
  if (rows == kSampleRows) signs_block_transposed<kSampleRows>(u, N, th, B, b0, rows, out, ut);
  else signs_block_transposed<0>(u, N, th, B, b0, rows, out, ut);
}

void signs_rows_transposed(const float* u, int64_t N, const float* th, int64_t B, int64_t b0, int64_t rows,
                           float* out, float* ut, bool generic) {
#if defined(INFOMORPHIC_AVX512)
  if (!generic && rows == kSampleRows && N <= (int64_t{1} << 26) && has_avx512()) {
    signs_block_gather(u, N, th, B, b0, out);
    return;
  }
#else
  (void)generic;
#endif
  signs_rows_transposed_any(u, N, th, B, b0, rows, out, ut);
}
}  // namespace

void mt_uniform_(torch::Tensor out, torch::Tensor state) {
  TORCH_CHECK(out.scalar_type() == torch::kFloat && out.is_contiguous() && out.device().is_cpu(),
              "out: a contiguous float32 CPU tensor");
  MtStream mt(state);
  mt.fill(out.data_ptr<float>(), out.numel());
  mt.store();
}

// Spikes +-1 with P(+1) = theta, for a float32 (B, N) theta stored sample by sample or neuron by
// neuron (its transposed view contiguous): the numbers u that torch.rand((B, N)) would draw from the
// generator state (advanced in place, as mt_uniform_), and spike = -copysign(1, u - theta), the
// operations of infomorphic.nn.functional.sample_binary, so the same bits; in blocks of
// kSampleRows samples, so that u never exists as a whole and, for a neuron-major theta, is
// transposed in cache (with several threads, blocks are drawn by one thread at a time while the others
// compare the blocks drawn before: see kSampleRing).  The result has theta's layout.  generic: never
// the AVX-512 gathers (tests).
torch::Tensor sample_signs(torch::Tensor theta, torch::Tensor state, bool generic) {
  TORCH_CHECK(theta.dim() == 2 && theta.scalar_type() == torch::kFloat && theta.device().is_cpu(),
              "theta: a (B, N) float32 CPU tensor");
  const int64_t B = theta.size(0), N = theta.size(1);
  const bool neuron_major = !theta.is_contiguous() && theta.t().is_contiguous();
  TORCH_CHECK(neuron_major || theta.is_contiguous(), "theta must be stored sample by sample or neuron by neuron");
  MtStream mt(state);
  auto out = neuron_major ? torch::empty({N, B}, theta.options()) : torch::empty({B, N}, theta.options());
  const float* th = theta.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // the spikes of the block of samples [b0, b0 + kSampleRows) from its numbers ub (ut: scratch)
  auto compare = [&](const float* ub, int64_t b0, float* ut) {
    const int64_t rows = std::min(kSampleRows, B - b0);
    if (neuron_major) signs_rows_transposed(ub, N, th, B, b0, rows, op, ut, generic);
    else signs_rows(ub, th + b0 * N, op + b0 * N, rows * N);
  };
  const int64_t blocks = (B + kSampleRows - 1) / kSampleRows;
  if (at::get_num_threads() >= 2 && blocks > 1) {
    // the pipeline (see kSampleRing): whichever thread holds `drawing` draws block `drawn` into its
    // ring slot once the block that used the slot before has been compared; every thread claims the
    // drawn blocks in order and compares them.  A thread prefers drawing, so with fewer threads than
    // asked for (or one) the same loop alternates drawing and comparing and always finishes.
    const int64_t ring = std::min(blocks, kSampleRing), slot = kSampleRows * N;
    std::vector<float> u(ring * slot);
    std::vector<std::atomic<bool>> done(blocks);
    for (auto& d : done) d.store(false, std::memory_order_relaxed);
    std::atomic<int64_t> drawn{0}, claimed{0};
    std::atomic<bool> drawing{false};
    auto drawable = [&](int64_t d) {
      return d < blocks && (d < ring || done[d - ring].load(std::memory_order_acquire));
    };
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
      std::vector<float> ut(neuron_major ? kSampleRows * N : 0);
      for (;;) {
        if (drawable(drawn.load(std::memory_order_acquire)) && !drawing.exchange(true, std::memory_order_acquire)) {
          const int64_t d = drawn.load(std::memory_order_relaxed);
          if (drawable(d)) {
            mt.fill(u.data() + (d % ring) * slot, std::min(kSampleRows, B - d * kSampleRows) * N);
            drawn.store(d + 1, std::memory_order_release);
          }
          drawing.store(false, std::memory_order_release);
          continue;
        }
        int64_t k = claimed.load(std::memory_order_relaxed);
        if (k >= blocks) break;
        if (k < drawn.load(std::memory_order_acquire)) {
          if (claimed.compare_exchange_weak(k, k + 1, std::memory_order_relaxed)) {
            compare(u.data() + (k % ring) * slot, k * kSampleRows, ut.data());
            done[k].store(true, std::memory_order_release);
          }
          continue;
        }
        cpu_relax();
      }
    });
  } else {
    std::vector<float> u(kSampleRows * N), ut(neuron_major ? kSampleRows * N : 0);
    for (int64_t b0 = 0; b0 < B; b0 += kSampleRows) {
      mt.fill(u.data(), std::min(kSampleRows, B - b0) * N);
      compare(u.data(), b0, ut.data());
    }
  }
  mt.store();
  return neuron_major ? out.t() : out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("run", &sx_run, "I^sx sums per neuron and antichain and / or their gradient");
  module.def("act_forward", &act_forward, "fused activation: theta = sigmoid(f * (k0 + sum_i term_i))", py::arg("f"),
             py::arg("mods"), py::arg("k0"), py::arg("a"), py::arg("b"), py::arg("centred"), py::arg("path") = "best");
  module.def("act_backward", &act_backward, "gradients of the fused activation with respect to f and the modulators",
             py::arg("grad_theta"), py::arg("theta"), py::arg("f"), py::arg("mods"), py::arg("k0"), py::arg("a"),
             py::arg("b"), py::arg("centred"), py::arg("path") = "best");
  module.def("transpose_tiled", &transpose_tiled, "x.T as a contiguous tensor (tiled copy, float / double)");
  module.def("partner_forward", &partner_forward, "out[b, j] = sum_p values[j, p] xt[index[j, p], b]",
             py::arg("xt"), py::arg("values"), py::arg("index"), py::arg("neuron_major") = false);
  module.def("partner_backward", &partner_backward, "grad_values[j, p] = sum_b grad[b, j] xt[index[j, p], b]");
  module.def("sign_pack", &sign_pack, "spikes (+-1, float32) packed into bits, transposed; empty if not all +-1");
  module.def("partner_forward_signs", &partner_forward_signs, "partner_forward on packed spikes",
             py::arg("words"), py::arg("values"), py::arg("index"), py::arg("B"), py::arg("path") = "best",
             py::arg("neuron_major") = false);
  module.def("partner_backward_signs", &partner_backward_signs, "partner_backward on packed spikes",
             py::arg("grad"), py::arg("words"), py::arg("index"), py::arg("path") = "best");
  module.def("vector_paths", &vector_paths, "the instruction-set versions of the vector loops this CPU runs");
  module.def("sample_signs", &sample_signs, "+-1 spikes of theta from a generator state (advanced), theta's layout",
             py::arg("theta"), py::arg("state"), py::arg("generic") = false);
  module.def("mt_uniform_", &mt_uniform_, "fill a float32 tensor as torch.rand would from a generator state (advanced)");
  // the layouts this kernel follows (nn.layer stores large layers neuron by neuron only with it)
  module.attr("neuron_major") = true;
  // bins_fixed / bins_adaptive take small=True: uint8 bins for at most 256 bins, which run() reads
  module.attr("small_bins") = true;
  module.def("bins_fixed", &bins_fixed, "fixed-width bins (K, B, N) int32 (uint8 when small) of K aggregates (B, N)",
             py::arg("parts"), py::arg("n_bins"), py::arg("low"), py::arg("high"), py::arg("small") = false);
  module.def("bins_adaptive", &bins_adaptive,
             "bins (K, B, N) int32 (uint8 when small) of K aggregates (B, N), each neuron scaled by its batch max",
             py::arg("parts"), py::arg("n_bins"), py::arg("small") = false);
}
