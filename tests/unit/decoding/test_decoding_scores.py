"""Scores per output against scikit-learn and SciPy, and their handling of constant targets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from services.decoding.core.scores import pearson_r, r2_score, rmse


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_scores_match_sklearn_and_scipy(dtype):
    rng = np.random.default_rng(0)
    y = (rng.normal(size=(300, 3)) * [1.0, 10.0, 100.0] + 5.0).astype(dtype)
    pred = (y + rng.normal(size=y.shape) * [0.5, 5.0, 80.0]).astype(dtype)
    # our scores compute in float64 whatever the input; so do the references, on the same values
    y64, pred64 = y.astype(np.float64), pred.astype(np.float64)
    np.testing.assert_allclose(r2_score(y, pred), metrics.r2_score(y64, pred64, multioutput="raw_values"),
                               rtol=1e-10)
    np.testing.assert_allclose(rmse(y, pred),
                               np.sqrt(metrics.mean_squared_error(y64, pred64, multioutput="raw_values")),
                               rtol=1e-10)
    expected_r = [stats.pearsonr(y64[:, j], pred64[:, j]).statistic for j in range(3)]
    np.testing.assert_allclose(pearson_r(y, pred), expected_r, rtol=1e-10)


def test_one_dimensional_input_gives_one_output():
    y, pred = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 4.5])
    for score in (r2_score, pearson_r, rmse):
        assert score(y, pred).shape == (1,)
    assert r2_score(y, pred)[0] == pytest.approx(metrics.r2_score(y, pred))


def test_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert r2_score(y, y)[0] == 1.0
    assert r2_score(y, np.full(4, y.mean()))[0] == 0.0           # predicting the mean scores 0
    assert r2_score(y, y[::-1])[0] == pytest.approx(-3.0)         # worse than the mean: negative
    assert pearson_r(y, 3 * y + 2)[0] == pytest.approx(1.0)
    assert pearson_r(y, -y)[0] == pytest.approx(-1.0)
    assert rmse(y, y + 2)[0] == pytest.approx(2.0)


def test_constant_target_gives_nan_not_a_made_up_score():
    y = np.column_stack([np.arange(5.0), np.full(5, 0.1)])      # second output constant (SST = 0)
    r2 = r2_score(y, y + 0.01)
    assert r2[0] == pytest.approx(1 - 5 * 0.01**2 / 10.0)
    assert np.isnan(r2[1])
    assert np.isnan(r2_score(y, y)[1])                          # even for a perfect prediction
    r = pearson_r(y, y + np.arange(5.0)[:, None])
    assert np.isnan(r[1]) and r[0] == pytest.approx(1.0)
    assert np.isnan(pearson_r(np.arange(5.0), np.ones(5))[0])   # constant prediction
    np.testing.assert_allclose(rmse(y, y + 0.01), [0.01, 0.01])


def test_large_offsets_do_not_overflow_pearson():
    rng = np.random.default_rng(1)
    y = rng.normal(size=100) * 1e200
    assert pearson_r(y, 2 * y)[0] == pytest.approx(1.0)


@pytest.mark.parametrize("score", [r2_score, pearson_r, rmse])
def test_bad_input_raises(score):
    with pytest.raises(ValueError, match=r"same shape.*\(3,\) and \(4,\)"):
        score(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        score(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="NaN"):
        score([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="y_pred.*NaN"):
        score([1.0, 2.0], [np.inf, 2.0])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        score(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="real numbers"):
        score(np.array(["a", "b"]), np.array(["a", "b"]))
