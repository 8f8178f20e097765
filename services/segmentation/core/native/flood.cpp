// Seeded watershed by priority flooding with a bucket queue, for services/segmentation/core/watershed.py.
//
// Why a bucket queue: the boundary map is a probability, quantised to at most 65,536 levels, so
// the queue is an array of FIFO lists indexed by level. Every voxel is labelled when it is pushed
// (as scikit-image's watershed does), so it is pushed at most once: push and pop are O(1) and the
// flood is linear in the number of voxels, against O(n log n) for scikit-image's binary heap.
//
// Order of the flood, which is scikit-image's: the element popped is the lowest level present,
// first in first out within a level (scikit-image breaks ties of value by an age counter that
// grows with every push, which is FIFO). A neighbour pushed below the level being flooded is
// popped next, as in a heap; the lowest-level pointer moves down for it. So on a map whose
// values are distinct at the quantisation used, and seeds of distinct values, the partition is
// scikit-image's exactly; with ties the order among equal levels is the push order.
//
// The volume arrives padded by one voxel on every side; the caller marks the padding and every
// voxel outside the mask as "blocked" in `labels` (BLOCKED), which is why no bounds check is
// needed in the inner loop.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

constexpr uint32_t BLOCKED = std::numeric_limits<uint32_t>::max();
constexpr int64_t NONE = -1;

// Floods `labels` (padded, C order; 0 = unlabelled, BLOCKED = never labelled, other = seed id) in
// place over `levels` (same layout) through the neighbour steps `steps` (flat index offsets).
void flood(py::array_t<uint16_t, py::array::c_style> levels, py::array_t<uint32_t, py::array::c_style> labels,
           py::array_t<int64_t, py::array::c_style> steps, int n_levels) {
    if (levels.ndim() != 1 || labels.ndim() != 1 || levels.shape(0) != labels.shape(0)) {
        throw std::invalid_argument("levels and labels must be flat arrays of the same size");
    }
    if (n_levels < 1 || n_levels > 65536) {
        throw std::invalid_argument("n_levels must be 1 .. 65536, got " + std::to_string(n_levels));
    }
    const int64_t n = levels.shape(0);
    const uint16_t *level = levels.data();
    uint32_t *label = labels.mutable_data();
    const int64_t *step = steps.data();
    const int64_t n_steps = steps.shape(0);

    for (int64_t i = 0; i < n; ++i) {
        if (level[i] >= n_levels) throw std::invalid_argument("a level is >= n_levels");
    }
    // one FIFO per level, each a vector read from `front`: the queue is read and written
    // sequentially (a linked list through the volume costs a cache miss per voxel), and a level
    // emptied is cleared so that its memory is reused when the flood comes back down to it
    std::vector<std::vector<int64_t>> queue(static_cast<size_t>(n_levels));
    std::vector<size_t> front(static_cast<size_t>(n_levels), 0);
    int lowest = n_levels;                    // no level below it holds a pending voxel

    {
        py::gil_scoped_release release;
        // seeds enter in raster order: ties among them are broken by position
        for (int64_t i = 0; i < n; ++i) {
            if (label[i] != 0 && label[i] != BLOCKED) {
                const int l = level[i];
                queue[l].push_back(i);
                if (l < lowest) lowest = l;
            }
        }
        while (true) {
            while (lowest < n_levels && front[lowest] == queue[lowest].size()) {
                queue[lowest].clear();
                front[lowest] = 0;
                ++lowest;
            }
            if (lowest >= n_levels) break;
            const int64_t index = queue[lowest][front[lowest]++];
            const uint32_t id = label[index];
            for (int64_t s = 0; s < n_steps; ++s) {
                const int64_t other = index + step[s];
                if (label[other] != 0) continue;  // labelled, or blocked (padding, outside the mask)
                label[other] = id;
                const int l = level[other];
                queue[l].push_back(other);
                if (l < lowest) lowest = l;       // below the flood: taken next, as from a heap
            }
        }
    }
}

