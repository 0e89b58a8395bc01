// Sweep rows: from run summaries, to and from the journal, and into the CSV (see sweep_table.hpp).
#include "sim/planning/sweep_table.hpp"

#include "sim/planning/plan_file.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace clustersim {
namespace {

void flatten(const std::string& prefix, const nlohmann::ordered_json& value,
             std::vector<std::pair<std::string, std::string>>& out) {
    if (value.is_object()) {
        for (const auto& [key, item] : value.items()) flatten(prefix.empty() ? key : prefix + "." + key, item, out);
    } else if (value.is_boolean()) {
        out.emplace_back(prefix, value.get<bool>() ? "true" : "false");
    } else if (value.is_number_unsigned()) {
        out.emplace_back(prefix, std::to_string(value.get<std::uint64_t>()));
    } else if (value.is_number_integer()) {
        out.emplace_back(prefix, std::to_string(value.get<std::int64_t>()));
    } else if (value.is_number_float()) {
        out.emplace_back(prefix, fmt::format("{}", value.get<double>()));  // shortest form that reads back exactly
    }
}

// Splits CSV text into records of cells (RFC 4180 quoting; a quoted cell may hold newlines).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> records;
    std::vector<std::string> record;
    std::string cell;
    bool quoted = false;
    bool any = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                cell += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                cell += c;
            }
            continue;
        }
        if (c == '"') {
            quoted = true;
            any = true;
        } else if (c == ',') {
            record.push_back(std::move(cell));
            cell.clear();
            any = true;
        } else if (c == '\n') {
            record.push_back(std::move(cell));
            cell.clear();
            records.push_back(std::move(record));
            record.clear();
            any = false;
        } else if (c != '\r') {
            cell += c;
            any = true;
        }
    }
    if (any) {
        record.push_back(std::move(cell));
        records.push_back(std::move(record));
    }
    return records;
}

}  // namespace

const char* to_string(PlanStatus status) {
    switch (status) {
        case PlanStatus::ok:
            return "ok";
        case PlanStatus::does_not_fit:
            return "does_not_fit";
        case PlanStatus::failed:
            return "failed";
        case PlanStatus::invalid:
            return "invalid";
    }
    return "?";
}

std::optional<PlanStatus> parse_plan_status(const std::string& text) {
    for (PlanStatus s : {PlanStatus::ok, PlanStatus::does_not_fit, PlanStatus::failed, PlanStatus::invalid})
        if (text == to_string(s)) return s;
    return std::nullopt;
}

PlanRow row_from_summary(std::size_t plan, const std::string& key, const nlohmann::ordered_json& summary) {
    PlanRow row;
    row.plan = plan;
    row.key = key;
    flatten("", summary, row.metrics);
    if (summary.contains("fits_in_memory") && summary["fits_in_memory"].is_boolean() &&
        !summary["fits_in_memory"].get<bool>())
        row.status = PlanStatus::does_not_fit;
    if (summary.contains("status") && summary["status"].is_string()) {
        const std::string text = summary["status"].get<std::string>();
        if (text != "simulated" && text != "ok") row.reason = text;
    }
    return row;
}

std::string journal_line(const PlanRow& row) {
    nlohmann::ordered_json j;
    j["key"] = row.key;
    j["plan"] = row.plan;
    j["status"] = to_string(row.status);
    j["reason"] = row.reason;
    nlohmann::ordered_json metrics = nlohmann::ordered_json::array();
    for (const auto& [name, cell] : row.metrics) metrics.push_back({name, cell});
    j["metrics"] = metrics;
    return j.dump();
}

