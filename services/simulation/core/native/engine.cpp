// The simulation engine's inner loop: clock-driven spiking networks in C++ with OpenMP.
//
// Why C++ and OpenMP rather than numba or torch on the CPU: the whole run is one parallel region
// in which every thread owns a contiguous range of neurons, and a time step needs a single barrier
// (two with plasticity). Each thread integrates its own neurons, finds their spikes, and then
// delivers *every* spike of the step to the synapses whose targets it owns. Deliveries to a neuron
// are therefore made only by its owner, without atomics, in ascending order of the spiking
// neuron, so the result does not depend on the thread count. numba's prange pays a fork/join per
// loop (tens of microseconds, against a 5 us step of a 4,000-neuron network) and has no barrier.
//
// Random numbers are counter-based (a SplitMix64 hash of seed, stream, step and neuron), so
// Poisson drive and connectivity are the same for any thread count and any chunking of the run.
//
// Units: ms, mV; channel variables as documented in network.py.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

// ---------------------------------------------------------------------------- random numbers
inline uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
inline uint64_t hash3(uint64_t seed, uint64_t a, uint64_t b) { return mix64(mix64(seed ^ mix64(a)) + b); }
// Uniform in (0, 1]: never 0, so log(u) is finite.
inline double unit_open0(uint64_t x) { return (double)((x >> 11) + 1) * 0x1.0p-53; }

struct SplitMix {  // sequential stream, for building connectivity row by row
    uint64_t state;
    explicit SplitMix(uint64_t s) : state(s) {}
    uint64_t next() { state += 0x9e3779b97f4a7c15ULL; return mix64(state); }
    double uniform() { return unit_open0(next()); }
};

// Poisson sample by inversion, for lambda <= 100 (validated in Python).
inline int poisson_inverse(double u, double lambda, double exp_minus_lambda) {
    int k = 0;
    double p = exp_minus_lambda, cdf = p;
    while (u > cdf && k < 1000) {
        ++k;
        p *= lambda / k;
        cdf += p;
    }
    return k;
}

enum Model : int { LIF_CUBA = 0, LIF_COBA = 1, IZHIKEVICH = 2, POISSON = 3 };
enum Var : int { V = 0, U = 1, G_EXC = 2, G_INH = 3 };
enum Rule : int { FIXED_PROBABILITY = 0, FIXED_INDEGREE = 1, ONE_TO_ONE = 2, ALL_TO_ALL = 3 };
enum Plastic : int { NONE = 0, STDP = 1, REWARD_STDP = 2 };

double param(const py::dict& d, const char* key) {
    if (!d.contains(key)) throw std::invalid_argument(std::string("missing parameter ") + key);
    return d[key].cast<double>();
}

struct Population {
    int model;
    int64_t start, size;
    // LIF / Izhikevich parameters (double; the loops cast to Real)
    double tau_m, v_rest, v_th, v_reset, e_exc, e_inh, i_bias, a, b, c, d, v_peak;
    int32_t ref_steps;
    double decay_exc, decay_inh;        // exp(-dt/tau)
    double prop_v, prop_exc, prop_inh;  // CUBA exact propagators
    double dt_over_tau;
    // Poisson generator
    double rate_per_step, mod_omega_per_step, mod_depth;
    int64_t start_step, stop_step;
    bool has_current = false;  // some CurrentInput targets a neuron of it
};

template <typename Real>
struct Projection {
    int64_t src_start, src_size, tgt_start, tgt_size;
    int channel;
    Real weight;       // signed weight of a static projection
    Real sign;         // +1 or -1: plastic weights are stored as magnitudes
    int32_t delay_steps;
    std::vector<int64_t> row_ptr;
    std::vector<int32_t> cols;   // global target ids, ascending within a row
    std::vector<int64_t> split;  // row-major [n_src][T+1] segment bounds per thread (T > 1)
    // plasticity
    int plastic = NONE;
    std::vector<Real> w;             // magnitudes, per synapse
    std::vector<Real> eligibility;   // reward-modulated rule
    std::vector<Real> x_pre, y_post; // traces of the sources and targets
    std::vector<int64_t> csc_ptr;    // incoming synapses of each target
    std::vector<int64_t> csc_syn;
    std::vector<int32_t> csc_pre;    // source row of each incoming synapse
    double a_plus = 0, a_minus = 0, w_max = 0, decay_plus = 1, decay_minus = 1;
    double learning_rate = 0, decay_dopamine_step = 1, decay_elig_interval = 1, interval_ms = 1;
    int64_t interval_steps = 1;
};

struct PoissonDrive {
    int64_t start, size;
    int channel;
    double weight, lambda, exp_minus_lambda;
    int64_t start_step, stop_step;
    uint64_t stream;
};

struct CurrentStep {
    std::vector<int32_t> neurons;  // global ids
    double amplitude;
    int64_t start_step, stop_step;
};

struct Monitor {
    std::vector<int32_t> neurons;
    std::vector<int> vars;
    int64_t every;
};

template <typename Real>
class Engine {
public:
    Engine(int threads, double dt_ms, uint64_t seed, int64_t n_neurons)
        : T_(std::max(1, threads)), dt_(dt_ms), seed_(seed), N_(n_neurons),
          v_(n_neurons, Real(0)), u_(n_neurons, Real(0)), ge_(n_neurons, Real(0)), gi_(n_neurons, Real(0)),
          iext_(n_neurons, Real(0)), ref_until_(n_neurons, std::numeric_limits<int32_t>::min()) {
        bounds_.resize(T_ + 1);
        for (int t = 0; t <= T_; ++t) bounds_[t] = N_ * t / T_;
    }

