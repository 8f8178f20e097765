"""STDP and the reward-modulated rule against their analytic weight changes for isolated spike pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.simulation.core import (
    Connectivity, CurrentInput, NetworkSpec, Plasticity, Population, Projection, Reward, simulate,
)

# A neuron that fires exactly at the step a one-step pulse of this drive is given (CUBA, exact):
# one step of drive D moves v by D * (1 - exp(-dt/tau_m)) = 5e4 * 0.005 = 250 mV > 10 mV to threshold.
PULSE = 5e4
QUIET = {"v_rest": -70.0, "refractory_ms": 0.0}


def forced_pairs(delays_ms, *, plasticity, pre_at=100.0, rewards=(), duration=400.0, dt=0.1):
    """One pre->post synapse per pair; pre fires at ``pre_at``, post at ``pre_at + delay``."""
    n = len(delays_ms)
    pulses = [CurrentInput("pre", amplitude=PULSE, start_ms=pre_at, stop_ms=pre_at + dt, neurons=tuple(range(n)))]
    for k, d in enumerate(delays_ms):
        t = pre_at + d
        pulses.append(CurrentInput("post", amplitude=PULSE, start_ms=t, stop_ms=t + dt, neurons=(k,)))
    spec = NetworkSpec(
        (Population("pre", n, "lif_cuba", params=QUIET), Population("post", n, "lif_cuba", params=QUIET)),
        (Projection("pre", "post", weight=0.5, connectivity=Connectivity("one_to_one"), plasticity=plasticity),),
        current_inputs=tuple(pulses), rewards=tuple(rewards), dt_ms=dt, dtype="float64")
    result = simulate(spec, duration)
    # every forced neuron fired exactly once, where it was told to
    assert result.spike_ids.size == 2 * n
    return result.weights_after[0] - result.weights_before[0]


def test_stdp_weight_change_follows_the_exponential_window():
    rule = Plasticity("stdp", a_plus=0.01, a_minus=0.012, tau_plus=16.8, tau_minus=33.7, w_max=1.0)
    delays = np.array([-80.0, -40.0, -20.0, -10.0, -5.0, -1.0, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0])
    dw = forced_pairs(delays, plasticity=rule)
    expected = np.where(delays > 0, rule.a_plus * np.exp(-delays / rule.tau_plus),
                        -rule.a_minus * np.exp(delays / rule.tau_minus))
    np.testing.assert_allclose(dw, expected, rtol=1e-9, atol=1e-12)


def test_stdp_weights_stay_within_bounds():
    rule = Plasticity("stdp", a_plus=0.9, a_minus=0.9, tau_plus=20.0, tau_minus=20.0, w_max=1.0)
    dw = forced_pairs([-0.5, 0.5], plasticity=rule)
    # 0.5 - 0.9 e^{-0.5/20} would be negative: clipped at 0; 0.5 + 0.9 e^{-0.5/20} clipped at w_max
    np.testing.assert_allclose(dw, [-0.5, 0.5])


def test_reward_modulated_rule_changes_weights_only_when_rewarded():
    rule = Plasticity("reward_modulated_stdp", a_plus=0.01, a_minus=0.012, tau_plus=20.0, tau_minus=20.0,
                      w_max=1.0, tau_eligibility=200.0, tau_dopamine=50.0, learning_rate=1.0,
                      update_interval_ms=0.1)
    delays = [10.0, -10.0]
    assert np.all(forced_pairs(delays, plasticity=rule) == 0.0)   # eligibility alone changes nothing

    t_reward, duration = 150.0, 450.0
    dw = forced_pairs(delays, plasticity=rule, rewards=[Reward(t_reward, 0.5)], duration=duration)
    # c(t) = c0 exp(-(t - t_pair)/tau_c) from the second spike of the pair (t_pair = 110 or 100 ms),
    # d(t) = 0.5 exp(-(t - t_r)/tau_d); dw = lr * integral of d c dt from t_r to the end.
    tau = 1.0 / (1.0 / rule.tau_dopamine + 1.0 / rule.tau_eligibility)
    for k, (delay, t_pair) in enumerate(((10.0, 110.0), (-10.0, 100.0))):
        c0 = rule.a_plus * math.exp(-10.0 / 20.0) if delay > 0 else -rule.a_minus * math.exp(-10.0 / 20.0)
        c_at_reward = c0 * math.exp(-(t_reward - t_pair) / rule.tau_eligibility)
        expected = rule.learning_rate * 0.5 * c_at_reward * tau * (1 - math.exp(-(duration - t_reward) / tau))
        # the rule is applied on the update grid: Euler over 0.1 ms steps of a 40 ms time constant
        assert dw[k] == pytest.approx(expected, rel=0.01)
    assert dw[0] > 0 > dw[1]
