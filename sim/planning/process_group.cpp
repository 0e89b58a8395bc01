// MPI process groups for sweeps (OpenMPI's C API; see process_group.hpp).
#include "sim/planning/process_group.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#ifdef CLUSTERSIM_HAS_MPI
#include <mpi.h>
#endif

namespace clustersim {
namespace {

std::optional<int> env_int(const char* name) {
    const char* text = std::getenv(name);
    if (!text || !*text) return std::nullopt;
    int v = 0;
    const auto [end, ec] = std::from_chars(text, text + std::strlen(text), v);
    if (ec != std::errc() || *end != '\0') return std::nullopt;
    return v;
}

#ifdef CLUSTERSIM_HAS_MPI

constexpr int kTagRow = 1;
constexpr int kTagDone = 2;  // the message holds the number of rows the rank sent

void check(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw std::runtime_error(
        fmt::format("MPI {} failed: {}", what, std::string(text, static_cast<std::size_t>(length))));
}

class MpiProcessGroup : public ProcessGroup {
public:
    MpiProcessGroup() {
        // Only the main thread calls MPI; worker threads run plans and hand rows to it.
        int provided = 0;
        check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "initialization");
        if (provided < MPI_THREAD_FUNNELED) {
            MPI_Finalize();
            throw std::runtime_error("the MPI library does not support MPI_THREAD_FUNNELED, which sweeps need");
        }
        check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
        check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
        announced_.assign(static_cast<std::size_t>(size_), -1);
        received_.assign(static_cast<std::size_t>(size_), 0);
    }
    ~MpiProcessGroup() override { MPI_Finalize(); }

    int rank() const override { return rank_; }
    int size() const override { return size_; }

    std::vector<std::size_t> broadcast_from_root(std::vector<std::size_t> values, bool abort) override {
        unsigned long long count = abort ? ~0ULL : values.size();
        check(MPI_Bcast(&count, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD), "MPI_Bcast");
        if (count == ~0ULL) throw std::runtime_error("rank 0 stopped the sweep (its message says why)");
        std::vector<unsigned long long> buffer(values.begin(), values.end());
        buffer.resize(count);
        if (count > 0)
            check(MPI_Bcast(buffer.data(), static_cast<int>(count), MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD),
                  "MPI_Bcast");
        return {buffer.begin(), buffer.end()};
    }

    void send_row(const std::string& line) override {
        check(MPI_Send(line.data(), static_cast<int>(line.size()), MPI_CHAR, 0, kTagRow, MPI_COMM_WORLD), "MPI_Send");
        ++sent_;
    }

    void send_done() override {
        const std::string count = std::to_string(sent_);
        check(MPI_Send(count.data(), static_cast<int>(count.size()), MPI_CHAR, 0, kTagDone, MPI_COMM_WORLD),
              "MPI_Send");
    }

    std::optional<std::string> poll_row(bool& all_done, int& from) override {
        int flag = 0;
        MPI_Status status;
        check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
        if (!flag) {
            all_done = finished();
            return std::nullopt;
        }
        int count = 0;
        check(MPI_Get_count(&status, MPI_CHAR, &count), "MPI_Get_count");
        std::string text(static_cast<std::size_t>(count), '\0');
        check(MPI_Recv(text.data(), count, MPI_CHAR, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE),
              "MPI_Recv");
        const auto source = static_cast<std::size_t>(status.MPI_SOURCE);
        if (status.MPI_TAG == kTagDone) {
            announced_[source] = std::stoll(text);
            all_done = finished();
            return std::nullopt;
        }
        ++received_[source];
        from = status.MPI_SOURCE;
        all_done = false;
        return text;
    }

    [[noreturn]] void abort_all(int exit_code) override {
        MPI_Abort(MPI_COMM_WORLD, exit_code);
        std::_Exit(exit_code);
    }

private:
    // Every other rank has said how many rows it sent, and they have all arrived.
    bool finished() const {
        for (int r = 1; r < size_; ++r) {
            const auto i = static_cast<std::size_t>(r);
            if (announced_[i] < 0 || received_[i] < announced_[i]) return false;
        }
        return true;
    }

    int rank_ = 0;
    int size_ = 1;
    long long sent_ = 0;
    std::vector<long long> announced_;
    std::vector<long long> received_;
};

#endif

}  // namespace

bool mpi_support_built() {
#ifdef CLUSTERSIM_HAS_MPI
    return true;
#else
    return false;
#endif
}

std::optional<int> mpirun_world_size() {
    return env_int("OMPI_COMM_WORLD_SIZE");
}
int mpirun_world_rank() {
    return env_int("OMPI_COMM_WORLD_RANK").value_or(0);
}
int mpirun_local_size() {
    return std::max(1, env_int("OMPI_COMM_WORLD_LOCAL_SIZE").value_or(1));
}

std::unique_ptr<ProcessGroup> start_process_group() {
#ifdef CLUSTERSIM_HAS_MPI
    if (mpirun_world_size()) return std::make_unique<MpiProcessGroup>();
#endif
    return nullptr;
}

}  // namespace clustersim