    void add_population(int model, int64_t start, int64_t size, const py::dict& p) {
        Population pop{};
        pop.model = model;
        pop.start = start;
        pop.size = size;
        if (model == POISSON) {
            pop.rate_per_step = param(p, "rate_hz") * dt_ * 1e-3;
            pop.mod_omega_per_step = 2.0 * M_PI * param(p, "modulation_frequency_hz") * dt_ * 1e-3;
            pop.mod_depth = param(p, "modulation_depth");
            pop.start_step = to_step(param(p, "start_ms"));
            pop.stop_step = to_step(param(p, "stop_ms"));
        } else {
            pop.decay_exc = std::exp(-dt_ / param(p, "tau_exc"));
            pop.decay_inh = std::exp(-dt_ / param(p, "tau_inh"));
            pop.i_bias = param(p, "i_bias");
            if (model == IZHIKEVICH) {
                pop.a = param(p, "a"); pop.b = param(p, "b"); pop.c = param(p, "c"); pop.d = param(p, "d");
                pop.v_peak = param(p, "v_peak");
                pop.ref_steps = 0;
            } else {
                pop.tau_m = param(p, "tau_m");
                pop.v_rest = param(p, "v_rest");
                pop.v_th = param(p, "v_threshold");
                pop.v_reset = param(p, "v_reset");
                pop.ref_steps = (int32_t)std::llround(param(p, "refractory_ms") / dt_);
                pop.dt_over_tau = dt_ / pop.tau_m;
                if (model == LIF_COBA) {
                    pop.e_exc = param(p, "e_exc");
                    pop.e_inh = param(p, "e_inh");
                } else {
                    // Exact integration of dv/dt = (g_e + g_i - (v - v_rest - I))/tau_m with
                    // exponentially decaying g (Rotter & Diesmann 1999).
                    pop.prop_v = std::exp(-dt_ / pop.tau_m);
                    pop.prop_exc = cuba_propagator(param(p, "tau_exc"), pop.tau_m);
                    pop.prop_inh = cuba_propagator(param(p, "tau_inh"), pop.tau_m);
                }
            }
        }
        pops_.push_back(pop);
    }

    int64_t add_projection(int64_t src_start, int64_t src_size, int64_t tgt_start, int64_t tgt_size, int channel,
                           double weight, int32_t delay_steps, int rule, double value, bool allow_autapses,
                           bool same_population, int plastic, const py::dict& pl, uint64_t stream) {
        Projection<Real> pr;
        pr.src_start = src_start; pr.src_size = src_size; pr.tgt_start = tgt_start; pr.tgt_size = tgt_size;
        pr.channel = channel;
        pr.weight = (Real)weight;
        pr.sign = weight < 0 ? Real(-1) : Real(1);
        pr.delay_steps = delay_steps;
        max_delay_ = std::max(max_delay_, delay_steps);
        bool no_self = same_population && !allow_autapses;
        {
            py::gil_scoped_release release;
            if (rule == FIXED_INDEGREE) build_fixed_indegree(pr, (int64_t)std::llround(value), no_self, stream);
            else build_by_rows(pr, rule, value, no_self, stream);
        }
        pr.plastic = plastic;
        if (plastic != NONE) {
            pr.a_plus = param(pl, "a_plus"); pr.a_minus = param(pl, "a_minus"); pr.w_max = param(pl, "w_max");
            pr.decay_plus = std::exp(-dt_ / param(pl, "tau_plus"));
            pr.decay_minus = std::exp(-dt_ / param(pl, "tau_minus"));
            pr.w.assign(pr.cols.size(), (Real)std::fabs(weight));
            pr.x_pre.assign(src_size, Real(0));
            pr.y_post.assign(tgt_size, Real(0));
            build_incoming(pr);
            if (plastic == REWARD_STDP) {
                pr.eligibility.assign(pr.cols.size(), Real(0));
                pr.learning_rate = param(pl, "learning_rate");
                pr.decay_dopamine_step = std::exp(-dt_ / param(pl, "tau_dopamine"));
                pr.interval_steps = std::max<int64_t>(1, std::llround(param(pl, "update_interval_ms") / dt_));
                pr.interval_ms = pr.interval_steps * dt_;
                pr.decay_elig_interval = std::exp(-pr.interval_ms / param(pl, "tau_eligibility"));
            }
            has_plasticity_ = true;
        }
        int64_t n = (int64_t)pr.cols.size();
        user_.push_back({(int)projs_.size(), tgt_start, tgt_size, n});
        projs_.push_back(std::move(pr));
        return n;
    }

    void add_poisson_input(int64_t start, int64_t size, int channel, double weight, double lambda,
                           double start_ms, double stop_ms, uint64_t stream) {
        drives_.push_back({start, size, channel, weight, lambda, std::exp(-lambda), to_step(start_ms),
                           to_step(stop_ms), stream});
    }

    void add_current_input(py::array_t<int32_t, py::array::c_style | py::array::forcecast> neurons, double amplitude,
                           double start_ms, double stop_ms) {
        CurrentStep c;
        c.neurons.assign(neurons.data(), neurons.data() + neurons.size());
        c.amplitude = amplitude;
        c.start_step = to_step(start_ms);
        c.stop_step = to_step(stop_ms);
        currents_.push_back(std::move(c));
    }

    void add_reward(double time_ms, double amount) { rewards_.push_back({to_step(time_ms), amount}); }

    int add_state_monitor(py::array_t<int32_t, py::array::c_style | py::array::forcecast> neurons,
                          std::vector<int> vars, int64_t every) {
        Monitor m;
        m.neurons.assign(neurons.data(), neurons.data() + neurons.size());
        m.vars = std::move(vars);
        m.every = std::max<int64_t>(1, every);
        monitors_.push_back(std::move(m));
        return (int)monitors_.size() - 1;
    }

    void set_recorded_populations(std::vector<bool> mask) { record_pop_ = std::move(mask); }

    void set_state(int var, py::array_t<double, py::array::c_style | py::array::forcecast> values) {
        if (values.size() != N_) throw std::invalid_argument("state array must have one value per neuron");
        std::vector<Real>& dst = state(var);
        const double* src = values.data();
        for (int64_t i = 0; i < N_; ++i) dst[i] = (Real)src[i];
    }

    py::array_t<double> get_state(int var) {
        py::array_t<double> out(N_);
        std::vector<Real>& src = state(var);
        double* dst = out.mutable_data();
        for (int64_t i = 0; i < N_; ++i) dst[i] = (double)src[i];
        return out;
    }

    // Weights of user projection `index` (signed), in (source, target) order.
    py::array_t<double> get_weights(int index) {
        const UserProjection& up = user_.at(index);
        const Projection<Real>& pr = projs_[up.group];
        py::array_t<double> out((py::ssize_t)up.n_synapses);
        double* dst = out.mutable_data();
        int64_t m = 0;
        for (size_t k = 0; k < pr.cols.size(); ++k)
            if (pr.cols[k] >= up.tgt_start && pr.cols[k] < up.tgt_start + up.tgt_size)
                dst[m++] = pr.plastic != NONE ? (double)(pr.sign * pr.w[k]) : (double)pr.weight;
        return out;
    }

