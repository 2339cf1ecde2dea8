// The cache-blocked 2-D transpose behind strided copies (strided.cpp), compiled once per instruction set: the
// including namespace defines Block<E, N>, an N x N transpose of E in registers, and kWidest<E>, the widest N
// it has (1: none, plain loads and stores).

/// dst[i * ld + j] = src[j * ls + i] for i < rows, j < cols with N x N blocks, then the right and bottom
/// strips that N does not divide with blocks of N / 2, and so on down to single elements.
template <class E, std::int64_t N>
void transpose_blocks(E* dst, std::int64_t ld, const E* src, std::int64_t ls, std::int64_t rows,
                      std::int64_t cols) {
  if constexpr (N == 1) {
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) dst[i * ld + j] = src[j * ls + i];
  } else {
    const std::int64_t r = rows / N * N, c = cols / N * N;
    for (std::int64_t i = 0; i < r; i += N)
      for (std::int64_t j = 0; j < c; j += N) Block<E, N>::run(dst + i * ld + j, ld, src + j * ls + i, ls);
    if (c < cols) transpose_blocks<E, N / 2>(dst + c, ld, src + c * ls, ls, r, cols - c);
    if (r < rows) transpose_blocks<E, N / 2>(dst + r * ld, ld, src + r, ls, rows - r, cols);
  }
}

/// The same over the whole matrix in strips one cache line wide (64 bytes, or one block where that is wider)
/// and 128 elements long, laid along the longer dim: a strip's blocks complete each line they touch across
/// it, and consecutive strips read and write lines next to the previous strip's (square tiles measured slower:
/// docs/performance.md). Blocks wider than 16 bytes are used only where both row strides are multiples of
/// their width: otherwise most of their loads and stores straddle two cache lines.
template <class E, std::int64_t N = kWidest<E>>
void transpose(E* dst, std::int64_t ld, const E* src, std::int64_t ls, std::int64_t rows, std::int64_t cols) {
  if constexpr (N * sizeof(E) > 16)
    if (ld % N != 0 || ls % N != 0) return transpose<E, N / 2>(dst, ld, src, ls, rows, cols);
  constexpr std::int64_t S = std::max<std::int64_t>(64 / sizeof(E), N), L = 128;
  const auto tile = [&](std::int64_t i0, std::int64_t j0, std::int64_t ti, std::int64_t tj) {
    transpose_blocks<E, N>(dst + i0 * ld + j0, ld, src + j0 * ls + i0, ls, std::min(ti, rows - i0),
                           std::min(tj, cols - j0));
  };
  if (rows >= cols) {
    for (std::int64_t j0 = 0; j0 < cols; j0 += S)
      for (std::int64_t i0 = 0; i0 < rows; i0 += L) tile(i0, j0, L, S);
  } else {
    for (std::int64_t i0 = 0; i0 < rows; i0 += S)
      for (std::int64_t j0 = 0; j0 < cols; j0 += L) tile(i0, j0, S, L);
  }
}
