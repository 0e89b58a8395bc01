// `clustersim kernels`: placeholder until the command is written.
#include "command.hpp"

namespace clustersim {

Command add_kernels_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("kernels", "(not implemented yet)");
    return {cmd, [] { return 2; }};
}

}  // namespace clustersim
