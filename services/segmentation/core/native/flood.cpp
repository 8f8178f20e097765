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

}  // namespace

PYBIND11_MODULE(_flood, m) {
    m.doc() = "Linear-time seeded watershed (bucket-queue priority flood) for the segmentation core";
    m.attr("BLOCKED") = py::int_(BLOCKED);
    m.def("flood", &flood, py::arg("levels"), py::arg("labels"), py::arg("steps"), py::arg("n_levels"),
          "Flood seed labels over quantised levels in place (padded flat arrays; see watershed.py).");
}
