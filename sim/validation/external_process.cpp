// fork/exec with the child's stdout read through a pipe.
#include "sim/validation/external_process.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace clustersim {

std::optional<std::filesystem::path> find_on_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    if (!path) return std::nullopt;
    std::string_view rest(path);
    while (true) {
        const auto colon = rest.find(':');
        const std::string_view dir = rest.substr(0, colon);
        if (!dir.empty()) {
            const std::filesystem::path candidate = std::filesystem::path(dir) / program;
            if (::access(candidate.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(candidate)) return candidate;
        }
        if (colon == std::string_view::npos) return std::nullopt;
        rest.remove_prefix(colon + 1);
    }
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& working_dir) {
    ProcessResult result;
    std::array<int, 2> fds{};
    if (argv.empty() || ::pipe(fds.data()) != 0) throw std::runtime_error("cannot create a pipe for a child process");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::runtime_error(std::string("cannot start ") + argv[0] + ": " + std::strerror(errno));
    }
    if (pid == 0) {
        // In the child only async-signal-safe calls until exec; _exit reports failure as 127 like a shell.
        ::dup2(fds[1], STDOUT_FILENO);
        const int null_fd = ::open("/dev/null", O_WRONLY);
        if (null_fd >= 0) ::dup2(null_fd, STDERR_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        if (::chdir(working_dir.c_str()) != 0) ::_exit(127);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    std::array<char, 4096> buffer{};
    while (true) {
        const ssize_t n = ::read(fds[0], buffer.data(), buffer.size());
        if (n > 0) {
            result.output.append(buffer.data(), static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

}  // namespace clustersim