std::optional<PlanRow> parse_journal_line(const std::string& line) {
    try {
        const auto j = nlohmann::ordered_json::parse(line);
        PlanRow row;
        row.key = j.at("key").get<std::string>();
        row.plan = j.at("plan").get<std::size_t>();
        const auto status = parse_plan_status(j.at("status").get<std::string>());
        if (!status || row.key.empty()) return std::nullopt;
        row.status = *status;
        row.reason = j.at("reason").get<std::string>();
        for (const auto& m : j.at("metrics"))
            row.metrics.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
        return row;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

SweepJournal::SweepJournal(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
        throw std::runtime_error(
            fmt::format("cannot open the sweep journal {}: {}", path_.string(), std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error(
            error == EWOULDBLOCK
                ? fmt::format("another clustersim sweep is writing to {} (its journal is locked); "
                              "wait for it or choose another --out",
                              path_.parent_path().string())
                : fmt::format("cannot lock the sweep journal {}: {}", path_.string(), std::strerror(error)));
    }
}

void SweepJournal::clear() {
    if (::ftruncate(fd_, 0) != 0)
        throw std::runtime_error(
            fmt::format("cannot empty the sweep journal {}: {}", path_.string(), std::strerror(errno)));
}

SweepJournal::~SweepJournal() {
    if (fd_ >= 0) ::close(fd_);
}

void SweepJournal::append(const PlanRow& row) {
    // One write() per line: with O_APPEND a line is never interleaved with another, and a crash
    // leaves at most one damaged last line, which read() skips.
    const std::string line = journal_line(row) + "\n";
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            throw std::runtime_error(
                fmt::format("cannot write the sweep journal {}: {}", path_.string(), std::strerror(errno)));
        done += static_cast<std::size_t>(n);
    }
    if (::fdatasync(fd_) != 0)
        throw std::runtime_error(
            fmt::format("cannot flush the sweep journal {}: {}", path_.string(), std::strerror(errno)));
}

std::map<std::string, PlanRow> SweepJournal::read(const std::filesystem::path& path) {
    std::map<std::string, PlanRow> rows;
    std::ifstream in(path, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
        if (auto row = parse_journal_line(line)) rows[row->key] = std::move(*row);
    }
    return rows;
}

std::map<std::string, PlanRow> read_sweep_csv(const std::filesystem::path& path, const SweepSpec& spec) {
    std::map<std::string, PlanRow> rows;
    std::ifstream in(path, std::ios::binary);
    if (!in) return rows;
    std::stringstream text;
    text << in.rdbuf();
    const auto records = parse_csv(text.str());
    if (records.empty()) return rows;
    const auto& header = records.front();
    const auto column = [&](const std::string& name) {
        return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
    };
    const std::size_t key_at = column("plan_key");
    const std::size_t status_at = column("status");
    const std::size_t reason_at = column("reason");
    // A CSV of another shape (other varied inputs) is not this sweep's: start afresh.
    if (key_at >= header.size() || reason_at != status_at + 1 || status_at != 2 + spec.columns.size()) return rows;
    for (std::size_t r = 1; r < records.size(); ++r) {
        const auto& cells = records[r];
        if (cells.size() != header.size()) continue;
        const auto status = parse_plan_status(cells[status_at]);
        if (!status || *status == PlanStatus::invalid || cells[key_at].empty()) continue;
        PlanRow row;
        row.key = cells[key_at];
        row.status = *status;
        row.reason = cells[reason_at];
        for (std::size_t c = reason_at + 1; c < header.size(); ++c)
            if (!cells[c].empty()) row.metrics.emplace_back(header[c], cells[c]);
        rows[row.key] = std::move(row);
    }
    return rows;
}

std::string sweep_csv(const SweepSpec& spec, const std::vector<PlanRow>& rows) {
    std::vector<std::string> metrics;
    for (const auto& row : rows)
        for (const auto& [name, cell] : row.metrics)
            if (std::find(metrics.begin(), metrics.end(), name) == metrics.end()) metrics.push_back(name);

    // Cells are appended one by one ("," + cell trips GCC 12's -Wrestrict false positive).
    std::string out = "plan,plan_key";
    const auto add = [&out](const std::string& cell) {
        out += ',';
        out += csv_cell(cell);
    };
    for (const auto& c : spec.columns) add(c);
    out += ",status,reason";
    for (const auto& m : metrics) add(m);
    out += '\n';
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const PlanRow& row = rows[i];
        out += fmt::format("{},{}", row.plan, row.key);
        for (const auto& cell : spec.plans[i].cells) add(cell);
        add(to_string(row.status));
        add(row.reason);
        for (const auto& m : metrics) {
            const auto it =
                std::find_if(row.metrics.begin(), row.metrics.end(), [&](const auto& x) { return x.first == m; });
            add(it == row.metrics.end() ? std::string() : it->second);
        }
        out += '\n';
    }
    return out;
}

void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::path temporary = path;
    temporary += ".partial";
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out) throw std::runtime_error(fmt::format("cannot write {}", temporary.string()));
    }
    std::error_code ec;
    std::filesystem::rename(temporary, path, ec);
    if (ec)
        throw std::runtime_error(
            fmt::format("cannot move {} to {}: {}", temporary.string(), path.string(), ec.message()));
}

}  // namespace clustersim
