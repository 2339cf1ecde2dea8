// Row gathering shared by gather_rows() and the DataLoader's reused batch buffers.
#pragma once

#include <backprop/tensor.hpp>
#include <cstddef>
#include <cstdint>

namespace backprop::data::detail {

/// Copies rows indices[0 .. count) of `source` ([N, ...], contiguous) to `dst`, one memcpy per row, asking for
/// each row a few rows ahead. Throws IndexError naming the first index outside [0, N).
void gather_rows_into(const Tensor& source, const std::int64_t* indices, std::size_t count, void* dst);

}  // namespace backprop::data::detail