    // (source index, target index) within their populations of user projection `index`.
    py::tuple get_connections(int index) {
        const UserProjection& up = user_.at(index);
        const Projection<Real>& pr = projs_[up.group];
        py::array_t<int64_t> rows((py::ssize_t)up.n_synapses);
        py::array_t<int32_t> cols((py::ssize_t)up.n_synapses);
        int64_t* r = rows.mutable_data();
        int32_t* c = cols.mutable_data();
        int64_t m = 0;
        for (int64_t i = 0; i < pr.src_size; ++i)
            for (int64_t k = pr.row_ptr[i]; k < pr.row_ptr[i + 1]; ++k)
                if (pr.cols[k] >= up.tgt_start && pr.cols[k] < up.tgt_start + up.tgt_size) {
                    r[m] = i;
                    c[m++] = (int32_t)(pr.cols[k] - up.tgt_start);
                }
        return py::make_tuple(rows, cols);
    }

    int64_t synapse_count() const {
        int64_t n = 0;
        for (auto& p : projs_) n += (int64_t)p.cols.size();
        return n;
    }

    int64_t current_step() const { return step_; }
    int threads() const { return T_; }

    // Prepare per-thread segments and delay buffers; called once, before the first run.
    void finalize() {
        if (finalized_) return;
        merge_static_projections();
        for (auto& pop : pops_)
            for (const CurrentStep& c : currents_)
                for (int32_t g : c.neurons)
                    if (g >= pop.start && g < pop.start + pop.size) { pop.has_current = true; break; }
        ring_len_ = max_delay_ + 1;
        if (max_delay_ > 0) {
            ring_exc_.assign((size_t)ring_len_ * N_, Real(0));
            ring_inh_.assign((size_t)ring_len_ * N_, Real(0));
        }
        if (T_ > 1) {
            for (auto& pr : projs_) {
                pr.split.assign((size_t)pr.src_size * (T_ + 1), 0);
                for (int64_t i = 0; i < pr.src_size; ++i) {
                    const int32_t* b = pr.cols.data() + pr.row_ptr[i];
                    const int32_t* e = pr.cols.data() + pr.row_ptr[i + 1];
                    int64_t* s = pr.split.data() + (size_t)i * (T_ + 1);
                    s[0] = pr.row_ptr[i];
                    s[T_] = pr.row_ptr[i + 1];
                    for (int t = 1; t < T_; ++t)
                        s[t] = pr.row_ptr[i] + (std::lower_bound(b, e, (int32_t)bounds_[t]) - b);
                }
            }
        }
        prefetch_targets_ = (int64_t)sizeof(Real) * N_ / T_ > (256 << 10);
        if (record_pop_.empty()) record_pop_.assign(pops_.size(), true);
        spikes_.assign(2 * T_, std::vector<int32_t>());
        for (int t = 0; t < T_; ++t) {
            spikes_[2 * t].resize(bounds_[t + 1] - bounds_[t]);
            spikes_[2 * t + 1].resize(bounds_[t + 1] - bounds_[t]);
        }
        n_spikes_.assign(2 * T_, 0);
        finalized_ = true;
    }

    // Advance n_steps; returns the spikes, population spike counts and monitored traces of the chunk.
    py::dict run(int64_t n_steps) {
        finalize();
        const int P = (int)pops_.size();
        std::vector<std::vector<int32_t>> rec_ids(T_);
        std::vector<std::vector<int64_t>> rec_off(T_, std::vector<int64_t>(n_steps + 1, 0));
        std::vector<std::vector<int32_t>> counts(T_, std::vector<int32_t>((size_t)n_steps * P, 0));
        std::vector<int64_t> events(T_, 0);
        // monitored samples in this chunk: steps s with (step_ + s) % every == 0
        std::vector<std::vector<double>> traces(monitors_.size());
        std::vector<int64_t> first_sample(monitors_.size()), n_samples(monitors_.size());
        for (size_t m = 0; m < monitors_.size(); ++m) {
            int64_t e = monitors_[m].every;
            int64_t first = ((step_ + e - 1) / e) * e;
            first_sample[m] = first;
            n_samples[m] = first < step_ + n_steps ? (step_ + n_steps - 1 - first) / e + 1 : 0;
            traces[m].assign((size_t)n_samples[m] * monitors_[m].neurons.size() * monitors_[m].vars.size(), 0.0);
        }
        const int64_t step0 = step_;
        {
            py::gil_scoped_release release;
#pragma omp parallel num_threads(T_)
            {
                const int t = omp_get_thread_num();
                for (int64_t s = 0; s < n_steps; ++s) {
                    const int64_t step = step0 + s;
                    const int buf = (int)(step & 1);
                    record_traces(t, step, traces, first_sample);
                    update_neurons(t, step, buf, s, counts[t].data() + (size_t)s * P, rec_ids[t]);
                    rec_off[t][s + 1] = (int64_t)rec_ids[t].size();
#pragma omp barrier
                    events[t] += deliver(t, step, buf);
                    fold_delayed_input(t, step);
                    if (has_plasticity_) {
#pragma omp barrier
                        if (reward_update_due(step)) {
                            apply_reward_updates(t, step);
#pragma omp barrier
                        }
                    }
                }
            }
        }
        step_ += n_steps;
        // merge per-thread records in (step, neuron) order
        int64_t total = 0;
        for (int t = 0; t < T_; ++t) total += (int64_t)rec_ids[t].size();
        py::array_t<int64_t> spike_steps(total);
        py::array_t<int32_t> spike_ids(total);
        int64_t* ss = spike_steps.mutable_data();
        int32_t* si = spike_ids.mutable_data();
        int64_t k = 0;
        for (int64_t s = 0; s < n_steps; ++s)
            for (int t = 0; t < T_; ++t)
                for (int64_t j = rec_off[t][s]; j < rec_off[t][s + 1]; ++j) {
                    ss[k] = step0 + s;
                    si[k++] = rec_ids[t][j];
                }
        py::array_t<int32_t> pop_counts({(py::ssize_t)n_steps, (py::ssize_t)P});
        int32_t* pc = pop_counts.mutable_data();
        std::fill(pc, pc + (size_t)n_steps * P, 0);
        for (int t = 0; t < T_; ++t)
            for (size_t j = 0; j < (size_t)n_steps * P; ++j) pc[j] += counts[t][j];
        py::list mon;
        for (size_t m = 0; m < monitors_.size(); ++m) {
            py::array_t<double> arr({(py::ssize_t)n_samples[m], (py::ssize_t)monitors_[m].vars.size(),
                                     (py::ssize_t)monitors_[m].neurons.size()});
            std::memcpy(arr.mutable_data(), traces[m].data(), traces[m].size() * sizeof(double));
            mon.append(arr);
        }
        int64_t ev = 0;
        for (int t = 0; t < T_; ++t) ev += events[t];
        py::dict out;
        out["spike_steps"] = spike_steps;
        out["spike_ids"] = spike_ids;
        out["population_counts"] = pop_counts;
        out["traces"] = mon;
        out["synaptic_events"] = ev;
        return out;
    }

private:
    int T_;
    double dt_;
    uint64_t seed_;
    int64_t N_;
    std::vector<int64_t> bounds_;
    std::vector<Real> v_, u_, ge_, gi_, iext_;
    std::vector<int32_t> ref_until_;
    std::vector<Population> pops_;
    struct UserProjection {
        int group;  // the delivery unit in projs_ that holds its synapses
        int64_t tgt_start, tgt_size, n_synapses;
    };
    std::vector<Projection<Real>> projs_;  // delivery units (merged static projections after finalize)
    std::vector<UserProjection> user_;
    std::vector<PoissonDrive> drives_;
    std::vector<CurrentStep> currents_;
    std::vector<std::pair<int64_t, double>> rewards_;
    std::vector<Monitor> monitors_;
    std::vector<bool> record_pop_;
    int32_t max_delay_ = 0;
    int64_t ring_len_ = 1;
    std::vector<Real> ring_exc_, ring_inh_;
    std::vector<std::vector<int32_t>> spikes_;  // [thread*2 + parity]
    std::vector<int64_t> n_spikes_;
    bool has_plasticity_ = false;
    bool prefetch_targets_ = false;
    bool finalized_ = false;
    int64_t step_ = 0;