// ---- Euclidean distance transform ---------------------------------------------------------------
//
// Exact squared Euclidean distances by Felzenszwalb & Huttenlocher's separable algorithm (2012):
// one pass per axis, each the lower envelope of parabolas along every line, linear in the voxels.
// scipy's distance_transform_edt computes the same distances (it is the seeds' larger cost after
// scipy's own flood is gone); this one takes the foreground as uint8 and works in place.

constexpr double INF = std::numeric_limits<double>::infinity();

// Squared distances along one line of `n` values at `stride`, in place; w2 = squared voxel size.
void envelope_line(double *f, int64_t n, int64_t stride, double w2, std::vector<double> &g,
                   std::vector<int64_t> &v, std::vector<double> &z) {
    for (int64_t q = 0; q < n; ++q) g[q] = f[q * stride];
    int64_t k = -1;
    for (int64_t q = 0; q < n; ++q) {
        if (g[q] == INF) continue;                     // no parabola from a voxel not yet reached
        double s = -INF;
        while (k >= 0) {
            const int64_t r = v[k];
            s = ((g[q] + w2 * q * q) - (g[r] + w2 * r * r)) / (2.0 * w2 * (q - r));
            if (s > z[k]) break;
            --k;
        }
        ++k;
        v[k] = q;
        z[k] = k == 0 ? -INF : s;
        z[k + 1] = INF;
    }
    if (k < 0) return;                                  // the whole line is unreached: stays INF
    int64_t j = 0;
    for (int64_t p = 0; p < n; ++p) {
        while (z[j + 1] < p) ++j;
        const double d = static_cast<double>(p - v[j]);
        f[p * stride] = w2 * d * d + g[v[j]];
    }
}

py::array_t<double> distance_transform(py::array_t<uint8_t, py::array::c_style> foreground,
                                       std::vector<double> sampling) {
    const int ndim = static_cast<int>(foreground.ndim());
    if (ndim < 1 || ndim > 3 || static_cast<int>(sampling.size()) != ndim) {
        throw std::invalid_argument("foreground must be 1-D to 3-D with one sampling value per axis");
    }
    int64_t shape[3] = {1, 1, 1};
    double w[3] = {1.0, 1.0, 1.0};
    for (int a = 0; a < ndim; ++a) {
        shape[3 - ndim + a] = foreground.shape(a);
        w[3 - ndim + a] = sampling[a];
    }
    const int64_t n = shape[0] * shape[1] * shape[2];
    py::array_t<double> out(std::vector<py::ssize_t>(foreground.shape(), foreground.shape() + ndim));
    const uint8_t *in = foreground.data();
    double *d = out.mutable_data();
    {
        py::gil_scoped_release release;
        for (int64_t i = 0; i < n; ++i) d[i] = in[i] ? INF : 0.0;
        const int64_t strides[3] = {shape[1] * shape[2], shape[2], 1};
        const int64_t longest = std::max({shape[0], shape[1], shape[2]});
        std::vector<double> g(longest), z(longest + 1);
        std::vector<int64_t> v(longest);
        for (int axis = 2; axis >= 0; --axis) {
            if (shape[axis] == 1 && axis != 2) continue;   // a line of one voxel changes nothing
            const int64_t len = shape[axis], stride = strides[axis];
            const double w2 = w[axis] * w[axis];
            // every line along `axis`: all index combinations of the other two axes
            const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
            for (int64_t i1 = 0; i1 < shape[a1]; ++i1) {
                for (int64_t i2 = 0; i2 < shape[a2]; ++i2) {
                    envelope_line(d + i1 * strides[a1] + i2 * strides[a2], len, stride, w2, g, v, z);
                }
            }
        }
        for (int64_t i = 0; i < n; ++i) d[i] = std::sqrt(d[i]);
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_flood, m) {
    m.doc() = "Linear-time seeded watershed (bucket-queue priority flood) for the segmentation core";
    m.attr("BLOCKED") = py::int_(BLOCKED);
    m.def("flood", &flood, py::arg("levels"), py::arg("labels"), py::arg("steps"), py::arg("n_levels"),
          "Flood seed labels over quantised levels in place (padded flat arrays; see watershed.py).");
    m.def("distance_transform", &distance_transform, py::arg("foreground"), py::arg("sampling"),
          "Exact Euclidean distance of each nonzero voxel to the nearest zero voxel (float64).");
}
