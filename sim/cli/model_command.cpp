// `clustersim model`: placeholder until the command is written.
#include "command.hpp"

namespace clustersim {

Command add_model_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("model", "(not implemented yet)");
    return {cmd, [] { return 2; }};
}

}  // namespace clustersim