    int64_t to_step(double ms) const {
        if (!std::isfinite(ms)) return std::numeric_limits<int64_t>::max();
        return (int64_t)std::llround(ms / dt_);
    }

    double cuba_propagator(double tau_s, double tau_m) const {
        if (std::fabs(tau_s - tau_m) < 1e-12) return dt_ / tau_m * std::exp(-dt_ / tau_m);
        return tau_s / (tau_m - tau_s) * (std::exp(-dt_ / tau_m) - std::exp(-dt_ / tau_s));
    }

    std::vector<Real>& state(int var) {
        switch (var) {
            case V: return v_;
            case U: return u_;
            case G_EXC: return ge_;
            case G_INH: return gi_;
        }
        throw std::invalid_argument("unknown state variable");
    }

    // Static projections from the same source onto the same channel, with the same weight and
    // delay and disjoint targets (exc->exc and exc->inh of an E/I network), are delivered as one:
    // a spike then reads one contiguous row instead of one per projection. Rows stay sorted.
    void merge_static_projections() {
        std::vector<Projection<Real>> units;
        std::vector<int> unit_of(projs_.size());
        for (size_t p = 0; p < projs_.size(); ++p) {
            Projection<Real>& pr = projs_[p];
            int into = -1;
            for (size_t u = 0; u < units.size() && pr.plastic == NONE; ++u) {
                const Projection<Real>& g = units[u];
                if (g.plastic == NONE && g.src_start == pr.src_start && g.src_size == pr.src_size &&
                    g.channel == pr.channel && g.weight == pr.weight && g.delay_steps == pr.delay_steps &&
                    (pr.tgt_start >= g.tgt_start + g.tgt_size || pr.tgt_start + pr.tgt_size <= g.tgt_start)) {
                    into = (int)u;
                    break;
                }
            }
            if (into < 0) {
                unit_of[p] = (int)units.size();
                units.push_back(std::move(pr));
                continue;
            }
            Projection<Real>& g = units[into];
            const bool after = pr.tgt_start >= g.tgt_start + g.tgt_size;
            std::vector<int64_t> row_ptr(g.src_size + 1, 0);
            for (int64_t i = 0; i < g.src_size; ++i)
                row_ptr[i + 1] = row_ptr[i] + (g.row_ptr[i + 1] - g.row_ptr[i]) + (pr.row_ptr[i + 1] - pr.row_ptr[i]);
            std::vector<int32_t> cols(row_ptr.back());
            for (int64_t i = 0; i < g.src_size; ++i) {
                const Projection<Real>& first = after ? g : pr;
                const Projection<Real>& second = after ? pr : g;
                auto out = std::copy(first.cols.begin() + first.row_ptr[i], first.cols.begin() + first.row_ptr[i + 1],
                                     cols.begin() + row_ptr[i]);
                std::copy(second.cols.begin() + second.row_ptr[i], second.cols.begin() + second.row_ptr[i + 1], out);
            }
            const int64_t lo = std::min(g.tgt_start, pr.tgt_start);
            const int64_t hi = std::max(g.tgt_start + g.tgt_size, pr.tgt_start + pr.tgt_size);
            g.row_ptr.swap(row_ptr);
            g.cols.swap(cols);
            g.tgt_start = lo;
            g.tgt_size = hi - lo;
            std::vector<int32_t>().swap(pr.cols);
            std::vector<int64_t>().swap(pr.row_ptr);
            unit_of[p] = into;
        }
        for (auto& up : user_) up.group = unit_of[up.group];
        projs_.swap(units);
    }

