// `clustersim validate`: placeholder until the command is written.
#include "command.hpp"

namespace clustersim {

Command add_validate_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("validate", "(not implemented yet)");
    return {cmd, [] { return 2; }};
}

}  // namespace clustersim
