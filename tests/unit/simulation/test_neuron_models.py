"""Single neurons against analytic results and a reference implementation of the same equations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.simulation.core import (
    IZHIKEVICH_REGIMES, CurrentInput, InitialValue, NetworkSpec, Population, StateMonitor, simulate,
)


def lif_rate_hz(drive_mv, *, tau_m=20.0, v_th=-50.0, v_reset=-60.0, v_rest=-60.0, t_ref=2.0):
    """Firing rate of a LIF neuron under constant drive: 1 / (t_ref + tau ln((v_inf - v_r)/(v_inf - v_th)))."""
    v_inf = v_rest + drive_mv
    if v_inf <= v_th:
        return 0.0
    return 1000.0 / (t_ref + tau_m * math.log((v_inf - v_reset) / (v_inf - v_th)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("drive", [10.5, 12.0, 15.0, 25.0, 60.0])
def test_lif_rate_under_constant_current_matches_the_analytic_formula(dtype, drive):
    # Ten identical neurons started at reset, so each fires periodically from t = 0.
    spec = NetworkSpec((Population("cell", 10, "lif_cuba", params={"v_rest": -60.0, "refractory_ms": 2.0},
                                   initial={"v": InitialValue("constant", -60.0)}),),
                       current_inputs=(CurrentInput("cell", amplitude=drive),), dt_ms=0.01, dtype=dtype)
    result = simulate(spec, duration_ms=2000.0)
    times, ids = result.spikes_of("cell")
    isi = np.diff(times[ids == 0])
    expected = lif_rate_hz(drive)
    # On the grid: after a spike the neuron is frozen for the refractory steps, then needs
    # ceil(T / dt) steps to cross, the last of which is the spike step itself.
    crossing = 1000.0 / expected - 2.0
    grid_isi = 2.0 + (math.ceil(crossing / 0.01) - 1) * 0.01
    tolerance = 1e-6 if dtype == "float64" else 0.0101   # float32 may cross one step early near rheobase
    np.testing.assert_allclose(isi, grid_isi, atol=tolerance)
    assert 1000.0 / isi.mean() == pytest.approx(expected, rel=0.002)
    # every neuron fires the same train; the count over the run is the rate, to within a spike
    assert result.population_rates_hz()["cell"] == pytest.approx(expected, abs=1 / 2.0)


def test_lif_below_rheobase_never_fires():
    spec = NetworkSpec((Population("cell", 3, "lif_cuba", params={"v_rest": -60.0}),),
                       current_inputs=(CurrentInput("cell", amplitude=9.9),))
    assert simulate(spec, 1000.0).spike_ids.size == 0


def test_lif_membrane_relaxes_exponentially_and_refractory_period_holds():
    spec = NetworkSpec((Population("cell", 1, "lif_cuba", params={"v_rest": -60.0, "v_threshold": 0.0,
                                                                 "refractory_ms": 0.0},
                                   initial={"v": InitialValue("constant", -60.0)}),),
                       current_inputs=(CurrentInput("cell", amplitude=10.0, start_ms=10.0),),
                       state_monitors=(StateMonitor("cell", (0,), ("v",), every_ms=1.0),), dtype="float64")
    result = simulate(spec, 60.0)
    t, v = result.trace_times_ms[0], result.traces[0][:, 0, 0]
    expected = np.where(t <= 10.0, -60.0, -60.0 + 10.0 * (1 - np.exp(-(t - 10.0) / 20.0)))
    np.testing.assert_allclose(v, expected, atol=1e-9)

    # with 5 ms refractoriness and a huge drive the neuron fires exactly every 5 ms + 1 step
    spec = NetworkSpec((Population("cell", 1, "lif_cuba", params={"v_rest": -60.0, "refractory_ms": 5.0}),),
                       current_inputs=(CurrentInput("cell", amplitude=1e5),))
    times = simulate(spec, 100.0).spike_times_ms
    np.testing.assert_allclose(np.diff(times), 5.0, atol=1e-9)


def izhikevich_reference(a, b, c, d, current, *, dt=0.1, duration=1000.0, v_peak=30.0):
    """The engine's equations in plain Python (Euler, reset when v >= v_peak), float64."""
    v, u = c, b * c
    spikes = []
    for step in range(int(round(duration / dt))):
        v_new = v + dt * (0.04 * v * v + 5 * v + 140 - u + current)
        u = u + dt * a * (b * v - u)
        v = v_new
        if v >= v_peak:
            spikes.append(step * dt)
            v, u = c, u + d
    return np.array(spikes)


def izhikevich_spikes(regime, current, duration=1000.0):
    spec = NetworkSpec((Population("cell", 1, "izhikevich", params=IZHIKEVICH_REGIMES[regime]),),
                       current_inputs=(CurrentInput("cell", amplitude=current),), dtype="float64")
    return simulate(spec, duration).spike_times_ms


@pytest.mark.parametrize("regime", sorted(IZHIKEVICH_REGIMES))
def test_izhikevich_matches_a_reference_implementation(regime):
    p = IZHIKEVICH_REGIMES[regime]
    expected = izhikevich_reference(p["a"], p["b"], p["c"], p["d"], 10.0, duration=500.0)
    got = izhikevich_spikes(regime, 10.0, duration=500.0)
    assert got.size == pytest.approx(expected.size, abs=1) and got.size > 3
    # Identical equations; fused multiply-adds in the compiled loop differ in the last bits, which
    # may move a spike by a step after many spikes: the first ten agree to a step, the rate to 1%.
    np.testing.assert_allclose(got[:10], expected[:10], atol=0.1 + 1e-9)
    assert np.diff(got).mean() == pytest.approx(np.diff(expected).mean(), rel=0.01)


def test_izhikevich_regimes_show_their_characteristic_interspike_intervals():
    rs = np.diff(izhikevich_spikes("regular_spiking", 10.0))
    fs = np.diff(izhikevich_spikes("fast_spiking", 10.0))
    ib = np.diff(izhikevich_spikes("intrinsically_bursting", 10.0))
    ch = np.diff(izhikevich_spikes("chattering", 10.0))
    # regular spiking adapts: intervals lengthen from the first to the steady state
    assert rs[-1] > 1.5 * rs[0]
    # fast spiking: high rate without adaptation
    assert fs.size > 4 * rs.size and fs[-1] < 1.3 * fs[1] and np.std(fs[10:]) < 0.05 * fs[10:].mean()
    # intrinsically bursting: an initial burst (short intervals) then regular spiking at long intervals
    assert ib[0] < 8.0 and np.median(ib[5:]) > 3 * ib[0]
    # chattering: repeated bursts, so the intervals are bimodal (within-burst and between bursts)
    short, long_ = ch[ch < 10.0], ch[ch > 20.0]
    assert short.size >= 2 * long_.size and long_.size >= 5