    // ---------------------------------------------------------------- connectivity
    // Rows are built in T contiguous blocks, each thread into its own buffer, then concatenated.
    // Each row draws from its own stream, so the result is the same for any thread count.
    void build_by_rows(Projection<Real>& pr, int rule, double p, bool no_self, uint64_t stream) {
        const int64_t n_src = pr.src_size, n_tgt = pr.tgt_size;
        std::vector<std::vector<int32_t>> part(T_);
        std::vector<std::vector<int64_t>> part_len(T_);
        const double log_q = p < 1.0 ? std::log1p(-p) : -std::numeric_limits<double>::infinity();
#pragma omp parallel num_threads(T_)
        {
            const int t = omp_get_thread_num();
            const int64_t r0 = n_src * t / T_, r1 = n_src * (t + 1) / T_;
            std::vector<int32_t>& out = part[t];
            std::vector<int64_t>& len = part_len[t];
            len.resize(r1 - r0);
            if (rule == FIXED_PROBABILITY)
                out.reserve((size_t)((r1 - r0) * (p * n_tgt + 4 * std::sqrt(p * n_tgt + 1))));
            for (int64_t i = r0; i < r1; ++i) {
                size_t before = out.size();
                if (rule == FIXED_PROBABILITY && p > 0) {
                    // Geometric skipping: gaps between successive targets of a Bernoulli(p) row.
                    SplitMix rng(hash3(seed_, stream, (uint64_t)i));
                    int64_t j = -1;
                    while (true) {
                        double skip = p >= 1.0 ? 0.0 : std::floor(std::log(rng.uniform()) / log_q);
                        if (skip >= (double)(n_tgt - j)) break;
                        j += 1 + (int64_t)skip;
                        if (j >= n_tgt) break;
                        if (no_self && j == i) continue;
                        out.push_back((int32_t)(pr.tgt_start + j));
                    }
                } else if (rule == ONE_TO_ONE) {
                    if (!no_self) out.push_back((int32_t)(pr.tgt_start + i));
                } else if (rule == ALL_TO_ALL) {
                    for (int64_t j = 0; j < n_tgt; ++j)
                        if (!(no_self && j == i)) out.push_back((int32_t)(pr.tgt_start + j));
                }
                len[i - r0] = (int64_t)(out.size() - before);
            }
        }
        pr.row_ptr.assign(n_src + 1, 0);
        std::vector<int64_t> part_start(T_ + 1, 0);
        for (int t = 0; t < T_; ++t) {
            const int64_t r0 = n_src * t / T_;
            for (size_t k = 0; k < part_len[t].size(); ++k) pr.row_ptr[r0 + k + 1] = part_len[t][k];
            part_start[t + 1] = part_start[t] + (int64_t)part[t].size();
        }
        for (int64_t i = 0; i < n_src; ++i) pr.row_ptr[i + 1] += pr.row_ptr[i];
        pr.cols.resize(part_start[T_]);
#pragma omp parallel num_threads(T_)
        {
            const int t = omp_get_thread_num();
            std::copy(part[t].begin(), part[t].end(), pr.cols.begin() + part_start[t]);
            std::vector<int32_t>().swap(part[t]);
        }
    }

    // Each target draws k distinct sources (its own stream); then the lists are transposed into rows.
    void build_fixed_indegree(Projection<Real>& pr, int64_t k, bool no_self, uint64_t stream) {
        const int64_t n_src = pr.src_size, n_tgt = pr.tgt_size;
        std::vector<int32_t> sources((size_t)n_tgt * k);
#pragma omp parallel for num_threads(T_) schedule(static)
        for (int64_t j = 0; j < n_tgt; ++j) {
            SplitMix rng(hash3(seed_, stream, (uint64_t)j));
            int32_t* chosen = sources.data() + (size_t)j * k;
            int64_t have = 0;
            const int64_t pool = n_src - (no_self ? 1 : 0);
            if (2 * k > pool) {
                // dense: partial Fisher-Yates over the candidate list
                std::vector<int32_t> cand;
                cand.reserve(n_src);
                for (int64_t i = 0; i < n_src; ++i)
                    if (!(no_self && i == j)) cand.push_back((int32_t)i);
                for (int64_t m = 0; m < k; ++m) {
                    int64_t r = m + (int64_t)(rng.next() % (uint64_t)(cand.size() - m));
                    std::swap(cand[m], cand[r]);
                    chosen[m] = cand[m];
                }
                have = k;
            }
            while (have < k) {  // sparse: rejection of repeats
                int32_t i = (int32_t)(rng.next() % (uint64_t)n_src);
                if (no_self && i == j) continue;
                bool dup = false;
                for (int64_t m = 0; m < have; ++m)
                    if (chosen[m] == i) { dup = true; break; }
                if (!dup) chosen[have++] = i;
            }
        }
        pr.row_ptr.assign(n_src + 1, 0);
        for (size_t m = 0; m < sources.size(); ++m) pr.row_ptr[sources[m] + 1]++;
        for (int64_t i = 0; i < n_src; ++i) pr.row_ptr[i + 1] += pr.row_ptr[i];
        pr.cols.resize(sources.size());
        std::vector<int64_t> fill(pr.row_ptr.begin(), pr.row_ptr.end() - 1);
        for (int64_t j = 0; j < n_tgt; ++j)  // ascending targets: rows come out sorted
            for (int64_t m = 0; m < k; ++m) pr.cols[fill[sources[(size_t)j * k + m]]++] = (int32_t)(pr.tgt_start + j);
    }

    void build_incoming(Projection<Real>& pr) {
        pr.csc_ptr.assign(pr.tgt_size + 1, 0);
        for (int32_t c : pr.cols) pr.csc_ptr[c - pr.tgt_start + 1]++;
        for (int64_t j = 0; j < pr.tgt_size; ++j) pr.csc_ptr[j + 1] += pr.csc_ptr[j];
        pr.csc_syn.resize(pr.cols.size());
        pr.csc_pre.resize(pr.cols.size());
        std::vector<int64_t> fill(pr.csc_ptr.begin(), pr.csc_ptr.end() - 1);
        for (int64_t i = 0; i < pr.src_size; ++i)
            for (int64_t s = pr.row_ptr[i]; s < pr.row_ptr[i + 1]; ++s) {
                int64_t slot = fill[pr.cols[s] - pr.tgt_start]++;
                pr.csc_syn[slot] = s;
                pr.csc_pre[slot] = (int32_t)i;
            }
    }

    // ---------------------------------------------------------------- one time step
    void record_traces(int t, int64_t step, std::vector<std::vector<double>>& traces,
                       const std::vector<int64_t>& first_sample) {
        for (size_t m = 0; m < monitors_.size(); ++m) {
            const Monitor& mon = monitors_[m];
            if (step < first_sample[m] || (step - first_sample[m]) % mon.every) continue;
            const int64_t sample = (step - first_sample[m]) / mon.every;
            const size_t nn = mon.neurons.size(), nv = mon.vars.size();
            for (size_t n = 0; n < nn; ++n) {
                const int32_t g = mon.neurons[n];
                if (g < bounds_[t] || g >= bounds_[t + 1]) continue;
                for (size_t q = 0; q < nv; ++q)
                    traces[m][(sample * nv + q) * nn + n] = (double)state(mon.vars[q])[g];
            }
        }
    }

