// `clustersim layer`: placeholder until the command is written.
#include "command.hpp"

namespace clustersim {

Command add_layer_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("layer", "(not implemented yet)");
    return {cmd, [] { return 2; }};
}

}  // namespace clustersim
