// Paths of the kernel test fixtures (synthetic, see fixtures/README.md) and of the real GPU specs.
#pragma once

#include <string>

namespace clustersim::test {
inline std::string kernel_fixtures() { return std::string(CLUSTERSIM_SOURCE_DIR) + "/tests/kernels/fixtures"; }
inline std::string real_kernels_dir() { return std::string(CLUSTERSIM_SOURCE_DIR) + "/kernels"; }
}  // namespace clustersim::test