    // Delayed input due now (delivered at earlier steps into this step's slot) joins the channels,
    // so it acts before the next update just as an undelayed spike of this step does. Only the
    // owner thread touches a neuron's slot, so this needs no barrier.
    void fold_delayed_input(int t, int64_t step) {
        if (max_delay_ == 0) return;
        const int64_t slot = step % ring_len_;
        Real* __restrict ge = ge_.data();
        Real* __restrict gi = gi_.data();
        Real* __restrict re = ring_exc_.data() + (size_t)slot * N_;
        Real* __restrict ri = ring_inh_.data() + (size_t)slot * N_;
        for (int64_t i = bounds_[t]; i < bounds_[t + 1]; ++i) {
            ge[i] += re[i]; re[i] = 0;
            gi[i] += ri[i]; ri[i] = 0;
        }
    }

    void update_neurons(int t, int64_t step, int buf, int64_t s, int32_t* counts, std::vector<int32_t>& rec) {
        const int64_t lo_t = bounds_[t], hi_t = bounds_[t + 1];
        Real* __restrict ge = ge_.data();
        Real* __restrict gi = gi_.data();
        for (const CurrentStep& c : currents_) {
            if (step != c.start_step && step != c.stop_step) continue;
            const Real delta = (Real)(step == c.start_step ? c.amplitude : -c.amplitude);
            for (int32_t g : c.neurons)
                if (g >= lo_t && g < hi_t) iext_[g] += delta;
        }
        for (const PoissonDrive& d : drives_) {
            if (step < d.start_step || step >= d.stop_step) continue;
            const int64_t lo = std::max(lo_t, d.start), hi = std::min(hi_t, d.start + d.size);
            Real* g = d.channel == 0 ? ge : gi;
            const uint64_t key = mix64(d.stream) ^ (uint64_t)step;
            for (int64_t i = lo; i < hi; ++i) {
                int k = poisson_inverse(unit_open0(hash3(seed_, key, (uint64_t)i)), d.lambda, d.exp_minus_lambda);
                if (k) g[i] += (Real)(k * d.weight);
            }
        }
        int32_t* out = spikes_[2 * t + buf].data();
        int64_t n = 0;
        for (size_t pi = 0; pi < pops_.size(); ++pi) {
            const Population& pop = pops_[pi];
            const int64_t lo = std::max(lo_t, pop.start), hi = std::min(hi_t, pop.start + pop.size);
            if (lo >= hi) continue;
            const int64_t n_before = n;
            switch (pop.model) {
                // populations without injected current skip reading it: one array less per step
                case LIF_CUBA:
                    n = pop.has_current ? step_lif_cuba<true>(pop, lo, hi, step, out, n)
                                        : step_lif_cuba<false>(pop, lo, hi, step, out, n);
                    break;
                case LIF_COBA:
                    n = pop.has_current ? step_lif_coba<true>(pop, lo, hi, step, out, n)
                                        : step_lif_coba<false>(pop, lo, hi, step, out, n);
                    break;
                case IZHIKEVICH:
                    n = pop.has_current ? step_izhikevich<true>(pop, lo, hi, out, n)
                                        : step_izhikevich<false>(pop, lo, hi, out, n);
                    break;
                case POISSON: n = step_poisson(pop, pi, lo, hi, step, out, n); break;
            }
            counts[pi] += (int32_t)(n - n_before);
            if (record_pop_[pi]) rec.insert(rec.end(), out + n_before, out + n);
        }
        n_spikes_[2 * t + buf] = n;
        if (has_plasticity_) update_traces(t, out, n);
        (void)s;
    }

