// The processes of an `mpirun` launch, as a sweep uses them: rank 0 tells the others which plans
// are left, each runs its share, and the others send their rows to rank 0, which writes them.
//
// Built on OpenMPI's C API when CMake found MPI (CLUSTERSIM_HAS_MPI); without it a sweep runs in
// one process and start_process_group() says so when it finds itself under mpirun.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clustersim {

class ProcessGroup {
public:
    virtual ~ProcessGroup() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    // Rank 0's `values` reach every rank; `abort` tells the others that rank 0 cannot go on
    // (they then throw). Collective: every rank calls it once.
    virtual std::vector<std::size_t> broadcast_from_root(std::vector<std::size_t> values, bool abort) = 0;
    // Not rank 0: sends one row (a journal line), then, when the share is done, the end mark.
    virtual void send_row(const std::string& line) = 0;
    virtual void send_done() = 0;
    // Rank 0: a row from another rank if one has arrived (never blocks), and the rank it came from;
    // `all_done` becomes true once every other rank has sent its end mark and every row has arrived.
    virtual std::optional<std::string> poll_row(bool& all_done, int& from) = 0;
    // Ends every process of the launch at once (after an error on rank 0 that the others cannot see).
    [[noreturn]] virtual void abort_all(int exit_code) = 0;
};

// Whether this build of clustersim has MPI support.
bool mpi_support_built();

// The number of processes mpirun started, from OpenMPI's environment (OMPI_COMM_WORLD_SIZE), or
// nothing when not started by mpirun.
std::optional<int> mpirun_world_size();
// This process's rank and the number of ranks on this host, from the same environment.
int mpirun_world_rank();
int mpirun_local_size();

// Initializes MPI when this process was started by mpirun and MPI support is built; MPI is
// finalized when the group is destroyed. Nothing otherwise.
std::unique_ptr<ProcessGroup> start_process_group();

}  // namespace clustersim
