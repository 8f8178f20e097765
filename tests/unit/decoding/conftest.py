"""Shared fixtures of the decoding core tests."""

from __future__ import annotations

import pytest
import threadpoolctl

from services.decoding.core import simulate_reaching_session


@pytest.fixture(autouse=True, scope="session")
def single_threaded_blas():
    """Run BLAS on one thread. The matrices here are small (a few hundred columns), where a second
    thread gains little, while on a shared, oversubscribed machine OpenBLAS threads spin-wait and
    the same cross-validation takes ten times longer. Results do not depend on the thread count."""
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def reaching_session():
    """The default synthetic session (60 units, 300 s, 50 ms bins, seed 0) and its counts."""
    session = simulate_reaching_session()
    return session, session.binned_counts()


@pytest.fixture(scope="session")
def small_session():
    """A short session for tests that check mechanics rather than decoding quality."""
    session = simulate_reaching_session(n_units=20, duration_s=60.0, seed=3)
    return session, session.binned_counts()