    template <bool CURRENT>
    int64_t step_lif_cuba(const Population& p, int64_t lo, int64_t hi, int64_t step, int32_t* out, int64_t n) {
        Real* __restrict v = v_.data();
        Real* __restrict ge = ge_.data();
        Real* __restrict gi = gi_.data();
        const Real* __restrict iext = iext_.data();
        const int32_t* __restrict ref = ref_until_.data();
        const Real pv = (Real)p.prop_v, pe = (Real)p.prop_exc, pin = (Real)p.prop_inh;
        const Real de = (Real)p.decay_exc, di = (Real)p.decay_inh, rest = (Real)(p.v_rest + p.i_bias);
        const int32_t now = (int32_t)step;
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
            const Real target = rest + (CURRENT ? iext[i] : Real(0));
            const Real vn = target + (v[i] - target) * pv + ge[i] * pe + gi[i] * pin;
            v[i] = now >= ref[i] ? vn : v[i];
            ge[i] *= de;
            gi[i] *= di;
        }
        return threshold(p, lo, hi, now, out, n);
    }

    template <bool CURRENT>
    int64_t step_lif_coba(const Population& p, int64_t lo, int64_t hi, int64_t step, int32_t* out, int64_t n) {
        Real* __restrict v = v_.data();
        Real* __restrict ge = ge_.data();
        Real* __restrict gi = gi_.data();
        const Real* __restrict iext = iext_.data();
        const int32_t* __restrict ref = ref_until_.data();
        const Real k = (Real)p.dt_over_tau, ee = (Real)p.e_exc, ei = (Real)p.e_inh;
        const Real rest = (Real)p.v_rest, bias = (Real)p.i_bias;
        const Real de = (Real)p.decay_exc, di = (Real)p.decay_inh;
        const int32_t now = (int32_t)step;
        // Forward Euler on v, as Brian2's COBA benchmark; exact decay of the conductances.
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
            const Real vi = v[i];
            const Real dv = k * (ge[i] * (ee - vi) + gi[i] * (ei - vi) - (vi - rest) + bias + (CURRENT ? iext[i] : Real(0)));
            v[i] = now >= ref[i] ? vi + dv : vi;
            ge[i] *= de;
            gi[i] *= di;
        }
        return threshold(p, lo, hi, now, out, n);
    }

    int64_t threshold(const Population& p, int64_t lo, int64_t hi, int32_t now, int32_t* out, int64_t n) {
        const Real* __restrict v = v_.data();
        const Real vth = (Real)p.v_th, vr = (Real)p.v_reset;
        // Spikes are rare (a few per thousand neurons per step): test blocks of 16 with a vector
        // compare and look at single neurons only in a block that has one.
        int64_t i = lo;
        for (; i + 16 <= hi; i += 16) {
            int any = 0;
#pragma omp simd reduction(| : any)
            for (int j = 0; j < 16; ++j) any |= v[i + j] > vth;
            if (!any) continue;
            for (int j = 0; j < 16; ++j)
                if (v[i + j] > vth) spike(i + j, vr, now + p.ref_steps, out, n);
        }
        for (; i < hi; ++i)
            if (v[i] > vth) spike(i, vr, now + p.ref_steps, out, n);
        return n;
    }

    // Reset a LIF neuron that crossed threshold; it integrates again once (step - spike step)
    // >= ref_steps, as in Brian2.
    inline void spike(int64_t i, Real v_reset, int32_t until, int32_t* out, int64_t& n) {
        out[n++] = (int32_t)i;
        v_[i] = v_reset;
        ref_until_[i] = until;
    }

    template <bool CURRENT>
    int64_t step_izhikevich(const Population& p, int64_t lo, int64_t hi, int32_t* out, int64_t n) {
        Real* __restrict v = v_.data();
        Real* __restrict u = u_.data();
        Real* __restrict ge = ge_.data();
        Real* __restrict gi = gi_.data();
        const Real* __restrict iext = iext_.data();
        const Real dt = (Real)dt_, a = (Real)p.a, b = (Real)p.b, bias = (Real)p.i_bias;
        const Real de = (Real)p.decay_exc, di = (Real)p.decay_inh;
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
            const Real vi = v[i], ui = u[i];
            const Real current = ge[i] + gi[i] + bias + (CURRENT ? iext[i] : Real(0));
            v[i] = vi + dt * (Real(0.04) * vi * vi + Real(5) * vi + Real(140) - ui + current);
            u[i] = ui + dt * a * (b * vi - ui);
            ge[i] *= de;
            gi[i] *= di;
        }
        const Real peak = (Real)p.v_peak, c = (Real)p.c, d = (Real)p.d;
        for (int64_t i = lo; i < hi; ++i) {
            if (v[i] >= peak) {
                out[n++] = (int32_t)i;
                v[i] = c;
                u[i] += d;
            }
        }
        return n;
    }

    int64_t step_poisson(const Population& p, size_t pi, int64_t lo, int64_t hi, int64_t step, int32_t* out,
                         int64_t n) {
        if (step < p.start_step || step >= p.stop_step) return n;
        double rate = p.rate_per_step;
        if (p.mod_depth != 0.0) rate *= std::max(0.0, 1.0 + p.mod_depth * std::sin(p.mod_omega_per_step * step));
        const uint64_t key = mix64(0x706f6973736f6eULL + pi) ^ (uint64_t)step;
        for (int64_t i = lo; i < hi; ++i)
            if (unit_open0(hash3(seed_, key, (uint64_t)i)) <= rate) out[n++] = (int32_t)i;
        return n;
    }

    void update_traces(int t, const int32_t* spikes, int64_t n) {
        const int64_t lo_t = bounds_[t], hi_t = bounds_[t + 1];
        for (auto& pr : projs_) {
            if (pr.plastic == NONE) continue;
            const Real dp = (Real)pr.decay_plus, dm = (Real)pr.decay_minus;
            int64_t lo = std::max(lo_t, pr.src_start), hi = std::min(hi_t, pr.src_start + pr.src_size);
            for (int64_t i = lo; i < hi; ++i) pr.x_pre[i - pr.src_start] *= dp;
            lo = std::max(lo_t, pr.tgt_start); hi = std::min(hi_t, pr.tgt_start + pr.tgt_size);
            for (int64_t j = lo; j < hi; ++j) pr.y_post[j - pr.tgt_start] *= dm;
            for (int64_t q = 0; q < n; ++q) {
                const int64_t g = spikes[q];
                if (g >= pr.src_start && g < pr.src_start + pr.src_size) pr.x_pre[g - pr.src_start] += Real(1);
                if (g >= pr.tgt_start && g < pr.tgt_start + pr.tgt_size) pr.y_post[g - pr.tgt_start] += Real(1);
            }
        }
    }

    // [begin, end) of the synapses of source row `row` whose targets thread t owns.
    inline const int64_t* row_bounds(const Projection<Real>& pr, int64_t row, int t) const {
        return T_ == 1 ? pr.row_ptr.data() + row : pr.split.data() + (size_t)row * (T_ + 1) + t;
    }

    // Deliver every spike of this step to the targets this thread owns.
    int64_t deliver(int t, int64_t step, int buf) {
        int64_t events = 0;
        for (auto& pr : projs_) {
            Real* __restrict g;
            if (pr.delay_steps == 0) {
                g = pr.channel == 0 ? ge_.data() : gi_.data();
            } else {
                const int64_t slot = (step + pr.delay_steps) % ring_len_;
                g = (pr.channel == 0 ? ring_exc_.data() : ring_inh_.data()) + (size_t)slot * N_;
            }
            const int64_t src_lo = pr.src_start, src_hi = pr.src_start + pr.src_size;
            for (int u = 0; u < T_; ++u) {
                if (bounds_[u + 1] <= src_lo || bounds_[u] >= src_hi) continue;
                const int32_t* sp = spikes_[2 * u + buf].data();
                const int64_t ns = n_spikes_[2 * u + buf];
                const int32_t* first = std::lower_bound(sp, sp + ns, (int32_t)src_lo);
                const int32_t* last = std::lower_bound(first, sp + ns, (int32_t)src_hi);
                const int64_t m = last - first;
                const int32_t* __restrict cols = pr.cols.data();
                // A step's spikes hit rows scattered over a connectivity table much larger than the
                // caches; the loads are latency-bound, so fetch ahead: the row bounds of the spike
                // 16 places on, the row itself 6 places on, and (when the targets' state does not
                // fit in L2) the targets 3 places on.
                for (int64_t q = 0; q < m; ++q) {
                    if (q + 16 < m) __builtin_prefetch(row_bounds(pr, first[q + 16] - src_lo, t));
                    if (q + 6 < m) {
                        const int64_t* rb = row_bounds(pr, first[q + 6] - src_lo, t);
                        for (int64_t k = rb[0]; k < rb[1]; k += 16) __builtin_prefetch(cols + k);
                    }
                    if (prefetch_targets_ && q + 3 < m) {
                        const int64_t* rb = row_bounds(pr, first[q + 3] - src_lo, t);
                        for (int64_t k = rb[0]; k < rb[1]; ++k) __builtin_prefetch(g + cols[k], 1);
                    }
                    const int64_t* rb = row_bounds(pr, first[q] - src_lo, t);
                    const int64_t b = rb[0], e = rb[1];
                    events += e - b;
                    if (pr.plastic == NONE) {
                        const Real w = pr.weight;
                        for (int64_t k = b; k < e; ++k) g[cols[k]] += w;
                    } else {
                        on_pre_spike(pr, g, b, e);
                    }
                }
            }
            if (pr.plastic != NONE) on_post_spikes(pr, t, buf);
        }
        return events;
    }

    void on_pre_spike(Projection<Real>& pr, Real* g, int64_t b, int64_t e) {
        const int32_t* cols = pr.cols.data();
        const Real am = (Real)pr.a_minus;
        for (int64_t k = b; k < e; ++k) {
            const int32_t j = cols[k];
            g[j] += pr.sign * pr.w[k];
            const Real dep = am * pr.y_post[j - pr.tgt_start];
            if (pr.plastic == STDP) pr.w[k] = std::max(Real(0), pr.w[k] - dep);
            else pr.eligibility[k] -= dep;
        }
    }

    void on_post_spikes(Projection<Real>& pr, int t, int buf) {
        const int32_t* sp = spikes_[2 * t + buf].data();
        const int64_t ns = n_spikes_[2 * t + buf];
        const int32_t* first = std::lower_bound(sp, sp + ns, (int32_t)pr.tgt_start);
        const int32_t* last = std::lower_bound(first, sp + ns, (int32_t)(pr.tgt_start + pr.tgt_size));
        const Real ap = (Real)pr.a_plus, wmax = (Real)pr.w_max;
        for (const int32_t* q = first; q < last; ++q) {
            const int64_t j = *q - pr.tgt_start;
            for (int64_t m = pr.csc_ptr[j]; m < pr.csc_ptr[j + 1]; ++m) {
                const int64_t syn = pr.csc_syn[m];
                const Real pot = ap * pr.x_pre[pr.csc_pre[m]];
                if (pr.plastic == STDP) pr.w[syn] = std::min(wmax, pr.w[syn] + pot);
                else pr.eligibility[syn] += pot;
            }
        }
    }

    bool reward_update_due(int64_t step) const {
        for (auto& pr : projs_)
            if (pr.plastic == REWARD_STDP && (step + 1) % pr.interval_steps == 0) return true;
        return false;
    }

    // dw = learning_rate * d * c * interval for every synapse; threads split the synapse range.
    void apply_reward_updates(int t, int64_t step) {
        for (auto& pr : projs_) {
            if (pr.plastic != REWARD_STDP || (step + 1) % pr.interval_steps) continue;
            double dopamine = 0.0;
            for (auto& r : rewards_)
                if (r.first <= step) dopamine += r.second * std::pow(pr.decay_dopamine_step, (double)(step - r.first));
            const int64_t S = (int64_t)pr.w.size(), k0 = S * t / T_, k1 = S * (t + 1) / T_;
            const Real gain = (Real)(pr.learning_rate * dopamine * pr.interval_ms), wmax = (Real)pr.w_max;
            const Real decay = (Real)pr.decay_elig_interval;
            for (int64_t k = k0; k < k1; ++k) {
                pr.w[k] = std::min(wmax, std::max(Real(0), pr.w[k] + gain * pr.eligibility[k]));
                pr.eligibility[k] *= decay;
            }
        }
    }
};

template <typename Real>
void bind_engine(py::module_& m, const char* name) {
    py::class_<Engine<Real>>(m, name)
        .def(py::init<int, double, uint64_t, int64_t>(), py::arg("threads"), py::arg("dt_ms"), py::arg("seed"),
             py::arg("n_neurons"))
        .def("add_population", &Engine<Real>::add_population)
        .def("add_projection", &Engine<Real>::add_projection)
        .def("add_poisson_input", &Engine<Real>::add_poisson_input)
        .def("add_current_input", &Engine<Real>::add_current_input)
        .def("add_reward", &Engine<Real>::add_reward)
        .def("add_state_monitor", &Engine<Real>::add_state_monitor)
        .def("set_recorded_populations", &Engine<Real>::set_recorded_populations)
        .def("set_state", &Engine<Real>::set_state)
        .def("get_state", &Engine<Real>::get_state)
        .def("get_weights", &Engine<Real>::get_weights)
        .def("get_connections", &Engine<Real>::get_connections)
        .def("finalize", &Engine<Real>::finalize)
        .def("run", &Engine<Real>::run)
        .def_property_readonly("synapse_count", &Engine<Real>::synapse_count)
        .def_property_readonly("step", &Engine<Real>::current_step)
        .def_property_readonly("threads", &Engine<Real>::threads);
}

}  // namespace

PYBIND11_MODULE(_engine, m) {
    m.doc() = "Compiled inner loop of the NeuroMesh simulation service (see engine.cpp).";
    bind_engine<float>(m, "EngineF32");
    bind_engine<double>(m, "EngineF64");
    m.attr("MODELS") = py::dict(py::arg("lif_cuba") = (int)LIF_CUBA, py::arg("lif_coba") = (int)LIF_COBA,
                                py::arg("izhikevich") = (int)IZHIKEVICH, py::arg("poisson") = (int)POISSON);
    m.attr("VARIABLES") = py::dict(py::arg("v") = (int)V, py::arg("u") = (int)U, py::arg("g_exc") = (int)G_EXC,
                                   py::arg("g_inh") = (int)G_INH);
    m.attr("RULES") = py::dict(py::arg("fixed_probability") = (int)FIXED_PROBABILITY,
                               py::arg("fixed_indegree") = (int)FIXED_INDEGREE,
                               py::arg("one_to_one") = (int)ONE_TO_ONE, py::arg("all_to_all") = (int)ALL_TO_ALL);
    m.attr("PLASTICITY") = py::dict(py::arg("stdp") = (int)STDP, py::arg("reward_modulated_stdp") = (int)REWARD_STDP);
}
